"""Exports of a finished run, whatever its task: the formats its task offers (Task.exports), each with the reason
it cannot be made for this run, if any (its strategy or its model says so), and writing one."""
from __future__ import annotations

from pathlib import Path

from studio import recipe as recipes
from studio import tasks
from studio.engine.export import ExportError, model_folder
from studio.families.base import ModelInfo
from studio.runfolder import RECIPE, RunFolder
from studio.tasks.base import Export


def offered(run: RunFolder) -> list[tuple[Export, str | None]]:
    """Every format of the run's task with the reason it cannot be made for this run (None: it can). ExportError
    when the run has no saved model."""
    info = ModelInfo.read(model_folder(run))
    task = tasks.get(info.task)
    strategy = task.strategies.get(recipes.load(run.file(RECIPE)).strategy)
    return [(e, (strategy.export_refused(e.name) if strategy else None) or e.refused(info)) for e in task.exports]


def export(run_dir: Path, fmt: str) -> Path:
    """Writes one export of a finished run and returns its path; ExportError in words when it cannot."""
    run = RunFolder(run_dir)
    formats = offered(run)
    chosen = next(((e, why) for e, why in formats if e.name == fmt), None)
    if chosen is None:
        raise ExportError(f"Unknown export format '{fmt}' for this model; choose one of: "
                          f"{', '.join(e.name for e, _ in formats)}.")
    if chosen[1]:
        raise ExportError(chosen[1])
    return chosen[0].write(run)

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


def sizes(run: RunFolder) -> dict[str, int]:
    """About how many bytes each format that can say so before writing will take."""
    info = ModelInfo.read(model_folder(run))
    return {e.name: size for e in tasks.get(info.task).exports if (size := e.size(info))}


def export(run_dir: Path, fmt: str, **options) -> Path:
    """Writes one export of a finished run and returns its path; ExportError in words when it cannot. options:
    what the format reads besides the run (gguf_type)."""
    run = RunFolder(run_dir)
    formats = offered(run)
    chosen = next(((e, why) for e, why in formats if e.name == fmt), None)
    if chosen is None:
        task = ModelInfo.read(model_folder(run)).task
        raise ExportError(f"'{fmt}' is not an export format for {task} models; choose one of: "
                          f"{', '.join(e.name for e, _ in formats)}.")
    if chosen[1]:
        raise ExportError(chosen[1])
    return chosen[0].write(run, **options)

"""Run folders of a team's workspace for tests that need runs to exist, not to train: written as a worker leaves
them (recipe.yaml, status.json with its owner, a model file), in a second instead of a training's minutes. A run
"running" names this test process as its worker, so every reader (mark_interrupted) takes it as alive."""
from __future__ import annotations

import os
import time
from pathlib import Path

from studio.recipe import DataSpec, Recipe
from studio.runfolder import MODEL_DIR, RECIPE, STATUS, WEIGHTS, process_started, write_json
from studio.workspace import Workspace


def made_run(workspace: str | Path, owner: str | None, status: str = "completed", output_dir: str = "runs") -> str:
    """A run of `owner` in `status`; its id."""
    recipe = Recipe(task="text-classification", model="all-minilm-l6-v2", strategy="feature-extraction",
                    data=DataSpec(path="notes.csv"), output_dir=output_dir)
    run_dir = Workspace(workspace).new_run_dir(recipe)
    recipe.save(run_dir / RECIPE)
    (run_dir / MODEL_DIR).mkdir()
    (run_dir / MODEL_DIR / WEIGHTS).write_bytes(b"\0" * 1024)
    worker = {"pid": os.getpid(), "pid_started": process_started(os.getpid())} if status == "running" else {}
    write_json(run_dir / STATUS, {"status": status, "run_id": run_dir.name, "task": recipe.task, "model": recipe.model,
                                  "strategy": recipe.strategy, "data_name": "notes.csv", "created": time.time(),
                                  "owner": owner, "accuracy": 0.9 if status == "completed" else None, **worker})
    return run_dir.name

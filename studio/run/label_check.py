"""The Data tab's check for examples that look mislabelled, before training: when a run has already cached this
model's features for this data, a process of its own (never the UI's) waits its turn on the device in the
machine-wide queue (admission.py: behind the runs started before it), loads the cached features and the data,
finds the label issues as a run does (label_issues.from_cache) and writes them beside the feature cache; the page
only reads that file. One check per data and model: none starts while one runs or once its result is written.

Beside the result labels-<key>.json, the folder labels-<key>/ holds the check's recipe, its process (job.json),
its log and the lock that lets one page start it. `python -m studio.run.label_check FOLDER WORKSPACE` is the
process itself."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import torch

from studio import tasks
from studio.engine.device import devices_found, pick_device
from studio.recipe import Recipe
from studio.run import admission
from studio.run.worker import NICENESS, worker_environment
from studio.runfolder import alive, atomic, read_json, write_json
from studio.tasks.classification import label_issues
from studio.tasks.classification.pipeline import class_weights
from studio.workspace import Workspace, confine_caches

RECIPE_FILE, JOB_FILE, LOG_FILE = "recipe.yaml", "job.json", "check.log"
STARTING_GRACE_S = 60  # a check whose process was not recorded after this long is gone


def result_path(data, model: str, workspace: Workspace) -> Path:
    return label_issues.check_file(workspace.cache_dir, model, data.fingerprint())


def read(result: Path) -> dict | None:
    """The check's result once written, else None."""
    return read_json(Path(result))


def running(result: Path) -> bool:
    """True while the check's process lives (or is just starting)."""
    job = read_json(Path(result).with_suffix("") / JOB_FILE)
    if job is None:
        return False
    if "pid" in job:
        return alive(job["pid"])
    return time.time() - job.get("taken", 0) < STARTING_GRACE_S


def start(recipe: Recipe, data, workspace: Workspace) -> Path | None:
    """Starts the check of `data` with the recipe's model when a run has cached its features and no check of them
    is done or running; returns the result file to watch, or None when no features are cached (nothing starts)."""
    result = result_path(data, recipe.model, workspace)
    if result.exists() or running(result):
        return result
    if not label_issues.features_cached(data, recipe.model, workspace.cache_dir):
        return None
    folder = result.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "start.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # of two pages checking the same data at once, one starts the check
        if result.exists() or running(result):
            return result
        job = folder / JOB_FILE
        write_json(job, {"taken": time.time()})
        recipe.save(folder / RECIPE_FILE)
        admission.take_ticket(folder)  # its place in the queue, in start order, before the process exists
        with open(folder / LOG_FILE, "a") as log:
            process = subprocess.Popen([sys.executable, "-m", "studio.run.label_check", str(folder),
                                        str(workspace.root)], env=worker_environment(), stdout=log, stderr=log,
                                       stdin=subprocess.DEVNULL, cwd=workspace.root, start_new_session=True)
        write_json(job, {"taken": time.time(), "pid": process.pid})
    threading.Thread(target=process.wait, name="label-check-reap", daemon=True).start()  # no zombie left
    return result


def check(folder: Path, workspace: Workspace) -> dict:
    """The check itself (in its own process): queued for the device, then label_issues.from_cache."""
    recipe = tasks.resolved(tasks.load(folder / RECIPE_FILE))  # as a run resolves it (the features' key)
    task = tasks.get(recipe.task)
    data = task.load_data(recipe.data, seed=0, uploads_dir=workspace.uploads_dir)  # as the Data tab loads it
    kind = pick_device(recipe.train.device).type
    found = devices_found()
    available = found["count"] if found["kind"] == kind else 1
    lock, first = admission.wait_for_devices(folder, kind, 1, available, threading.Event(),
                                             workspace=workspace.root)
    try:
        device = torch.device(kind, first) if kind == "cuda" else torch.device(kind)
        return label_issues.from_cache(task, recipe, data, workspace.cache_dir, device,
                                       class_weights(recipe, data))
    finally:
        lock.release()


def main(argv: list[str] | None = None) -> int:
    folder, root = map(Path, (argv or sys.argv[1:])[:2])
    workspace = Workspace(root)
    try:
        os.nice(NICENESS)
    except OSError:
        pass
    confine_caches(workspace.root)
    started = time.time()
    try:
        found = check(folder, workspace)
    except Exception:  # kept, so the page stops waiting and the check is not started again and again
        traceback.print_exc()
        found = {"error": traceback.format_exc(limit=1), "label_issues": []}
    found.update(pid=os.getpid(), seconds=round(time.time() - started, 2))
    with atomic(folder.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(found), encoding="utf-8")
    return 0 if "error" not in found else 1


if __name__ == "__main__":
    sys.exit(main())

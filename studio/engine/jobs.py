"""The job API the CLI and the UI use: start a recipe, read its status and events, cancel it.

Runs execute one at a time on a single worker thread (one device, one run), in the order they were started;
a started run waits with status "queued". Nothing here blocks the caller.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from studio.engine import runner
from studio.engine.data import DataError
from studio.engine.events import EventLog
from studio.engine.loop import Callback, Cancelled
from studio.engine.models import ModelError
from studio.recipe import Recipe, RecipeError, validate
from studio.workspace import Workspace

log = logging.getLogger(__name__)
FINISHED = ("completed", "failed", "cancelled")


def explain(exc: BaseException) -> str:
    """The failure in words a user can act on."""
    if isinstance(exc, (DataError, ModelError, RecipeError)):
        return str(exc)
    text = str(exc)
    if "out of memory" in text.lower() or type(exc).__name__ == "OutOfMemoryError":
        return ("The device ran out of memory. Use a smaller batch size (train.batch_size), a smaller model, "
                "or feature extraction.")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Job:
    run_id: str
    run_dir: Path
    recipe: Recipe
    log: EventLog
    callbacks: list[Callback] = field(default_factory=list)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def status(self) -> dict:
        return self.log.status

    def events(self, since: int = 0) -> list[dict]:
        """Events from index `since` on: a reader keeps its count and asks for what is new."""
        return self.log.events[since:]

    def cancel(self) -> None:
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


class JobManager:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.jobs: dict[str, Job] = {}
        self._queue: queue.Queue[Job] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="studio-trainer", daemon=True)
        self._worker.start()

    def start(self, recipe: Recipe, callbacks: list[Callback] = ()) -> Job:
        """Validates the recipe (RecipeError if it cannot run), creates its run folder, queues it."""
        validate(recipe)
        recipe = recipe.resolved()
        # Absolute data paths, so the saved recipe replays from any folder.
        for key in ("path", "validation_path"):
            value = getattr(recipe.data, key)
            if value:
                setattr(recipe.data, key, str(Path(value).expanduser().resolve()))
        run_dir = self.workspace.new_run_dir(recipe)
        recipe.save(run_dir / "recipe.yaml")
        job = Job(run_dir.name, run_dir, recipe, EventLog(run_dir), list(callbacks))
        job.log.set_status("queued", run_id=job.run_id, task=recipe.task, model=recipe.model,
                           strategy=recipe.strategy, created=time.time(), position=self._queue.qsize() + 1)
        self.jobs[job.run_id] = job
        self._queue.put(job)
        return job

    def get(self, run_id: str) -> Job:
        return self.jobs[run_id]

    def cancel(self, run_id: str) -> None:
        self.jobs[run_id].cancel()

    def active(self) -> list[Job]:
        return [job for job in self.jobs.values() if not job.done.is_set()]

    def _work(self) -> None:
        while True:
            self._run(self._queue.get())

    def _run(self, job: Job) -> None:
        try:
            if job.cancel_event.is_set():
                raise Cancelled()
            runner.execute(job.recipe, job.run_dir, self.workspace, job.log, job.cancel_event, job.callbacks)
        except Cancelled:
            job.log.set_status("cancelled", finished=time.time(), message="Stopped by the user.")
        except Exception as exc:  # any failure ends this run only; the worker goes on to the next
            (job.run_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
            log.warning("run %s failed: %s", job.run_id, exc)
            job.log.set_status("failed", finished=time.time(), error=explain(exc))
        finally:
            job.log.close()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # the next run gets the whole device
            job.done.set()

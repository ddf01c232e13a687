"""The job API the CLI and the UI use: start a recipe, read its status and events, cancel it.

Runs execute one at a time on a single worker thread (one device, one run), in the order they were started;
a started run waits with status "queued". Nothing here blocks the caller.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from studio.engine import runner
from studio.engine.data import DataError
from studio.engine.events import STATUS_FILE, EventLog, mark_interrupted, read_json
from studio.engine.loop import Callback, Cancelled
from studio.engine.models import ModelError
from studio.recipe import Recipe, RecipeError, load, validate
from studio.workspace import Workspace

log = logging.getLogger(__name__)
FINISHED = ("completed", "failed", "cancelled", "interrupted")
RESUMABLE = ("cancelled", "interrupted", "failed")


class ResumeError(ValueError):
    """A run that cannot be resumed; the message says why."""


def out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def explain(exc: BaseException) -> str:
    """The failure in words a user can act on."""
    if isinstance(exc, (DataError, ModelError, RecipeError)):
        return str(exc)
    if out_of_memory(exc):
        return ("The device ran out of memory. Use a smaller batch size (train.batch_size), a smaller model, "
                "or feature extraction; or tick 'retry with half the batch' (train.retry_smaller_batch).")
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Job:
    run_id: str
    run_dir: Path
    recipe: Recipe
    log: EventLog
    callbacks: list[Callback] = field(default_factory=list)
    resume: bool = False
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
        mark_interrupted(workspace.run_dirs())
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
        return self._enqueue(Job(run_dir.name, run_dir, recipe, EventLog(run_dir), list(callbacks)),
                             task=recipe.task, model=recipe.model, strategy=recipe.strategy, created=time.time())

    def resume(self, run_id: str, callbacks: list[Callback] = ()) -> Job:
        """Queues a cancelled, interrupted or failed run again; it continues from its last finished epoch
        (from the start if it had not finished one), in the same run folder."""
        run_dir = self.workspace.find_run(run_id)
        status = (read_json(run_dir / STATUS_FILE) or {}).get("status")
        live = self.jobs.get(run_dir.name)
        if (live is not None and not live.done.is_set()) or status not in RESUMABLE:
            raise ResumeError(f"Run {run_dir.name} is {status}; only a cancelled, interrupted or failed run can "
                              "be resumed.")
        job = Job(run_dir.name, run_dir, load(run_dir / "recipe.yaml"), EventLog(run_dir), list(callbacks),
                  resume=True)
        return self._enqueue(job, error=None, message=None)

    def _enqueue(self, job: Job, **fields) -> Job:
        job.log.set_status("queued", run_id=job.run_id, position=self._queue.qsize() + 1, pid=os.getpid(),
                           **fields)
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
            self._execute(job)
        except Cancelled:
            job.log.set_status("cancelled", finished=time.time(), message="Stopped by the user.")
        except Exception as exc:  # any failure ends this run only; the worker goes on to the next
            (job.run_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
            log.info("run %s failed: %s", job.run_id, exc)  # the reason is in status.json; callers show it
            job.log.set_status("failed", finished=time.time(), error=explain(exc))
        finally:
            job.log.close()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # the next run gets the whole device
            job.done.set()

    def _execute(self, job: Job) -> None:
        """Runs the job; out of memory with train.retry_smaller_batch on, tries again with half the batch."""
        while True:
            try:
                runner.execute(job.recipe, job.run_dir, self.workspace, job.log, job.cancel_event, job.callbacks,
                               resume=job.resume)
                return
            except Exception as exc:
                size = job.recipe.train.batch_size
                if not (out_of_memory(exc) and job.recipe.train.retry_smaller_batch and size > 1):
                    raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            job.recipe.train.batch_size = size // 2
            job.recipe.save(job.run_dir / "recipe.yaml")  # the recipe on disk says what actually ran
            (job.run_dir / runner.LAST_STATE).unlink(missing_ok=True)  # its epochs had the old batch size
            job.resume = False
            job.log.emit("log", message=f"Out of memory with batch size {size}: retrying with {size // 2}.")

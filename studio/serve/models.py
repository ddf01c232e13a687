"""The models a server holds: each run's model loaded once, in the background after the server listens (requests
get 503 meanwhile), and kept loaded; a scheduler thread per model takes its waiting requests in turn — chat
requests with the same sampling settings batched into one generate call — so that requests never run on top of
each other on one model, and a busy model never holds up another."""
from __future__ import annotations

import concurrent.futures
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from studio import tasks
from studio.errors import first_line
from studio.families.base import ModelInfo
from studio.run.inference import Predictor, model_folder
from studio.serve.generation import MAX_BATCH, Completion, generate

BATCH_WINDOW_S = 0.02  # an idle model waits this long for companions to a first request (clients sent together)


class QueueFull(Exception):
    """More requests wait for this model than the server lets wait."""


class Call:
    """A job that runs alone on the model's thread (a classification): its result, or exception, in `future`."""

    def __init__(self, work: Callable[[], Any]):
        self.work, self.future = work, concurrent.futures.Future()

    def __call__(self) -> None:
        try:
            self.future.set_result(self.work())
        except Exception as exc:  # the caller's await raises it
            self.future.set_exception(exc)


class ServedModel:
    """One run's model: `state` is loading, ready or failed (`error` says why); `chat` for chat models, else
    `predictor` (a classifier's Predictor)."""

    def __init__(self, run_dir: Path, max_queue: int):
        self.folder = model_folder(run_dir)
        self.id, self.max_queue = run_dir.name, max_queue
        self.info = ModelInfo.read(self.folder)
        self.task = tasks.get(self.info.task)
        if not self.task.served_as:
            raise ValueError(f"run {self.id} is a {self.task.title or self.info.task} model, which the server "
                             "does not serve: it serves chat models and classifiers")
        self.created = int(self.folder.stat().st_mtime)
        self.state, self.error = "loading", ""
        self.chat = self.predictor = None
        self._waiting: deque = deque()
        self._wake = threading.Condition()

    @property
    def name(self) -> str:
        return f"{Path(self.info.model).name}, {self.task.title}"

    def load(self) -> None:
        try:
            if self.task.served_as == "chat":
                self.chat = self.task.chat(self.folder)
            else:
                self.predictor = Predictor(self.folder)
        except Exception as exc:  # a model that cannot load is reported, the others are still served
            self.state, self.error = "failed", first_line(exc)
            print(f"error: run {self.id} could not be loaded: {self.error}", file=sys.stderr, flush=True)
            return
        threading.Thread(target=self._serve, name=f"serve-{self.id}", daemon=True).start()
        self.state = "ready"

    def submit(self, job: Completion | Call) -> None:
        """Queues a job; QueueFull when max_queue jobs already wait."""
        with self._wake:
            if len(self._waiting) >= self.max_queue:
                raise QueueFull()
            self._waiting.append(job)
            self._wake.notify()

    def _serve(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._waiting)
            if isinstance(self._waiting[0], Completion):
                time.sleep(BATCH_WINDOW_S)
            batch = self._take()
            if not batch:
                continue
            if isinstance(batch[0], Call):
                batch[0]()
            else:
                generate(self.chat, batch)

    def _take(self) -> list:
        """The next job, with the waiting completions that can share its generate call; abandoned ones dropped."""
        with self._wake:
            first = self._waiting.popleft()
            if not isinstance(first, Completion):
                return [first]
            batch = [first]
            if first.batch_key is not None:
                batch += [job for job in self._waiting if isinstance(job, Completion)
                          and job.batch_key == first.batch_key][:MAX_BATCH - 1]
                for job in batch[1:]:
                    self._waiting.remove(job)
            return [job for job in batch if not job.cancelled.is_set()]


def load_all(models: list[ServedModel]) -> threading.Thread:
    """Loads the models one after another (not all at once: memory) in a background thread."""
    def load():
        for model in models:
            model.load()
            print(f"Model {model.id} {model.state}", file=sys.stderr, flush=True)
    thread = threading.Thread(target=load, name="serve-load", daemon=True)
    thread.start()
    return thread

"""The job API the CLI and the UI use: start a recipe, read its status and events, cancel it, resume it. It never
trains: a backend (studio/run/backends) carries each run, in a worker process on this machine (studio/run/worker.py)
or in a job on a Ray cluster, that outlives whoever started it. Runs queue in the order they were started: one at a
time per device across every studio process on the machine, or until a cluster has what they ask.

Tests and the benchmark may ask for `in_process=True`: runs then take the worker's own path (worker.train) on one
thread of this process, in order, with loop callbacks; users never do.
"""
from __future__ import annotations

import logging
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from studio import recipe as recipes
from studio import tasks
from studio.recipe import Recipe, RecipeError
from studio.run import admission, backends, worker
from studio.runfolder import ACTIVE, FINISHED, RECIPE, RESUMABLE, EventWriter, RunFolder, mark_interrupted
from studio.workspace import Workspace

log = logging.getLogger(__name__)
WAIT_POLL_S = 0.1


class ResumeError(RecipeError):
    """A run that cannot be resumed; the message says why."""


@dataclass
class Job:
    """A handle on a run folder: everything it says comes from the folder, so any process can hold one."""
    run: RunFolder
    recipe: Recipe
    process: subprocess.Popen | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)  # the in-process path's flag
    finished: threading.Event = field(default_factory=threading.Event)  # the in-process path's end

    @property
    def run_id(self) -> str:
        return self.run.id

    @property
    def run_dir(self) -> Path:
        return self.run.path

    @property
    def status(self) -> dict:
        return self.run.status()

    @property
    def done(self) -> bool:
        """Finished as the run folder says (its last word, written before the worker exits), or its worker gone."""
        if self.status.get("status") in FINISHED:
            return True
        if self.process is not None:
            return self.process.poll() is not None and self.status.get("status") not in ACTIVE
        if self.finished.is_set():
            return True
        return self.status.get("status") in FINISHED

    def events(self, since: int = 0) -> list[dict]:
        """Events from index `since` on: a reader keeps its count and asks for what is new."""
        return self.run.events(since)

    def cancel(self) -> None:
        self.cancel_event.set()
        backends.for_run(self.run).cancel(self.run)

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(WAIT_POLL_S)
        return True


class JobManager:
    """spare: keep a worker process started ahead of need (a long-lived studio such as the UI), so a run starts
    without waiting for Python to import torch and transformers (this machine's runs only). The backend is the one
    $STUDIO_CLUSTER chooses (backends.chosen); in_process runs train on this machine."""

    def __init__(self, workspace: Workspace, in_process: bool = False, spare: bool = False):
        self.workspace = workspace
        self.in_process = in_process
        mark_interrupted(workspace.run_dirs())
        self.jobs: dict[str, Job] = {}
        self.backend = backends.this_machine() if in_process else \
            backends.chosen(workspace.spare_worker_log if spare else None)
        if in_process:
            self._queue: queue.Queue = queue.Queue()
            threading.Thread(target=self._work, name="studio-trainer", daemon=True).start()

    # -- starting -------------------------------------------------------------------------------------------------
    def start(self, recipe: Recipe, callbacks: list = (), owner: str | None = None) -> Job:
        """Checks the recipe (RecipeError if it cannot run), creates its run folder, queues it. owner: the account
        the run belongs to (None: a studio without accounts)."""
        recipe = tasks.resolved(recipe)
        if not self.in_process:
            self.backend.check(recipe)
        # Absolute data paths, so the saved recipe replays from any folder.
        for key in ("path", "validation_path", "corrections"):
            value = getattr(recipe.data, key)
            if value:
                setattr(recipe.data, key, str(Path(value).expanduser().resolve()))
        run = RunFolder(self.workspace.new_run_dir(recipe))
        recipe.save(run.file(RECIPE))
        EventWriter(run).set_status("queued", run_id=run.id, task=recipe.task, model=recipe.model,
                                    strategy=recipe.strategy, data_name=Path(recipe.data.path).name,
                                    created=time.time(), owner=owner, **self._where())
        return self._launch(Job(run, recipe), callbacks, resume=False)

    def resume(self, run_id: str, callbacks: list = ()) -> Job:
        """Queues a cancelled, interrupted or failed run again; it continues from its last checkpoint (from the
        start if it had none), in the same run folder."""
        run = RunFolder(self.workspace.find_run(run_id))
        mark_interrupted([run.path])
        status = run.status().get("status")
        if status not in RESUMABLE:
            raise ResumeError(f"Run {run.id} is {status}; only a cancelled, interrupted or failed run can be "
                              "resumed.")
        recipe = tasks.load(run.file(RECIPE))
        run.clear_cancel()
        EventWriter(run).set_status("queued", error=None, message=None, finished=None, **self._where())
        return self._launch(Job(run, recipe), callbacks, resume=True)

    def _launch(self, job: Job, callbacks: list, resume: bool) -> Job:
        self.jobs[job.run_id] = job
        if callbacks and not self.in_process:
            raise ValueError("loop callbacks run only in-process (JobManager(in_process=True))")
        admission.take_ticket(job.run.path)  # before the worker starts: the queue keeps start order
        if self.in_process:
            self._queue.put((job, list(callbacks), resume))
            return job
        job.process = self.backend.submit(job.run, resume)
        threading.Thread(target=self._reap, args=(job,), name=f"reap-{job.run_id}", daemon=True).start()
        return job

    def _where(self) -> dict:
        """What status.json records of the backend a run is queued on."""
        return self.backend.fields()

    def close(self) -> None:
        """Lets the spare worker go (it exits); running workers go on."""
        self.backend.close()

    def _reap(self, job: Job) -> None:
        """When a worker ends without saying how (killed, crashed), its run says so, in words."""
        code = job.process.wait()
        self.backend.worker_ended()
        if code == 0 or job.status.get("status") not in ACTIVE:
            return
        if code < 0:
            name = signal.Signals(-code).name
            why = f"killed by {name}" + (" — often the system running out of memory" if name == "SIGKILL" else "")
        else:
            why = f"it exited with code {code}; see worker.log in the run folder"
        mark_interrupted([job.run.path], reason=why)

    # -- reading ----------------------------------------------------------------------------------------------------
    def get(self, run_id: str) -> Job:
        """A handle on any run of the workspace (started here or elsewhere)."""
        if run_id not in self.jobs:
            run = RunFolder(self.workspace.find_run(run_id))
            self.jobs[run_id] = Job(run, recipes.load(run.file(RECIPE)))
        return self.jobs[run_id]

    def cancel(self, run_id: str) -> None:
        self.get(run_id).cancel()

    def forget(self, run_id: str) -> None:
        """Drops the handle on a run whose folder is gone (deleted)."""
        self.jobs.pop(run_id, None)

    def active(self) -> list[str]:
        """Ids of the workspace's queued and running runs, oldest first (started by any process)."""
        return [run["id"] for run in self.workspace.runs() if run["status"] in ACTIVE]

    # -- the in-process path (tests, benchmark) -------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job, callbacks, resume = self._queue.get()
            try:
                worker.train(job.run, resume, job.cancel_event, callbacks)
            finally:
                job.finished.set()

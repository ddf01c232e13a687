"""The studio's side of each comparison, always through its real path: a Recipe handed to the JobManager. Runs a
user makes go through a worker process (its spare worker already started, as in the UI); the lockstep training
ratios run in-process (JobManager(in_process=True)), where a Callback stamps the time at the end of each step."""
from __future__ import annotations

import json
import resource
import statistics
import threading
import time
from pathlib import Path

import torch

from bench.ui import CURVE_EVENTS
from studio.run.jobs import JobManager
from studio.engine.loop import Callback
from studio.recipe import DataSpec, Recipe, TrainSpec
from studio.runfolder import RunFolder
from studio.workspace import Workspace


class StepClock(Callback):
    """perf_counter at the end of every step (after the loop's own loss.item(), so the device is in step); asks the
    run to stop once `stop_after` steps are done (the run then ends "cancelled": its throughput is what counts)."""

    def __init__(self, stop_after: int | None = None):
        self.stop_after = stop_after
        self.times: list[float] = []
        self.sizes: list[int] = []
        self.epochs: list[int] = []

    def on_step_end(self, loop) -> None:
        self.times.append(time.perf_counter())
        self.epochs.append(loop.epoch)
        if self.stop_after is not None and loop.step >= self.stop_after:
            loop.cancel.set()

    def rate(self, warmup: int, measure: int, batch_size: int) -> dict:
        if len(self.times) < warmup + measure:
            raise RuntimeError(f"the studio run stopped after {len(self.times)} steps; the bench needs "
                               f"{warmup + measure}")
        window = self.epochs[warmup - 1:warmup + measure]
        if len(set(window)) != 1:
            raise RuntimeError("the measured steps cross an epoch boundary (and its validation); give the run "
                               "more training examples")
        seconds = self.times[warmup + measure - 1] - self.times[warmup - 1]
        return {"samples_per_s": measure * batch_size / seconds, "seconds": seconds, "steps": measure,
                "samples": measure * batch_size}


class Lockstep(Callback):
    """Runs a plain trainer in lockstep with the studio's loop, one step each in turn, so that whatever else the
    machine is doing weighs on both alike. At the end of each studio step the loop waits here while the bench's
    thread runs one plain step. A studio step is timed from the moment this callback lets the loop go until its next
    step ends: fetching the batch, moving it, forward, backward, clipping, optimizer and scheduler steps, the loss
    read back, the step event, the other callbacks."""

    def __init__(self, steps: int, timeout: float = 600):
        self.steps, self.timeout = steps, timeout
        self.studio_turn, self.bench_turn = threading.Event(), threading.Event()
        self.released: float | None = None
        self.released_faults = 0
        self.studio_s: list[float] = []
        self.studio_faults: list[int] = []  # minor page faults of the whole process during each studio step
        self.epochs: list[int] = []

    def on_step_end(self, loop) -> None:
        now, faults = time.perf_counter(), minor_faults()
        if self.released is not None:
            self.studio_s.append(now - self.released)
            self.studio_faults.append(faults - self.released_faults)
            self.epochs.append(loop.epoch)
        self.bench_turn.set()
        if not self.studio_turn.wait(self.timeout) or loop.step >= self.steps:
            loop.cancel.set()  # done (the run ends "cancelled"), or the bench has gone
            return
        self.studio_turn.clear()
        self.released_faults = minor_faults()
        self.released = time.perf_counter()

    def run(self, job, trainer) -> tuple[list[float], list[int]]:
        """Drives both until the studio has made `steps` steps. The plain trainer steps once after each studio step
        (its first step untimed, like the studio's); returns the plain step times and page faults."""
        plain_s: list[float] = []
        plain_faults: list[int] = []
        first = True
        while True:
            while not self.bench_turn.wait(1.0):
                if job.done:
                    raise RuntimeError(f"the studio run ended {job.status.get('status')} after "
                                       f"{len(self.studio_s) + 1} steps: {job.status.get('error')}")
            self.bench_turn.clear()
            if first:
                trainer.step()
                first = False
            else:
                faults = minor_faults()
                plain_s.append(trainer.timed_step())
                plain_faults.append(minor_faults() - faults)
            if len(self.studio_s) + 1 >= self.steps:
                return plain_s, plain_faults
            self.studio_turn.set()


def lockstep(manager: JobManager, rec: Recipe, trainer, warmup: int, measure: int, batch_size: int) -> dict:
    """samples/s of the studio and of the plain trainer over the same `measure` steps after `warmup`, run in
    lockstep; the ratio is the sum of the plain step times over the sum of the studio's."""
    clock = Lockstep(warmup + measure + 1)
    job = manager.start(rec, callbacks=[clock])
    try:
        plain_s, plain_faults = clock.run(job, trainer)
    finally:
        clock.studio_turn.set()
        job.wait(600)
    if job.status.get("status") == "failed":
        raise RuntimeError(f"studio run failed: {job.status.get('error')}")
    # studio_s[i] and plain_s[i] are both step i + 2 of their runs (a studio step 1 has no release time)
    studio_s, plain_s = clock.studio_s[warmup:warmup + measure], plain_s[warmup:warmup + measure]
    if len(studio_s) < measure or len(plain_s) < measure:
        raise RuntimeError("the lockstep run ended early")
    if len(set(clock.epochs[warmup:warmup + measure])) != 1:
        raise RuntimeError("the measured steps cross an epoch boundary (and its validation); give the run more "
                           "training examples")
    return {"studio_samples_per_s": measure * batch_size / sum(studio_s),
            "plain_samples_per_s": measure * batch_size / sum(plain_s),
            "ratio": sum(plain_s) / sum(studio_s),
            "median_ratio": statistics.median(plain_s) / statistics.median(studio_s),
            "studio_step_s": studio_s, "plain_step_s": plain_s,
            "studio_page_faults_per_step": statistics.mean(clock.studio_faults[warmup:warmup + measure]),
            "plain_page_faults_per_step": statistics.mean(plain_faults[warmup:warmup + measure])}


def minor_faults() -> int:
    """Minor page faults of the whole process so far (memory handed back to the system and touched again)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def recipe(task: str, model: str, data: str, strategy: str, validation_path: str | None = None,
           **train) -> Recipe:
    kind = {"text": "text-classification", "audio": "audio-classification"}.get(task, "image-classification")
    return Recipe(task=kind, model=model, data=DataSpec(path=str(data), validation_path=validation_path),
                  strategy=strategy, train=TrainSpec(**train))


def run(manager: JobManager, rec: Recipe, callbacks=(), timeout: float = 3600) -> dict:
    """Starts the recipe through the job API and waits; returns wall time (start() to done), status, events."""
    start, cpu = time.perf_counter(), time.process_time()
    job = manager.start(rec, callbacks=list(callbacks)) if callbacks else manager.start(rec)
    if not job.wait(timeout):
        job.cancel()
        job.wait(60)
        raise RuntimeError(f"studio run {job.run_id} did not finish in {timeout:.0f} s")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    status = job.status
    return {"wall_s": wall, "cpu_s": cpu, "status": status, "events": RunFolder(job.run_dir).events(), "run_dir": job.run_dir,
            "job": job}


def must_complete(result: dict) -> dict:
    status = result["status"]
    if status.get("status") != "completed":
        raise RuntimeError(f"studio run {result['run_dir'].name} ended {status.get('status')}: "
                           f"{status.get('error')}")
    return result


def phases(events: list[dict]) -> dict:
    """Where a run's wall time went, from its own event stamps (seconds since the run started)."""
    t0 = next(e["time"] for e in events if e["type"] == "status" and e["status"] == "running")
    first = lambda kind: next((e["time"] - t0 for e in events if e["type"] == kind), None)  # noqa: E731
    last = lambda kind: next((e["time"] - t0 for e in reversed(events) if e["type"] == kind), None)  # noqa: E731
    end = events[-1]["time"] - t0
    out = {"data_loaded_s": first("data"), "model_built_s": first("model"),
           "features_first_batch_s": first("progress"), "features_done_s": last("progress"),
           "first_step_s": first("step"), "last_epoch_s": last("epoch"), "finished_s": end}
    return {k: (round(v, 3) if v is not None else None) for k, v in out.items()}


def feature_extraction(manager: JobManager, model: str, data: str, batch_size: int, epochs: int | None,
                       validation_path: str | None = None, task: str = "image") -> dict:
    rec = recipe(task, model, data, "feature-extraction", validation_path, batch_size=batch_size, epochs=epochs)
    result = must_complete(run(manager, rec))
    report = json.loads((result["run_dir"] / "eval.json").read_text())
    return {"wall_s": result["wall_s"], "cpu_s": result["cpu_s"], "accuracy": report["accuracy"], "phases": phases(result["events"]),
            "cached": any("from the cache" in e.get("message", "") for e in result["events"]),
            "epochs_run": sum(e["type"] == "epoch" for e in result["events"])}


def throughput(manager: JobManager, task: str, model: str, data: str, strategy: str, batch_size: int,
               warmup: int, measure: int, **train) -> dict:
    """samples/s of a studio run over the `measure` steps after `warmup`; then the run is stopped."""
    clock = StepClock(stop_after=warmup + measure)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    rec = recipe(task, model, data, strategy, batch_size=batch_size, epochs=1, **train)
    result = run(manager, rec, [clock])
    if result["status"].get("status") == "failed":
        raise RuntimeError(f"studio {strategy} run failed: {result['status'].get('error')}")
    out = clock.rate(warmup, measure, batch_size)
    if torch.cuda.is_available():
        out["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    out["trainable_parameters"] = next(e["trainable"] for e in result["events"] if e["type"] == "model")
    return out


def new_manager(root: Path, in_process: bool = False, warm_s: float = 20.0) -> JobManager:
    """The job manager a user's studio has: runs in worker processes, a spare worker started ahead (given
    `warm_s` seconds to import its libraries, as a UI open for a while has). in_process: the tests' and lockstep
    path."""
    manager = JobManager(Workspace(root), in_process=in_process, spare=not in_process)
    if not in_process:
        deadline = time.time() + warm_s
        while time.time() < deadline and not spare_ready(manager):
            time.sleep(0.2)
    return manager


def spare_ready(manager: JobManager) -> bool:
    """Whether the spare worker has imported its libraries (it then waits on its stdin, sleeping)."""
    spare = manager.backend._spare  # the local backend's
    if spare is None or spare.poll() is not None:
        return False
    try:
        state = Path(f"/proc/{spare.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cpu = sum(int(x) for x in Path(f"/proc/{spare.pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
    except OSError:
        return False
    previous = getattr(manager, "_bench_cpu", None)
    manager._bench_cpu = cpu
    return state == "S" and previous == cpu  # asleep, and no CPU time used since the last look


def first_step_s(manager: JobManager, rec: Recipe, timeout: float = 600) -> float:
    """Seconds from start() to the run's first curve point (a step, or a solved head's first candidate); the run
    is then stopped."""
    start = time.time()
    job = manager.start(rec)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = next((e for e in job.events() if e["type"] in CURVE_EVENTS), None)
        if step is not None:
            job.cancel()
            job.wait(120)
            return step["time"] - start
        if job.done:
            raise RuntimeError(f"studio run ended {job.status.get('status')} before its first step: "
                               f"{job.status.get('error')}")
        time.sleep(0.02)
    raise RuntimeError("no step within the timeout")

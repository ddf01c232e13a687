"""The worker: one process per run, started by the job manager (or `studio worker RUN_DIR`), in its own session so
that the UI or a shell can die without taking training with it (or as a Ray job a cluster placed). It waits for its
devices in the machine-wide queue (not when a cluster placed it: the cluster reserved them), trains, and writes
events.jsonl and status.json; the UI and the CLI only read them. It never imports gradio.

With train.devices > 1 it launches one process per device under `accelerate launch` (this module again, with
--rank), holds the devices while they train, and reports a rank that died; placed by a cluster, Ray Train's workers
are the ranks instead (ray_train.py). Only rank 0 writes the run folder.

Stopping: a `cancel` file in the run folder (any process may write it) or SIGUSR1/SIGTERM to the worker.

`train()` is the one path every run takes, from the queue to its outcome: the worker process calls it, and so does
JobManager(in_process=True) on a thread of its own (tests and the benchmark, which look inside the loop).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from studio import recipe as recipes
from studio import tasks
from studio.engine.device import devices_found, pick_device
from studio.engine.distributed import Distributed
from studio.engine.loop import Cancelled
from studio.errors import UserError
from studio.run import admission, ray_train
from studio.run.runner import execute, explain, out_of_memory, with_retries
from studio.run.stopping import CANCEL_POLL_S, ending, watch_cancel_file, watch_signals
from studio.runfolder import CANCEL, ERROR_LOG, RECIPE, WORKER_LOG, EventWriter, NullWriter, RunFolder, identity
from studio.workspace import Workspace, confine_caches

NICENESS = 10  # training yields the CPU to the UI and the browser when they need it; it still takes all the rest


class RankFailure(RuntimeError):
    """Training on several devices failed; the message is what rank 0 wrote, or how a rank died."""

    def __init__(self, message: str, out_of_memory: bool = False):
        super().__init__(message)
        self.out_of_memory = out_of_memory


def device_plan(recipe: recipes.Recipe) -> tuple[str, int, int]:
    """(device kind, how many devices the run takes, how many this machine has)."""
    kind = pick_device(recipe.train.device).type
    found = devices_found()
    available = found["count"] if found["kind"] == kind else 1
    wanted = recipe.train.devices
    count = available if wanted == "all" else int(wanted)
    if kind == "cuda" and count > available:
        raise UserError(f"Recipe key 'train.devices' asks for {count} GPUs but this machine has {available}.")
    if kind == "mps" and count > 1:
        raise UserError("Recipe key 'train.devices': Apple's MPS is one device; use devices: 1.")
    return kind, count, available


def workspace_of(run: RunFolder) -> Workspace:
    return Workspace(run.path.parent.parent)  # <workspace>/<output_dir>/<run-id>


def train(run: RunFolder, resume: bool, cancel: threading.Event, callbacks: list = ()) -> str:
    """Queues the run for its devices, trains it (in this process, or in one process per device under
    `accelerate launch`), retries with half the batch when memory runs out, and writes the outcome to status.json;
    returns it. callbacks: loop callbacks (in this process only)."""
    done = threading.Event()
    watch_cancel_file(run, cancel, done)
    events = EventWriter(run)
    # Placed by a cluster, the run's process of record is the placer that submitted it (status.json's pid): this
    # one may be on another machine.
    placed = admission.placed_by_cluster()
    events.set_status("queued", **({} if placed else identity()))

    def attempt(resume_now: bool) -> None:
        recipe = tasks.load(run.file(RECIPE))
        if placed and ray_train.spreads(recipe):  # Ray Train's workers take the cluster's devices, one each
            failure = ray_train.launch(run, recipe, rank_on_ray, resume_now, cancel)
            ranks_ended(run, cancel, failure or "Ray Train's workers ended")
            return
        kind, count, available = device_plan(recipe)
        if callbacks and count > 1:
            raise UserError("Loop callbacks run in this process only; train.devices must be 1 to use them.")
        # The cluster reserved this run's devices (and set CUDA_VISIBLE_DEVICES to them): no machine queue then.
        got = (None, 0) if placed else admission.wait_for_devices(
            run.path, kind, count, available, cancel, lambda place: events.set_status("queued", **place))
        if got is None:
            raise Cancelled()
        lock, first = got
        try:
            if count > 1:
                launch_ranks(run, kind, count, first, resume_now, cancel)
            else:
                execute(run, workspace_of(run), events, cancel, Distributed(), callbacks, resume_now,
                        device_index=first if kind == "cuda" else None)
        finally:
            if lock is not None:
                lock.release()

    try:
        return with_retries(run, events, attempt, resume)
    finally:
        done.set()
        events.close()


def main_worker(run_dir: Path, resume: bool) -> int:
    cancel = threading.Event()
    run = RunFolder(run_dir)
    watch_signals(cancel, run)
    outcome = train(run, resume, cancel)
    return 0 if outcome in ("completed", "cancelled") else 1


def launch_ranks(run: RunFolder, kind: str, count: int, first: int, resume: bool, cancel: threading.Event) -> None:
    """One process per device under `accelerate launch`; waits for them, stopping them if asked."""
    env = worker_environment()
    if kind == "cuda":
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(first, first + count))
    port = free_port()
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(count),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(port), "-m", "studio.run.worker", "--rank", str(run.path)]
    if resume:
        command.append("--resume")
    with open(run.file(WORKER_LOG), "a") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                   cwd=workspace_of(run).root)
    while process.poll() is None:
        if cancel.is_set():
            run.file(CANCEL).touch()  # the ranks poll it and stop at the same step
        time.sleep(CANCEL_POLL_S)
    ranks_ended(run, cancel, f"exit code {process.returncode}; see {WORKER_LOG} in the run folder")


def ranks_ended(run: RunFolder, cancel: threading.Event, how: str) -> None:
    """How the ranks ended, from what rank 0 wrote: returns if the run completed, else raises Cancelled or a
    RankFailure (how: the launcher's words, for ranks that ended without rank 0 saying why)."""
    status = run.status()
    if status.get("status") == "completed":
        return
    if status.get("status") == "cancelled" or cancel.is_set():
        raise Cancelled()
    if status.get("status") == "failed":
        raise RankFailure(status.get("error", ""), bool(status.get("out_of_memory")))
    raise RankFailure(f"A training process ended unexpectedly ({how}).")


def worker_environment() -> dict[str, str]:
    """The environment a worker process gets: this one, with the folder that holds this studio first on the path
    (so the worker runs the same code, installed or not)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the studio package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def spawn_spare(log_path: Path) -> subprocess.Popen:
    """A worker started ahead of need: it imports the heavy libraries, then waits on its stdin for a run. Taking
    it saves a run the seconds a new Python process needs to import torch and transformers. It exits when its
    stdin closes without a run (the studio that started it went away)."""
    command = [sys.executable, "-m", "studio.run.worker", "--spare", "-"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        return subprocess.Popen(command, env=worker_environment(), stdout=log, stderr=log, stdin=subprocess.PIPE,
                                cwd=log_path.parent, start_new_session=True, text=True)


def assign(spare: subprocess.Popen, run: RunFolder, resume: bool) -> bool:
    """Hands a run to a spare worker; False if it is gone (the caller spawns a fresh one)."""
    if spare.poll() is not None:
        return False
    try:
        spare.stdin.write(json.dumps({"run_dir": str(run.path), "resume": resume, "env": dict(os.environ)}) + "\n")
        spare.stdin.close()
    except (OSError, ValueError):
        return False
    return True


def main_spare() -> int:
    """Waits for a run on stdin (one JSON line), then becomes its worker."""
    import torch  # noqa: F401  the point of a spare: these are imported before a run needs them
    import torchvision  # noqa: F401
    import transformers  # noqa: F401
    from transformers import AutoConfig, AutoModel, AutoTokenizer  # noqa: F401
    for name in tasks.names():
        tasks.get(name)
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # no run came: the studio that started this spare has gone
    order = json.loads(line)
    os.environ.clear()
    os.environ.update(order["env"])  # the starter's environment now, e.g. limits set since this spare started
    run = RunFolder(order["run_dir"])
    log = os.open(run.file(WORKER_LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.chdir(workspace_of(run).root)
    return main_worker(run.path, order["resume"])


def spawn(run: RunFolder, resume: bool = False) -> subprocess.Popen:
    """Starts the worker of a run in its own session (a signal to the starter's process group does not reach it);
    its output goes to worker.log in the run folder."""
    command = [sys.executable, "-m", "studio.run.worker", str(run.path)] + (["--resume"] if resume else [])
    with open(run.file(WORKER_LOG), "a") as log:
        return subprocess.Popen(command, env=worker_environment(), stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, cwd=workspace_of(run).root, start_new_session=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 free at this moment."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main_rank(run_dir: Path, resume: bool) -> int:
    """One rank of a run on several devices (under accelerate launch)."""
    cancel = threading.Event()
    watch_signals(cancel, RunFolder(run_dir))
    return run_rank(run_dir, resume, cancel)


def rank_on_ray(config: dict) -> None:
    """One rank as a Ray Train worker (ray_train.py), on a thread of its own (no signals there: a stop comes as
    the cancel file)."""
    run_rank(Path(config["run_dir"]), config["resume"], threading.Event())


def run_rank(run_dir: Path, resume: bool, cancel: threading.Event) -> int:
    """One rank of a run on several devices, in the process group its launcher describes in the environment."""
    run = RunFolder(run_dir)
    recipe = recipes.load(run.file(RECIPE))
    dist = Distributed.from_environment(recipe.train.distributed)
    watch_cancel_file(run, cancel, threading.Event())
    events = EventWriter(run) if dist.is_main else NullWriter()
    try:
        execute(run, workspace_of(run), events, cancel, dist, resume=resume)
        return 0
    except Cancelled:
        state, message = ending(run)
        events.set_status(state, finished=time.time(), message=message)
        return 0
    except Exception as exc:  # rank 0 says why in status.json; the launcher reads it
        if dist.is_main:
            run.file(ERROR_LOG).write_text(traceback.format_exc(), encoding="utf-8")
        events.set_status("failed", finished=time.time(), error=explain(exc), out_of_memory=out_of_memory(exc))
        return 1
    finally:
        events.close()
        dist.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="studio worker", description="Train one run folder (its recipe.yaml).")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pt")
    parser.add_argument("--rank", action="store_true", help="one rank of a run on several devices (internal)")
    parser.add_argument("--spare", action="store_true", help="wait on stdin for a run (internal)")
    args = parser.parse_args(argv)
    try:
        os.nice(NICENESS)
    except OSError:
        pass
    if args.spare:
        return main_spare()
    confine_caches(workspace_of(RunFolder(args.run_dir)).root)  # kept when the starter already set them
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    return (main_rank if args.rank else main_worker)(args.run_dir.resolve(), args.resume)


if __name__ == "__main__":
    sys.exit(main())

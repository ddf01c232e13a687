"""The placer of a run on a Ray cluster: a small process on the studio's machine (no torch) that holds the run's
place in the queue until the cluster has the CPUs and GPUs it asks, submits it as a Ray job, and follows the job
to its end. Its pid is the run's in status.json, so a studio restarted meanwhile finds the run alive, and a stop
(the cancel file, SIGUSR1 or SIGTERM) reaches it: it stops the job, whose worker ends the run as cancelled.

A job that ends without the run saying how (Ray reports it FAILED or STOPPED, its node lost, its head restarted
and no longer knows it, the cluster silent for LOST_AFTER_S) leaves the run interrupted, with the reason, and
resumable like any other.

    python -m studio.run.backends.ray_placer ADDRESS RUN_DIR [--resume]
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

from studio import recipe as recipes
from studio.run import admission
from studio.run.backends import ray_jobs
from studio.run.stopping import ending, watch_cancel_file, watch_signals
from studio.runfolder import ACTIVE, RECIPE, EventWriter, RunFolder, identity

log = logging.getLogger(__name__)
POLL_S = 0.5
LOST_AFTER_S = 120  # the cluster not answering this long: the run is taken as lost


def next_job_id(client, run: RunFolder) -> str:
    """The run's id, or run-id-2, -3… when earlier attempts of the run took those (Ray never reuses an id)."""
    taken = {job.submission_id for job in client.list_jobs()}
    return next(j for j in [run.id] + [f"{run.id}-{n}" for n in range(2, 10_000)] if j not in taken)


def place(address: str, run: RunFolder, resume: bool, cancel: threading.Event) -> str:
    """Queues, submits and follows the run; returns how it ended."""
    events = EventWriter(run)
    events.set_status("queued", **identity())
    client = ray_jobs.connect(address)
    ask = ray_jobs.asks(recipes.load(run.file(RECIPE)), address)
    left: dict = {}

    def take(me: dict) -> str | None:
        left.update(ray_jobs.free(client, address))
        if left["CPU"] < ask["CPU"] or left["GPU"] < ask["GPU"]:
            return None
        job_id = ray_jobs.submit(client, run, next_job_id(client, run), ask, resume)
        events.set_status("queued", cluster_job_id=job_id, message=None, cluster_free=None, cluster_asks=None)
        return job_id

    def waiting(where: dict) -> None:
        cluster = admission.cluster_wait(left, ask) if left and not where.get("owner_limit") else {}
        events.set_status("queued", **{**where, **cluster})  # the owner's limit first: its words, not the cluster's

    job_id = admission.wait_turn(run.path, ray_jobs.cluster_key(address), take, cancel, waiting)
    if job_id is None:
        outcome, message = ending(run)
        events.set_status(outcome, finished=time.time(), message=message)
        return outcome
    info = follow(client, job_id, cancel)  # its JobInfo, or why it is lost
    outcome = run.status().get("status")
    if outcome in ACTIVE and cancel.is_set():  # stopped before its worker could say so (still starting)
        outcome, message = ending(run)
        events.set_status(outcome, finished=time.time(), message=message)
    elif outcome in ACTIVE:  # the job ended without the worker writing the run's end
        why = info if isinstance(info, str) else f"Ray reports the job {info.status.value}" + (
            f": {info.message}" if info.message else "")
        events.set_status("interrupted", finished=time.time(), message=(
            f"The run's job on the cluster ended while it was in progress ({why}). Resume it to continue from its "
            "last checkpoint."))
        outcome = "interrupted"
    events.close()
    return outcome


def follow(client, job_id: str, cancel: threading.Event):
    """Waits for the job's end (stopping it when asked): its JobInfo, or why it is lost (words) when the cluster
    stopped answering or, its head restarted, no longer knows the job."""
    stopped, last_answer = False, time.monotonic()
    while True:
        try:
            info = client.get_job_info(job_id)
            last_answer = time.monotonic()
            if info.status.is_terminal():
                return info
            if cancel.is_set() and not stopped:
                client.stop_job(job_id)
                stopped = True
        except Exception as exc:  # the head restarting, the network: keep asking a while
            log.warning("the cluster did not answer about job %s: %s", job_id, exc)
            if forgot(client, job_id):
                return "the cluster's head was restarted and no longer knows the job"
            if time.monotonic() - last_answer > LOST_AFTER_S:
                return f"the cluster did not answer for {LOST_AFTER_S} s"
        time.sleep(POLL_S)


def forgot(client, job_id: str) -> bool:
    """True when the cluster answers but has no such job: Ray keeps its jobs in the head's memory, so a restarted
    head has none of the jobs it ran before."""
    try:
        return job_id not in {job.submission_id for job in client.list_jobs()}
    except Exception:  # still not answering
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio.run.backends.ray_placer")
    parser.add_argument("address")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s placer: %(message)s")
    run, cancel, done = RunFolder(args.run_dir), threading.Event(), threading.Event()
    watch_signals(cancel, run)
    watch_cancel_file(run, cancel, done)
    try:
        outcome = place(args.address, run, args.resume, cancel)
    except ray_jobs.ClusterError as exc:
        EventWriter(run).set_status("interrupted", finished=time.time(), message=str(exc))
        outcome = "interrupted"
    finally:
        done.set()
    log.info("run %s: %s", run.id, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())

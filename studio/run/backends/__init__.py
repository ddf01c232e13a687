"""Where runs train: `local` (a worker process per run on this machine, the default) or `ray` (a Ray job per run
on the cluster named by `studio --cluster ADDRESS` or $STUDIO_CLUSTER). Each is a Backend (base.py)."""
from __future__ import annotations

import functools
import os
from pathlib import Path

from studio.run.backends.base import Backend
from studio.runfolder import RunFolder


def chosen(spare_log: Path | None = None) -> Backend:
    """The backend this studio sends its runs to: the cluster in $STUDIO_CLUSTER, else this machine (with a spare
    worker writing to spare_log, when given)."""
    address = os.environ.get("STUDIO_CLUSTER")
    return cluster(address) if address else this_machine(spare_log)


@functools.lru_cache(maxsize=8)
def cluster(address: str) -> Backend:
    """The Ray backend of a cluster, one per address for the process: its client is made once, not on each of
    a page's ticks."""
    from studio.run.backends.ray_jobs import RayBackend
    return RayBackend(address)


def this_machine(spare_log: Path | None = None) -> Backend:
    """This machine's backend."""
    from studio.run.backends.local import LocalBackend
    return LocalBackend(spare_log)


def for_run(run: RunFolder) -> Backend:
    """The backend that carries (or last carried) a run, as its status.json says."""
    status = run.status()
    if status.get("backend") == "ray" and status.get("cluster"):
        return cluster(status["cluster"])
    return this_machine()

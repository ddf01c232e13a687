"""The Ray backend: each run is one Ray job (Ray Jobs' JobSubmissionClient on the cluster's dashboard address,
http://HOST:8265). The job's submission id is the run's id (with -2, -3… on later attempts: Ray keeps ids for
good), its metadata names the run and its owner, and its entrypoint is `studio worker RUN_DIR` with the CPUs and
GPUs the run asks reserved for it. A placer process on this machine (ray_placer.py) waits for the run's turn,
submits it and follows it to its end.

The studio counts what the cluster has free itself: the alive nodes' CPUs and GPUs, less what its own jobs that are
pending or running reserved (their metadata says). Jobs other programs submit to the same cluster are not counted.
"""
from __future__ import annotations

import functools
import getpass
import logging
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from studio.errors import UserError
from studio.recipe import Recipe
from studio.run.admission import PLACED_BY_CLUSTER
from studio.run.backends.base import Backend, last_lines
from studio.run.backends.ray_log_follow import JobLogFollower
from studio.runfolder import FINISHED, WORKER_LOG, RunFolder
from studio.workspace import CACHE_VARIABLES

log = logging.getLogger(__name__)
INSTALL = 'pip install -e ".[cluster]" (or pip install "ray[default,train]")'
ACTIVE_JOB = ("PENDING", "RUNNING")
STOP_WAIT_S = 60  # Ray's grace between SIGTERM and SIGKILL when a job is stopped: time for a step to end
PASSED_ON = ("STUDIO_", "HF_", "TRANSFORMERS_", "TOKENIZERS_")  # environment a job gets from the studio
# never passed on: Ray keeps a job's environment and shows it on its dashboard (the nodes read the Hugging Face
# token from the token file in the shared HF_HOME instead). Searched in the name less its TOKENIZERS_ prefix.
SECRET = re.compile("TOKEN|SECRET|KEY|PASSWORD", re.IGNORECASE)
KEEP_FOLLOWED = 64  # jobs whose followed logs are kept (the oldest ended ones forgotten first)
FIRST_WAIT_S = 2.0  # a new follower's first lines (Ray sends the log so far at once)
LAST_WAIT_S = 5.0  # a finished run's job's last lines: printed a moment after the run's last word
RETRY_S = 30.0  # a follower whose tail failed is tried again after this long (meanwhile: the whole log)


class ClusterError(UserError):
    """The cluster cannot be used (Ray missing, nothing answering, too small for the run); the message says why."""


def connect(address: str):
    """A JobSubmissionClient on the cluster's address, or a ClusterError in words."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise ClusterError(f"Running on a cluster needs Ray: {INSTALL}.") from None
    try:
        return JobSubmissionClient(address)
    except (ConnectionError, ValueError):
        raise ClusterError(f"No Ray cluster answers at {address}. Start one (ray start --head) and give its "
                           "dashboard's address, e.g. http://HOST:8265.") from None


def cluster_key(address: str) -> str:
    """The name runs for this cluster queue under (admission's device kind)."""
    return "ray@" + (urlsplit(address).netloc or address)


def nodes(address: str) -> list[dict]:
    """The alive nodes' CPUs and GPUs."""
    from ray.util.state import list_nodes
    alive = list_nodes(address=address, filters=[("state", "=", "ALIVE")])
    return [{"id": n.node_id, "CPU": n.resources_total.get("CPU", 0.0), "GPU": n.resources_total.get("GPU", 0.0)}
            for n in alive]


def asks(recipe: Recipe, address: str) -> dict:
    """The CPUs and GPUs a run reserves on the cluster in all: train.cpus, and a GPU when it trains on GPUs (device
    auto: when the cluster has any), per device; "workers": its devices (above 1, Ray Train's workers reserve
    them, each its share, and the job's entrypoint nothing)."""
    device, devices = recipe.train.device, recipe.train.devices
    if device == "mps":
        raise ClusterError("Recipe key 'train.device' is mps (Apple's GPU), which a Ray cluster does not offer; "
                           "use auto, cuda or cpu.")
    if devices == "all":
        raise ClusterError("Recipe key 'train.devices' is 'all', which means nothing on a cluster: give a number.")
    gpus = device == "cuda" or (device == "auto" and any(n["GPU"] for n in nodes(address)))
    return {"CPU": float(recipe.train.cpus * devices), "GPU": float(devices) if gpus else 0.0, "workers": devices}


def free(client, address: str) -> dict:
    """CPUs and GPUs not reserved by the studio's pending or running jobs."""
    left = {"CPU": 0.0, "GPU": 0.0}
    for node in nodes(address):
        for key in left:
            left[key] += node[key]
    for job in client.list_jobs():
        meta = job.metadata or {}
        if job.status.value in ACTIVE_JOB and "studio_run" in meta:
            left["CPU"] -= float(meta.get("cpus", 0))
            left["GPU"] -= float(meta.get("gpus", 0))
    return left


def describe(address: str) -> dict:
    """What the cluster has, for the page: its nodes, CPUs and GPUs, and how many of them the studio's jobs leave
    free now; {"address", "answers": False} when it does not answer."""
    try:
        sizes, left = nodes(address), free(connect(address), address)
    except Exception as exc:  # down, restarting, unreachable: the page says so instead of failing
        log.warning("the cluster at %s did not answer: %s", address, exc)
        return {"address": address, "answers": False}
    return {"address": address, "answers": True, "nodes": len(sizes),
            "CPU": sum(n["CPU"] for n in sizes), "GPU": sum(n["GPU"] for n in sizes),
            "free_CPU": max(left["CPU"], 0.0), "free_GPU": max(left["GPU"], 0.0)}


def job_environment() -> dict[str, str]:
    """What the job's process needs of this one: the studio's folder first on its path (the same code, installed
    or not), the studio's and Hugging Face's settings, the caches (inside the workspace, on shared storage), the
    mark that the cluster placed it, and Ray's grace for a stop; no secrets (SECRET: tokens, keys, passwords)."""
    root = str(Path(__file__).resolve().parents[3])  # the folder holding the studio package
    env = {k: v for k, v in os.environ.items()
           if (k.startswith(PASSED_ON) or k in CACHE_VARIABLES) and k != "STUDIO_CLUSTER"
           and not SECRET.search(k.removeprefix("TOKENIZERS_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env[PLACED_BY_CLUSTER] = "1"
    env["RAY_JOB_STOP_WAIT_TIME_S"] = str(STOP_WAIT_S)
    return env


def submit(client, run: RunFolder, job_id: str, ask: dict, resume: bool) -> str:
    """Submits the run as a Ray job; returns its id."""
    command = [sys.executable, "-m", "studio.cli", "worker", str(run.path.resolve())] + (["--resume"] if resume else [])
    owner = run.status().get("owner") or getpass.getuser()
    spread = ask["workers"] > 1  # Ray Train's workers reserve the run's devices (ray_train.py)
    return client.submit_job(entrypoint=shlex.join(command), submission_id=job_id,
                             runtime_env={"env_vars": job_environment()},
                             metadata={"studio_run": run.id, "owner": owner, "cpus": str(ask["CPU"]),
                                       "gpus": str(ask["GPU"])},
                             entrypoint_num_cpus=0 if spread else ask["CPU"],
                             entrypoint_num_gpus=0 if spread else ask["GPU"])


class RayBackend(Backend):
    name = "ray"

    def __init__(self, address: str):
        self.address = address
        self._followers: dict[str, JobLogFollower] = {}
        self._lock = threading.Lock()

    @functools.cached_property
    def client(self):
        return connect(self.address)

    def fields(self) -> dict:
        return {"backend": self.name, "cluster": self.address, "cluster_job_id": None}

    def describe(self) -> dict:
        return describe(self.address)

    def check(self, recipe: Recipe) -> None:
        self.client  # noqa: B018  nothing answering: the ClusterError's words, before anything else
        ask = asks(recipe, self.address)
        sizes = nodes(self.address)
        each = {key: ask[key] / ask["workers"] for key in ("CPU", "GPU")}  # one process's share, on one node
        if not any(n["CPU"] >= each["CPU"] and n["GPU"] >= each["GPU"] for n in sizes):
            biggest = max(sizes, key=lambda n: (n["GPU"], n["CPU"]), default={"CPU": 0, "GPU": 0})
            raise ClusterError(f"This run asks for {each['CPU']:g} CPUs and {each['GPU']:g} GPUs on one node "
                               f"(train.cpus, train.devices) but the cluster's largest node has "
                               f"{biggest['CPU']:g} CPUs and {biggest['GPU']:g} GPUs.")
        total = {key: sum(n[key] for n in sizes) for key in ("CPU", "GPU")}
        if total["CPU"] < ask["CPU"] or total["GPU"] < ask["GPU"]:
            raise ClusterError(f"This run asks for {ask['CPU']:g} CPUs and {ask['GPU']:g} GPUs in all "
                               f"({ask['workers']} devices: train.devices, train.cpus each) but the cluster has "
                               f"{total['CPU']:g} CPUs and {total['GPU']:g} GPUs.")

    def submit(self, run: RunFolder, resume: bool) -> subprocess.Popen:
        command = [sys.executable, "-m", "studio.run.backends.ray_placer", self.address, str(run.path.resolve())]
        with open(run.file(WORKER_LOG), "a") as log:
            return subprocess.Popen(command + (["--resume"] if resume else []), stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    env={**os.environ, "PYTHONPATH": job_environment()["PYTHONPATH"]})

    def status(self, run: RunFolder) -> dict:
        """status.json, with Ray's word on the run's job ("cluster_status") while it has one."""
        status = run.status()
        if status.get("cluster_job_id"):
            status["cluster_status"] = self.client.get_job_status(status["cluster_job_id"]).value
        return status

    def logs(self, run: RunFolder, tail: int | None = None) -> str:
        """The job's log, or its last `tail` lines: those a follower of Ray's tail of the log holds
        (ray_log_follow.py), or, where following fails, those of the whole log (get_job_logs)."""
        status = run.status()
        job_id = status.get("cluster_job_id")
        if not job_id:
            return ""
        follower = None if tail is None else self.follower(job_id)
        if follower is None or follower.failed is not None:
            return last_lines(self.client.get_job_logs(job_id), tail)
        if status.get("status") in FINISHED:
            follower.ended.wait(LAST_WAIT_S)
        return "\n".join(follower.lines(tail))

    def follower(self, job_id: str) -> JobLogFollower:
        """The follower of the job's log: started on the first ask, and again when the last one stopped for want
        of readers, or failed (the head down) RETRY_S ago or more."""
        with self._lock:
            follower = self._followers.get(job_id)
            new = follower is None or follower.idle or (follower.failed is not None and
                                                        time.monotonic() - follower.failed_at > RETRY_S)
            if new:
                follower = self._followers[job_id] = JobLogFollower(self.client, job_id)
                ended = [job for job, f in self._followers.items() if f.ended.is_set()]
                for job in ended[:len(self._followers) - KEEP_FOLLOWED]:
                    del self._followers[job]
        if new:  # Ray sends the log so far at once: wait for it once, never again on each look
            follower.heard.wait(FIRST_WAIT_S)
        return follower

    def cancel(self, run: RunFolder) -> None:
        """The cancel file (and a signal to the placer, which stops the job); the job is also stopped from here, in
        case its placer is gone."""
        run.request_cancel()
        job_id = run.status().get("cluster_job_id")
        if job_id:
            try:
                self.client.stop_job(job_id)
            except (ClusterError, ConnectionError, RuntimeError) as exc:  # the cancel file still stops the run
                log.warning("could not stop job %s on %s: %s", job_id, self.address, exc)

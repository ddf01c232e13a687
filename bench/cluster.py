"""What running on a Ray cluster costs at the start: Start → first curve point through the Ray backend (a Ray job
per run: the placer, the job's submission, its entrypoint's Python starting) minus the same through the local
backend (its spare worker warm, as in the UI), on a local Ray head this section starts and ends itself.

local_head() is also the tests' head (tests/conftest.py's ray_cluster)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench import studio_side
from studio.run.jobs import JobManager
from studio.workspace import Workspace

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_session(sid: int, grace_s: float = 2.0) -> None:
    """Ends every process of a session (and what they started), and nothing else: SIGTERM, then SIGKILL after the
    grace."""
    import psutil
    procs = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid:
                procs += [proc, *proc.children(recursive=True)]
        except (OSError, psutil.Error):
            continue
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass
        _, procs = psutil.wait_procs(procs, timeout=grace_s)
        if not procs:
            return


def _answers(address: str) -> bool:
    from studio.run.backends import ray_jobs
    try:
        ray_jobs.connect(address).list_jobs()
        return True
    except Exception:  # not up yet
        return False


@contextmanager
def local_head(cpus: int = 2, port: int | None = None, timeout_s: float = 180, dashboard_port: int | None = None):
    """A Ray head on 127.0.0.1 with `cpus` CPUs and no GPU (its GCS on `port`, its Ray Jobs server on
    `dashboard_port`: free ones if not given; both given, a head started again has the same address), in a
    temporary folder of its own; yields its Ray Jobs address, and ends only its own processes."""
    tmp = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths under it must stay under 108 characters
    port, dashboard = port or _free_port(), dashboard_port or _free_port()
    command = [RAY, "start", "--head", "--num-cpus", str(cpus), "--num-gpus", "0", "--node-ip-address",
               "127.0.0.1", "--port", str(port), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
               "--include-dashboard", "true", "--ray-client-server-port", str(_free_port()),
               "--dashboard-agent-listen-port", str(_free_port()), "--disable-usage-stats", "--temp-dir", tmp]
    start = subprocess.Popen(command, env={**os.environ, "RAY_TMPDIR": tmp}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output, _ = start.communicate(timeout=timeout_s)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        if start.returncode != 0:
            raise RuntimeError(f"ray start failed: {output[-3000:]}")
        deadline = time.monotonic() + timeout_s
        while not _answers(address):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head's job server did not answer at {address}")
            time.sleep(0.2)
        yield address
    finally:
        stop_session(start.pid)
        subprocess.run(["rm", "-rf", tmp], check=False)


def section_cluster(ctx, results: dict) -> None:
    cfg = ctx.cfg
    folder = ctx.mnist("worker", 3, 0)
    rec = studio_side.recipe("image", cfg.image_model, str(folder), "full", batch_size=4, epochs=1)
    local = studio_side.first_step_s(ctx.fresh_manager("cluster-local"), rec)
    with local_head(cpus=os.cpu_count() or 2) as address:
        os.environ["STUDIO_CLUSTER"] = address  # the job manager made now sends its runs there
        try:
            ray = studio_side.first_step_s(JobManager(Workspace(ctx.work / "cluster-ray")), rec)
        finally:
            del os.environ["STUDIO_CLUSTER"]
    results["ray_submit_overhead_s"] = ray - local
    results["details"]["cluster"] = {
        "local_s": local, "ray_s": ray, "head": "a local Ray head (ray start --head) on this machine",
        "counted": "JobManager.start() to the first curve point of the same full fine-tuning recipe; local: a new "
                   "workspace's JobManager with its spare worker warm (as in the UI); ray: a JobManager on "
                   "$STUDIO_CLUSTER (the placer, the Ray job's submission and its entrypoint `studio worker`)"}

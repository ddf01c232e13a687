"""The check a cluster passes once when a studio is pointed at it (studio --cluster ADDRESS): every alive node must
see the workspace at the same path (runs read their recipe and write their folder there) and run the same studio,
torch and ray as this machine. A small Ray job (no CPUs reserved) runs a task pinned to each node; each reports
its versions and writes a probe file into the workspace, which the studio then reads back here. A node whose file
does not arrive cannot see the workspace.

    python -m studio.run.backends.cluster_check PROBE_DIR   (the job's entrypoint, on the cluster)
"""
from __future__ import annotations

import json
import shlex
import shutil
import socket
import sys
import time
import uuid
from importlib import metadata
from pathlib import Path

from studio.run.backends.ray_jobs import ClusterError, connect, job_environment
from studio.runfolder import read_json, write_json

PACKAGES = ("studio", "torch", "ray")
ANSWER = "studio-cluster-check: "  # the line of the job's log that holds the nodes' answers
CHECK_TIMEOUT_S = 300
_checked: set[tuple[str, str]] = set()  # (address, workspace) pairs this process has checked


def versions() -> dict[str, str]:
    """This Python's studio, torch and ray versions (as installed; "missing" when one is not)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def probe(folder: str) -> dict:
    """On one node: its name and versions, and a probe file written into the workspace (the folder the studio made
    there; a node that sees another disk at that path writes nothing the studio can read)."""
    import ray
    node = ray.get_runtime_context().get_node_id()
    answer = {"node": node, "host": socket.gethostname(), "versions": versions()}
    if Path(folder).is_dir():
        write_json(Path(folder) / f"{node}.json", answer)
    return answer


def main(argv: list[str] | None = None) -> int:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    folder = (argv or sys.argv[1:])[0]
    ray.init(log_to_driver=False)
    alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    task = ray.remote(num_cpus=0)(probe)
    pending = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(folder)
               for node in alive]
    print(ANSWER + json.dumps(ray.get(pending, timeout=CHECK_TIMEOUT_S)), flush=True)
    return 0


def check(address: str, workspace: Path) -> None:
    """Refuses (ClusterError, in words) a cluster a node of which cannot see the workspace or runs other versions;
    once per cluster and workspace in a process."""
    workspace = Path(workspace).resolve()
    if (address, str(workspace)) in _checked:
        return
    answers, seen = run_probe(address, workspace)
    mine = versions()
    for node in answers:
        name = f"{node['host']} ({node['node'][:8]})"
        if node["node"] not in seen:
            raise ClusterError(f"The workspace {workspace} is not visible on node {name}: put it on a shared "
                               "filesystem, at the same path on every node of the cluster.")
        if node["versions"] != mine:
            raise ClusterError(f"Node {name} runs {_words(node['versions'])} but this machine runs {_words(mine)}: "
                               "every node must run the same versions as the studio that sends it runs.")
    _checked.add((address, str(workspace)))


def run_probe(address: str, workspace: Path) -> tuple[list[dict], set[str]]:
    """Runs the check's job: every node's answer, and the nodes whose probe file reached the workspace."""
    client = connect(address)
    folder = workspace / "cluster-check" / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    try:
        job = client.submit_job(entrypoint=shlex.join([sys.executable, "-m", __name__, str(folder)]),
                                runtime_env={"env_vars": job_environment()}, entrypoint_num_cpus=0,
                                metadata={"studio_check": str(workspace)})
        deadline = time.monotonic() + CHECK_TIMEOUT_S
        while not (status := client.get_job_status(job)).is_terminal():
            if time.monotonic() > deadline:
                client.stop_job(job)
                raise ClusterError(f"The cluster at {address} did not run the studio's check within "
                                   f"{CHECK_TIMEOUT_S} s (a job on each node); is it busy, or short of nodes?")
            time.sleep(0.3)
        logs = client.get_job_logs(job)
        answers = answers_in(logs)
        if status.value != "SUCCEEDED" or answers is None:
            last = " ".join(logs.strip().splitlines()[-3:])
            raise ClusterError(f"The studio's check of the cluster at {address} failed ({status.value}): {last}")
        return answers, {p.stem for p in folder.glob("*.json") if read_json(p)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def answers_in(logs: str) -> list[dict] | None:
    """The nodes' answers, from the check job's log (None if it has none)."""
    line = next((ln for ln in logs.splitlines() if ln.startswith(ANSWER)), None)
    return None if line is None else json.loads(line[len(ANSWER):])


def _words(found: dict) -> str:
    return ", ".join(f"{name} {found.get(name)}" for name in PACKAGES)


if __name__ == "__main__":
    sys.exit(main())

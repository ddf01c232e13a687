"""Faults of a cluster, each against real Ray processes of the test's own (never the session's shared head): the
head restarted while a run trains (the run ends interrupted in words, the studio goes on working, Resume completes
it on the restarted head); a node that runs another studio than the submitting machine (refused in words that name
the node and both versions)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corpus_cluster import said
from helpers import free_port, make_recipe, wait_for

pytest.importorskip("ray.job_submission", reason="the cluster extra (pip install -e \".[cluster]\")")

from studio.run.backends import cluster_check, ray_jobs  # noqa: E402
from studio.run.jobs import JobManager  # noqa: E402
from studio.runfolder import RunFolder  # noqa: E402
from studio.workspace import Workspace  # noqa: E402

STUDIO = str(Path(sys.executable).with_name("studio"))


def trained_steps(run: RunFolder) -> int:
    return sum(e["type"] == "step" for e in run.events())


def crash_head(port: int) -> None:
    """Kills the head at once, as a crash of its machine would: its own processes and what they started (the job's
    worker runs on the head). Not Ray's own way of ending a job's process once its supervisor is gone (a watcher
    polling the supervisor's pid): this test machine's init reaps no orphans, so that pid stays a zombie and the
    worker would go on."""
    import psutil
    gcs = next(p for p in psutil.process_iter(["cmdline"])
               if any(arg == f"--gcs_server_port={port}" for arg in p.info["cmdline"] or []))
    sid = os.getsid(gcs.pid)
    head = [p for p in psutil.process_iter() if _sid(p.pid) == sid]
    everything = {p.pid: p for proc in head for p in [proc, *_children(proc)]}.values()
    for proc in everything:
        proc.kill()
    psutil.wait_procs(list(everything), timeout=30)


def _children(proc) -> list:
    import psutil
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def worker_alive(run: RunFolder) -> bool:
    import psutil
    return any((p.info["cmdline"] or [])[1:5] == ["-m", "studio.cli", "worker", str(run.path.resolve())]
               and p.info["status"] != psutil.STATUS_ZOMBIE for p in psutil.process_iter(["cmdline", "status"]))


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


@pytest.mark.slow  # two heads one after the other, a run on each: ~2 min
def test_a_run_whose_head_restarts_is_interrupted_and_resumes_on_the_new_head(tmp_path, tiny_bert, text_csv,
                                                                              monkeypatch):
    from bench.cluster import local_head
    port, dashboard = free_port(), free_port()
    recipe = make_recipe("text", tiny_bert, text_csv, "full", epochs=40, batch_size=2)  # ~15 s here, unloaded
    recipe.train.early_stopping_patience = 0
    with local_head(cpus=2, port=port, dashboard_port=dashboard) as address:
        monkeypatch.setenv("STUDIO_CLUSTER", address)
        manager = JobManager(Workspace(tmp_path / "ws"))
        job = manager.start(recipe)
        wait_for(lambda: trained_steps(job.run) > 0, 180, "the run's first step on the cluster")
        crash_head(port)
    # The head is gone (its job's worker with it): the run waits for word of it; the studio itself goes on.
    assert job.status["status"] == "running", job.status
    assert not worker_alive(job.run)
    assert manager.active() == [job.run_id]
    assert ray_jobs.describe(address) == {"address": address, "answers": False}
    with local_head(cpus=2, port=port, dashboard_port=dashboard):
        assert job.wait(120) and job.status["status"] == "interrupted", job.status
        said("head-restarted", job.status["message"])
        assert job.process.wait(60) == 0  # its placer ends
        again = manager.resume(job.run_id)
        assert again.wait(300) and again.status["status"] == "completed", again.status
        assert again.status["cluster_job_id"] == job.run_id  # the new head never knew the first attempt's id


def other_install(folder: Path, torch_version: str) -> Path:
    """A Python environment like this one but for what it says of torch: its own site-packages, first on its path,
    holds a torch distribution's metadata of another version (what a node with another install reports); this
    environment's packages come after it. Its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    site = next(folder.glob("lib/python*/site-packages"))
    info = site / f"torch-{torch_version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {torch_version}\n")
    ours = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    (site / "zz-this-environment.pth").write_text(f"import site; site.addsitedir({str(ours)!r})\n")
    return folder / "bin" / "python"


@pytest.mark.slow  # a head and a node of its own: ~40 s
def test_a_node_with_another_install_is_refused_in_words_naming_it_and_the_versions(tmp_path):
    """Chosen with $STUDIO_CLUSTER only (no --cluster): the same check runs."""
    from bench.cluster import local_head, stop_session
    python = other_install(tmp_path / "other-env", "0.0.1")
    port = free_port()
    workspace = tmp_path / "ws"
    with local_head(cpus=2, port=port) as address:
        head = {n["id"] for n in ray_jobs.nodes(address)}
        node = subprocess.Popen([str(python), "-m", "ray.scripts.scripts", "start", "--address", f"127.0.0.1:{port}",
                                 "--num-cpus", "0", "--node-ip-address", "127.0.0.1", "--dashboard-agent-listen-port",
                                 str(free_port()), "--disable-usage-stats", "--block"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(lambda: len(ray_jobs.nodes(address)) == 2, 120, "the second node to join")
            (joined,) = {n["id"] for n in ray_jobs.nodes(address)} - head
            result = subprocess.run([STUDIO, "--workspace", str(workspace), "train", "recipe.yaml"],
                                    env={**os.environ, "STUDIO_CLUSTER": address}, capture_output=True, text=True,
                                    timeout=300)
        finally:
            stop_session(node.pid)
    assert result.returncode == 2, result.stderr
    mine = cluster_check.versions()
    words = " ".join(result.stderr.split())
    assert (f"Node {os.uname().nodename} ({joined[:8]}) runs studio {mine['studio']}, torch 0.0.1, ray {mine['ray']} "
            f"but this machine runs studio {mine['studio']}, torch {mine['torch']}, ray {mine['ray']}") in words, words
    said("incompatible-version", words)
    assert "Traceback" not in words

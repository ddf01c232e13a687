"""Runs on a Ray cluster (studio --cluster ADDRESS), against the test session's real Ray head with 2 CPUs on
127.0.0.1 (tests/conftest.py): a run started through the CLI trains as a Ray job and completes; a stop ends it
cancelled; a killed worker leaves it interrupted and resumable; two runs each asking for both CPUs run one after
the other, the second waiting in the studio's queue (not submitted) meanwhile; a run asking more than any node has
is refused before it queues; an address where nothing answers is said in words."""
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from corpus_cluster import said
from helpers import free_port, make_recipe, wait_for

pytest.importorskip("ray.job_submission", reason="the cluster extra (pip install -e \".[cluster]\")")

from studio.run.backends import ray_jobs  # noqa: E402
from studio.run.jobs import JobManager  # noqa: E402
from studio.runfolder import RunFolder  # noqa: E402
from studio.workspace import Workspace  # noqa: E402

STUDIO = str(Path(sys.executable).with_name("studio"))


@pytest.fixture
def cluster(ray_cluster):
    return ray_cluster  # the session's Ray head (tests/conftest.py)


def long_recipe(tiny_bert, text_csv, **train):
    recipe = make_recipe("text", tiny_bert, text_csv, "full", epochs=1000, batch_size=2, **train)
    recipe.train.early_stopping_patience = 0
    return recipe


def first_step(run: RunFolder) -> bool:
    return any(e["type"] == "step" for e in run.events())


def test_a_run_started_with_cluster_trains_as_a_ray_job(cluster, tmp_path, tiny_bert, text_csv):
    recipe_file = tmp_path / "recipe.yaml"
    make_recipe("text", tiny_bert, text_csv, "full").save(recipe_file)
    result = subprocess.run([STUDIO, "--cluster", cluster, "--workspace", str(tmp_path / "ws"), "train",
                             str(recipe_file)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    run = RunFolder(result.stdout.strip().splitlines()[-1])
    status = run.status()
    assert status["status"] == "completed" and "accuracy" in status
    assert (status["backend"], status["cluster"], status["cluster_job_id"]) == ("ray", cluster, run.id)
    client = ray_jobs.connect(cluster)
    # The run's status says it ended (the worker's last word) a moment before its process, and so the job, ends.
    wait_for(lambda: client.get_job_status(run.id).value == "SUCCEEDED", 60, "Ray to say the job succeeded")
    info = client.get_job_info(run.id)
    assert info.metadata["studio_run"] == run.id and info.metadata["owner"]
    backend = ray_jobs.RayBackend(cluster)
    assert backend.status(run)["cluster_status"] == "SUCCEEDED"
    assert f"studio.cli worker {run.path}" in backend.logs(run)  # Ray's own line: the entrypoint it ran


def test_a_stopped_ray_run_is_cancelled(cluster, tmp_path, tiny_bert, text_csv, monkeypatch):
    """Stopped by the studio: its cancel file, a signal to the placer, and Ray's stop_job."""
    monkeypatch.setenv("STUDIO_CLUSTER", cluster)
    job = JobManager(Workspace(tmp_path / "ws")).start(long_recipe(tiny_bert, text_csv))
    wait_for(lambda: first_step(job.run), 180, "the run's first step on the cluster")
    job.cancel()
    assert job.wait(120) and job.status["status"] == "cancelled", job.status
    client = ray_jobs.connect(cluster)
    wait_for(lambda: client.get_job_status(job.run_id).value == "STOPPED", 60, "Ray to say the job stopped")
    assert job.process.wait(60) == 0  # its placer ends with its job


def test_a_killed_worker_leaves_the_run_interrupted_and_it_resumes_as_a_new_job(cluster, tmp_path, tiny_bert,
                                                                                text_csv, monkeypatch):
    """The worker SIGKILLed on its node: Ray reports the job failed, the run is interrupted with Ray's reason.
    Resumed, it is submitted again under a new id (Ray never reuses one); stopped then from outside the studio
    (Ray's own stop_job: the worker's SIGTERM handler, with no cancel file of the studio's), it is interrupted
    again: no one stopped it in the studio."""
    monkeypatch.setenv("STUDIO_CLUSTER", cluster)
    manager = JobManager(Workspace(tmp_path / "ws"))
    client = ray_jobs.connect(cluster)
    job = manager.start(long_recipe(tiny_bert, text_csv))
    wait_for(lambda: first_step(job.run), 180, "the run's first step on the cluster")
    worker_of(job.run).kill()
    assert job.wait(120) and job.status["status"] == "interrupted", job.status
    assert "Ray reports the job FAILED" in job.status["message"]
    said("job-killed-on-node", job.status["message"])
    again = manager.resume(job.run_id)
    wait_for(lambda: again.status.get("cluster_job_id") == f"{job.run_id}-2", 60, "the resumed run's new job")
    wait_for(lambda: again.status["status"] == "running", 180, "the resumed run to train")
    client.stop_job(f"{job.run_id}-2")
    assert again.wait(120) and again.status["status"] == "interrupted", again.status
    said("job-stopped-from-outside", again.status["message"])
    assert again.process.wait(60) == 0


def worker_of(run: RunFolder) -> psutil.Process:
    """The worker process a Ray job runs for the run (the head is this machine)."""
    for proc in psutil.process_iter(["cmdline"]):
        if (proc.info["cmdline"] or [])[1:5] == ["-m", "studio.cli", "worker", str(run.path.resolve())]:
            return proc
    pytest.fail(f"no worker process for run {run.id}")


def test_two_runs_asking_the_whole_cluster_run_one_after_the_other(cluster, tmp_path, tiny_bert, text_csv,
                                                                   monkeypatch):
    monkeypatch.setenv("STUDIO_CLUSTER", cluster)
    manager = JobManager(Workspace(tmp_path / "ws"))
    client = ray_jobs.connect(cluster)
    first = manager.start(make_recipe("text", tiny_bert, text_csv, "full", cpus=2))
    second = manager.start(make_recipe("text", tiny_bert, text_csv, "full", cpus=2))
    wait_for(lambda: first.status["status"] == "running", 180, "the first run to start training")
    wait_for(lambda: "Waiting for the cluster" in (second.status.get("message") or ""), 60,
             "the second run to say what it waits for")
    assert second.status["status"] == "queued" and "0 CPUs" in second.status["message"]
    assert second.run_id not in {job.submission_id for job in client.list_jobs()}  # the studio's queue, not Ray's
    for job in (first, second):
        assert job.wait(300) and job.status["status"] == "completed", job.status
    assert second.status["started"] >= first.status["finished"]
    assert [job.process.wait(60) for job in (first, second)] == [0, 0]  # the placers end with their jobs
    assert client.get_job_info(second.run_id).metadata["cpus"] == "2.0"

    with pytest.raises(ray_jobs.ClusterError, match="asks for 3 CPUs and 0 GPUs.*largest node has 2 CPUs"):
        manager.start(make_recipe("text", tiny_bert, text_csv, "full", cpus=3))


def test_an_address_where_nothing_answers_is_said_in_words(tmp_path):
    address = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run([STUDIO, "--cluster", address, "--workspace", str(tmp_path), "train", "recipe.yaml"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"No Ray cluster answers at {address}" in result.stderr and "Traceback" not in result.stderr


def test_without_ray_cluster_says_how_to_install_it(tmp_path):
    blocked = "import sys; sys.modules['ray'] = None; from studio.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", blocked, "--cluster", "http://127.0.0.1:8265", "--workspace",
                             str(tmp_path), "train", "recipe.yaml"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert 'pip install -e ".[cluster]"' in result.stderr and "Traceback" not in result.stderr


def test_a_run_asking_what_the_cluster_lacks_is_refused_with_the_numbers(cluster, tmp_path, tiny_bert, text_csv,
                                                                         monkeypatch):
    """Refused before it queues: a GPU on a cluster without any, more devices than the cluster has CPUs for."""
    monkeypatch.setenv("STUDIO_CLUSTER", cluster)
    manager = JobManager(Workspace(tmp_path / "ws"))
    with pytest.raises(ray_jobs.ClusterError, match="asks for 1 CPUs and 1 GPUs on one node.*largest node has 2 "
                                                    "CPUs and 0 GPUs"):
        manager.start(make_recipe("text", tiny_bert, text_csv, "full", device="cuda"))
    with pytest.raises(ray_jobs.ClusterError, match=r"asks for 3 CPUs and 0 GPUs in all \(3 devices.*the cluster "
                                                    "has 2 CPUs and 0 GPUs"):
        manager.start(make_recipe("text", tiny_bert, text_csv, "full", devices=3))
    assert not list(manager.workspace.run_dirs())  # nothing queued

"""train.devices: 2 on a Ray cluster trains with Ray Train (two TorchTrainer workers running the studio's loop, gloo
on the CPU), against the test session's Ray head with 2 CPUs: world size 2, and the same validation loss as the
same recipe in two local processes under accelerate launch, within 1e-4. On two nodes of one CPU each, the two
workers train on different nodes."""
import json
import subprocess

import pytest

from helpers import free_port, make_recipe, wait_for

pytest.importorskip("ray.train", reason="the cluster extra (pip install -e \".[cluster]\")")

from studio.run.backends import ray_jobs  # noqa: E402
from studio.run.jobs import JobManager  # noqa: E402
from studio.workspace import Workspace  # noqa: E402


def two_devices(tiny_bert, text_csv):
    recipe = make_recipe("text", tiny_bert, text_csv, "full", epochs=2, batch_size=4, learning_rate=1e-4)
    recipe.train.devices = 2
    return recipe


def finished(job) -> list[float]:
    """The run's validation loss after each epoch (the trained model's, not only the kept best's)."""
    assert job.wait(600), "the two-device run did not finish"
    status = job.status
    assert status["status"] == "completed", (status, job.run.file("worker.log").read_text()[-3000:])
    assert status["world_size"] == 2
    steps = [e["step"] for e in job.events() if e["type"] == "step"]
    assert steps == list(range(1, len(steps) + 1))  # each step written once: rank 0 alone writes
    report = json.loads(job.run.file("eval.json").read_text())
    assert report["world_size"] == 2 and sum(map(sum, report["confusion_matrix"])) == report["num_examples"] == 6
    return [e["val_loss"] for e in job.events() if e["type"] == "epoch"]


@pytest.mark.slow  # two runs of two processes each on 2 CPU cores: ~75 s with the head
def test_two_devices_on_ray_train_learn_as_two_local_processes(ray_cluster, tmp_path, tiny_bert, text_csv,
                                                               monkeypatch):
    local = finished(JobManager(Workspace(tmp_path / "local")).start(two_devices(tiny_bert, text_csv)))
    monkeypatch.setenv("STUDIO_CLUSTER", ray_cluster)
    job = JobManager(Workspace(tmp_path / "ray")).start(two_devices(tiny_bert, text_csv))
    on_ray = finished(job)
    assert job.process.wait(60) == 0  # its placer ends with its job
    assert job.status["backend"] == "ray" and len(on_ray) == len(local) == 3  # the start, then 2 epochs
    assert all(abs(a - b) <= 1e-4 for a, b in zip(on_ray, local)), (on_ray, local)
    # Two workers of one CPU each trained on a 2-CPU cluster: the job's entrypoint reserved none of its own.
    assert ray_jobs.connect(ray_cluster).get_job_info(job.run_id).metadata["cpus"] == "2.0"


@pytest.mark.slow  # a head and a second node of their own, and a run: 30 s on idle cores, a minute under load
def test_two_devices_on_two_nodes_train_one_on_each(tmp_path, tiny_bert, text_csv, monkeypatch):
    from ray.util.state import list_actors

    from bench.cluster import RAY, local_head, stop_session
    port = free_port()
    with local_head(cpus=1, port=port) as address:
        node = subprocess.Popen([RAY, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", "--node-ip-address",
                                 "127.0.0.1", "--dashboard-agent-listen-port", str(free_port()),
                                 "--disable-usage-stats", "--block"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(lambda: len(ray_jobs.nodes(address)) == 2, 120, "the second node to join")
            monkeypatch.setenv("STUDIO_CLUSTER", address)
            job = JobManager(Workspace(tmp_path / "ws")).start(two_devices(tiny_bert, text_csv))
            finished(job)
            assert job.process.wait(60) == 0  # its placer ends with its job, before the cluster goes
            workers = list_actors(address=address, filters=[("class_name", "=", "RayTrainWorker")])
            assert len(workers) == 2 and len({w.node_id for w in workers}) == 2, workers
        finally:
            stop_session(node.pid)

"""The Train tab's view of a Ray job's log (studio/run/backends/ray_log_follow.py), against the test session's real
Ray head: its lines arrive through Ray's websocket tail while the job runs, the follower ends with the job holding
the log's last lines, stops when no one reads it, and says why when it cannot follow."""
import shlex
import sys

import pytest

from helpers import wait_for

pytest.importorskip("ray.job_submission", reason="the cluster extra (pip install -e \".[cluster]\")")

from studio.run.backends import ray_jobs  # noqa: E402
from studio.run.backends.ray_log_follow import JobLogFollower  # noqa: E402
from studio.runfolder import EventWriter, RunFolder  # noqa: E402


def printing_job(client, lines: int, every_s: float) -> str:
    code = f"import time\nfor i in range({lines}):\n    print(f'line {{i}}', flush=True)\n    time.sleep({every_s})"
    return client.submit_job(entrypoint=shlex.join([sys.executable, "-c", code]), entrypoint_num_cpus=0)


def newest(text: str) -> int:
    return max((int(line.split()[1]) for line in text.splitlines() if line.startswith("line ")), default=-1)


def test_a_running_jobs_log_arrives_through_rays_tail_and_ends_with_it(ray_cluster, tmp_path):
    client = ray_jobs.connect(ray_cluster)
    job = printing_job(client, 40, 0.25)
    run = RunFolder(tmp_path)
    EventWriter(run).set_status("running", backend="ray", cluster=ray_cluster, cluster_job_id=job)
    backend = ray_jobs.RayBackend(ray_cluster)
    try:
        wait_for(lambda: newest(backend.logs(run, tail=3)) >= 5, 120, "the job's first lines")
        assert client.get_job_status(job).value == "RUNNING"  # followed while it runs, not read at its end
        follower = backend.follower(job)
        assert follower is backend.follower(job)  # one per job
        wait_for(follower.ended.is_set, 120, "the tail to end with the job")
    finally:
        client.stop_job(job)
    assert client.get_job_status(job).value == "SUCCEEDED"
    assert (follower.failed, follower.idle) == (None, False)
    assert backend.logs(run, tail=3).splitlines() == ["line 37", "line 38", "line 39"]


def test_a_follower_no_one_reads_stops(ray_cluster):
    client = ray_jobs.connect(ray_cluster)
    job = printing_job(client, 600, 0.1)
    try:
        follower = JobLogFollower(client, job, idle_s=1.0)
        wait_for(follower.ended.is_set, 60, "the unread follower to stop")
        assert follower.idle and follower.failed is None
        assert client.get_job_status(job).value in ("PENDING", "RUNNING")  # it stopped, not the job
    finally:
        client.stop_job(job)


def test_a_follower_that_cannot_follow_says_why(ray_cluster):
    follower = JobLogFollower(ray_jobs.connect(ray_cluster), "no-such-job")
    wait_for(follower.ended.is_set, 60, "the follower to give up")
    assert follower.failed and not follower.idle

"""The check a cluster passes when a studio is pointed at it (studio/run/backends/cluster_check.py), against real
Ray nodes: the test session's head passes it (its one node sees the workspace and runs this studio's versions); a
second node that sees its own private copy of the workspace's folder (a tmpfs over it, in a mount namespace of its
own) is refused in words."""
import subprocess
import sys
from pathlib import Path

import pytest

from corpus_cluster import said
from helpers import free_port, wait_for

pytest.importorskip("ray.job_submission", reason="the cluster extra (pip install -e \".[cluster]\")")

from studio.run.backends import cluster_check, ray_jobs  # noqa: E402

STUDIO = str(Path(sys.executable).with_name("studio"))


def test_a_cluster_whose_nodes_see_the_workspace_and_run_the_same_versions_passes(ray_cluster, tmp_path):
    cluster_check.check(ray_cluster, tmp_path)
    assert not any((tmp_path / "cluster-check").iterdir())  # the probe files are cleaned up
    client = ray_jobs.connect(ray_cluster)
    job = next(j for j in client.list_jobs() if (j.metadata or {}).get("studio_check") == str(tmp_path.resolve()))
    answers = cluster_check.answers_in(client.get_job_logs(job.submission_id))
    assert [a["versions"] for a in answers] == [cluster_check.versions()]


@pytest.mark.slow  # a head and a node of its own: ~40 s
def test_a_node_that_does_not_see_the_workspace_is_refused_in_words(tmp_path):
    from bench.cluster import RAY, local_head, stop_session
    port = free_port()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with local_head(cpus=2, port=port) as address:
        # The second node sees a tmpfs of its own at the workspace's path: what a node without the shared disk sees.
        join = (f'mount -t tmpfs none "{workspace}" && exec "{RAY}" start --address 127.0.0.1:{port} --num-cpus 0 '
                f'--node-ip-address 127.0.0.1 --dashboard-agent-listen-port {free_port()} --disable-usage-stats --block')
        node = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", join],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(lambda: len(ray_jobs.nodes(address)) == 2, 120, "the second node to join")
            result = subprocess.run([STUDIO, "--cluster", address, "--workspace", str(workspace), "train",
                                     "recipe.yaml"], capture_output=True, text=True, timeout=300)
        finally:
            stop_session(node.pid)
    assert result.returncode == 2, result.stderr
    assert f"The workspace {workspace} is not visible on node " in result.stderr
    said("workspace-not-shared", result.stderr)
    assert "put it on a shared filesystem" in result.stderr and "Traceback" not in result.stderr

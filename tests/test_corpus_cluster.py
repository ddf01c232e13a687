"""The clusters' bad-input corpus (tests/corpus_cluster.py): the cheap cases run here through the command line in a
new process (and through the job manager where it is the API), against the test session's Ray head or an address
where nothing listens; every other case names the test that runs it, and that test checks the table's words."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corpus_cluster import CASES, HERE, REFUSED, said
from helpers import free_port, make_recipe

pytest.importorskip("ray.job_submission", reason="the cluster extra (pip install -e \".[cluster]\")")

from studio.run.backends import ray_jobs  # noqa: E402
from studio.run.jobs import JobManager  # noqa: E402
from studio.workspace import Workspace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STUDIO = str(Path(sys.executable).with_name("studio"))


def refused(command: list[str], case_id: str, **env) -> None:
    """The command ends at once with exit code 2 and the case's words, no traceback."""
    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=180,
                            cwd=ROOT)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    said(case_id, result.stderr)
    assert "Traceback" not in result.stderr


def test_nothing_listening(tmp_path):
    refused([STUDIO, "--cluster", f"http://127.0.0.1:{free_port()}", "--workspace", str(tmp_path), "train",
             "recipe.yaml"], "nothing-listening")


@pytest.mark.parametrize("how", ["studio train", "studio serve", "python launch.py"])
def test_nothing_listening_env(how, tmp_path):
    """$STUDIO_CLUSTER alone chooses the cluster, and the same check runs before anything starts (a server that
    started instead would not end, and the run would time out)."""
    command = {"studio train": [STUDIO, "--workspace", str(tmp_path), "train", "recipe.yaml"],
               "studio serve": [STUDIO, "--workspace", str(tmp_path), "serve", "--port", str(free_port())],
               "python launch.py": [sys.executable, "launch.py", "--workspace", str(tmp_path), "--port",
                                    str(free_port())]}[how]
    refused(command, "nothing-listening-env", STUDIO_CLUSTER=f"http://127.0.0.1:{free_port()}")


def test_gpus_lacking(ray_cluster, tmp_path, tiny_bert, text_csv, monkeypatch):
    """Through $STUDIO_CLUSTER alone: the cluster's check ran (its job for this workspace), then the recipe is
    refused with the numbers before it queues; the job manager says the same."""
    recipe = make_recipe("text", tiny_bert, text_csv, "full", device="cuda")
    recipe.save(tmp_path / "recipe.yaml")
    workspace = tmp_path / "ws"
    refused([STUDIO, "--workspace", str(workspace), "train", str(tmp_path / "recipe.yaml")], "gpus-lacking",
            STUDIO_CLUSTER=ray_cluster)
    checks = [job for job in ray_jobs.connect(ray_cluster).list_jobs()
              if (job.metadata or {}).get("studio_check") == str(workspace.resolve())]
    assert [job.status.value for job in checks] == ["SUCCEEDED"]
    monkeypatch.setenv("STUDIO_CLUSTER", ray_cluster)
    manager = JobManager(Workspace(workspace))
    with pytest.raises(ray_jobs.ClusterError) as error:
        manager.start(recipe)
    said("gpus-lacking", str(error.value))
    assert not manager.workspace.runs()  # refused before it queued


def test_devices_lacking(ray_cluster, tmp_path, tiny_bert, text_csv, monkeypatch):
    monkeypatch.setenv("STUDIO_CLUSTER", ray_cluster)
    manager = JobManager(Workspace(tmp_path / "ws"))
    with pytest.raises(ray_jobs.ClusterError) as error:
        manager.start(make_recipe("text", tiny_bert, text_csv, "full", devices=3))
    said("devices-lacking", str(error.value))
    assert not manager.workspace.runs()


RUNNERS = {"nothing-listening": test_nothing_listening, "nothing-listening-env": test_nothing_listening_env,
           "gpus-lacking": test_gpus_lacking, "devices-lacking": test_devices_lacking}


def test_every_case_has_a_runner_that_checks_its_words():
    assert len({case.id for case in CASES}) == len(CASES)
    for case in CASES:
        assert case.expect and case.done and case.end
        if case.proof == HERE:
            assert case.id in RUNNERS and case.end == REFUSED, case.id
            continue
        assert case.id not in RUNNERS, case.id
        file, name = case.proof.split("::")
        source = (ROOT / file).read_text()
        test = next((node for node in ast.parse(source).body
                     if isinstance(node, ast.FunctionDef) and node.name == name), None)
        assert test is not None, f"{case.id}: no test {case.proof}"
        assert f'said("{case.id}"' in ast.get_source_segment(source, test), f"{case.id}: {case.proof} skips its words"

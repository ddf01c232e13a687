"""Training in worker processes: a task defined only in tests/ trains through `studio train`; a worker never
imports gradio; runs queue one at a time per device across workspaces and processes, a killed lock holder does not
jam the queue, `studio stop` stops a run from any shell; two processes train one run on the CPU (DDP and FSDP)."""
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import make_recipe, wait_for
from studio.run.jobs import JobManager
from studio.runfolder import RunFolder
from studio.workspace import Workspace

TESTS = Path(__file__).resolve().parent
STUDIO = str(Path(sys.executable).with_name("studio"))


def studio(*args, env=None, timeout=300):
    return subprocess.run([STUDIO, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


def plugin_env(*modules) -> dict:
    return {"STUDIO_PLUGINS": ",".join(modules),
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def first_step(run: RunFolder) -> bool:
    return any(e["type"] == "step" for e in run.events())


def test_a_task_defined_in_tests_trains_through_the_worker_and_studio_train(tmp_path):
    rng = random.Random(0)
    rows = ["a,b,y"] + [f"{a:.3f},{b:.3f},{2 * a - b + rng.gauss(0, 0.05):.3f}"
                        for a, b in ((rng.uniform(-1, 1), rng.uniform(-1, 1)) for _ in range(120))]
    (tmp_path / "numbers.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "recipe.yaml").write_text(f"task: tabular-regression\nmodel: mlp\n"
                                          f"data: {{path: {tmp_path / 'numbers.csv'}, label_column: y}}\n"
                                          f"train: {{epochs: 40}}\n")
    ws = str(tmp_path / "ws")
    env = plugin_env("regression_task")
    result = studio("--workspace", ws, "train", str(tmp_path / "recipe.yaml"), env=env)
    assert result.returncode == 0, result.stderr
    run = RunFolder(result.stdout.strip().splitlines()[-1])
    status = run.status()
    assert status["status"] == "completed" and status["pid"] != os.getpid()
    assert status["rmse"] < 0.5  # y spans about ±3: the network learned it
    answer = studio("--workspace", ws, "predict", run.id, "0.5,-0.5", env=env)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["value"] == pytest.approx(1.5, abs=0.5)
    assert "tabular-regression" in studio("--workspace", ws, "runs", env=env).stdout


def test_a_worker_never_imports_gradio(tmp_path, tiny_bert, text_csv, monkeypatch):
    probes = tmp_path / "probes"
    probes.mkdir()
    monkeypatch.setenv("STUDIO_PROBE_OUT", str(probes))
    for name, value in plugin_env("worker_probe").items():
        monkeypatch.setenv(name, value)
    job = JobManager(Workspace(tmp_path / "ws")).start(make_recipe("text", tiny_bert, text_csv, "full"))
    assert job.wait(300) and job.status["status"] == "completed", job.status
    wait_for(lambda: any(probes.iterdir()), 30, "the worker's probe")
    worker = [json.loads(p.read_text()) for p in probes.iterdir()]
    assert [w["gradio"] for w in worker] == [[]]
    assert worker[0]["argv"][0].endswith(os.path.join("run", "worker.py"))  # it was the worker that reported


def long_recipe(tiny_bert, text_csv):
    recipe = make_recipe("text", tiny_bert, text_csv, "full", epochs=1000, batch_size=2)
    recipe.train.early_stopping_patience = 0
    return recipe


def test_runs_queue_across_workspaces_and_a_killed_worker_does_not_jam_the_queue(tmp_path, tiny_bert, text_csv):
    """Two studios on two workspaces share the device: the second run waits, saying how many are ahead. Killing
    the first run's worker (SIGKILL: no clean-up) frees the device at once; the first run is marked interrupted
    with the reason, and the second trains."""
    first = JobManager(Workspace(tmp_path / "a")).start(long_recipe(tiny_bert, text_csv))
    wait_for(lambda: first_step(first.run), what="the first run's first step")
    second = JobManager(Workspace(tmp_path / "b")).start(make_recipe("text", tiny_bert, text_csv, "full"))
    wait_for(lambda: second.status.get("position") == 1, 60, "the second run to report its place")
    assert second.status["status"] == "queued" and not first_step(second.run)
    assert (second.status["ahead_elsewhere"], second.status["ahead_here"], second.status["device"]) == (1, 0, "cpu")
    os.kill(first.status["pid"], signal.SIGKILL)
    assert second.wait(300) and second.status["status"] == "completed", second.status
    wait_for(lambda: first.status["status"] == "interrupted", 30, "the killed run to be marked")
    assert "SIGKILL" in first.status["message"]


@pytest.mark.slow  # about 25 s: two runs started and stopped from new processes
def test_studio_stop_stops_a_queued_and_a_running_run_from_another_shell(tmp_path, tiny_bert, text_csv):
    manager = JobManager(Workspace(tmp_path / "ws"))
    running = manager.start(long_recipe(tiny_bert, text_csv))
    queued = manager.start(long_recipe(tiny_bert, text_csv))
    wait_for(lambda: first_step(running.run), what="the first run's first step")
    for job in (queued, running):
        result = studio("--workspace", str(tmp_path / "ws"), "stop", job.run_id)
        assert result.returncode == 0, result.stderr
        assert job.wait(120) and job.status["status"] == "cancelled", job.status
    assert not first_step(queued.run)
    again = studio("--workspace", str(tmp_path / "ws"), "stop", running.run_id)
    assert again.returncode == 2 and "nothing to stop" in again.stderr


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, tiny_bert, text_csv):
    job = JobManager(Workspace(tmp_path_factory.mktemp("one")), in_process=True).start(
        make_recipe("text", tiny_bert, text_csv, "full", epochs=4, batch_size=4, learning_rate=1e-3))
    assert job.wait(300) and job.status["status"] == "completed"
    return json.loads(job.run.file("eval.json").read_text())


@pytest.mark.parametrize("mode", ["ddp", pytest.param("fsdp", marks=pytest.mark.slow)])  # fsdp: 35 s
def test_two_processes_train_one_run_on_the_cpu(mode, tmp_path, tiny_bert, text_csv, one_process):
    """devices: 2 launches two ranks under accelerate (gloo on the CPU): the run completes, records its world
    size, writes each step once, evaluates every validation example exactly once, and learns as well as one
    process (each rank takes half of each epoch, so there are half the steps)."""
    recipe = make_recipe("text", tiny_bert, text_csv, "full", epochs=4, batch_size=4, learning_rate=1e-3)
    recipe.train.devices, recipe.train.distributed = 2, mode
    job = JobManager(Workspace(tmp_path / "ws")).start(recipe)
    assert job.wait(600), "the two-process run did not finish"
    status = job.status
    assert status["status"] == "completed", (status, job.run.file("worker.log").read_text()[-3000:])
    assert status["world_size"] == 2
    steps = [e["step"] for e in job.events() if e["type"] == "step"]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) == 4 * 4  # 30 rows: 15 per rank, batches of 4
    report = json.loads(job.run.file("eval.json").read_text())
    assert sum(map(sum, report["confusion_matrix"])) == report["num_examples"] == 6
    assert report["world_size"] == 2
    assert abs(report["accuracy"] - one_process["accuracy"]) <= 0.34  # 6 validation texts: 2 of 6 is noise
    answer = studio("--workspace", str(tmp_path / "ws"), "predict", job.run_id, "pizza cheese soup")
    assert answer.returncode == 0, answer.stderr

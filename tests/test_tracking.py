"""Experiment tracking (train.report_to), read back with the trackers' own readers: TensorBoard's EventAccumulator,
MlflowClient on the workspace's SQLite store, trackio's storage. One run is shared by the tests that only read it;
the others train tiny runs of their own in the same workspace."""
import importlib.util
import io
import json
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass

import pytest
from PIL import Image

from helpers import free_port, make_recipe
from studio import recipe as recipes
from studio.engine import tracking, trackers
from studio.run.jobs import Job, JobManager
from studio.runfolder import TENSORBOARD_DIR, TRACKING, RunFolder
from studio.workspace import Workspace
from test_jobs import Gate

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")
if importlib.util.find_spec("trackio") is None:  # not imported here: trackio reads its folder once, on import
    pytest.skip("the tracking extra is not installed", allow_module_level=True)

ALL = ["tensorboard", "mlflow", "trackio"]
TASK = "text-classification"


@dataclass
class Tracked:
    workspace: Workspace
    manager: JobManager
    job: Job  # a completed run that reported to every tracker

    def mlflow(self):
        return mlflow.MlflowClient(tracking_uri=self.workspace.mlflow_uri)


def finish(job: Job, timeout: float = 180) -> dict:
    assert job.wait(timeout), "run did not finish in time"
    return job.status


def logs(job: Job) -> list[str]:
    return [e["message"] for e in RunFolder(job.run_dir).events() if e["type"] == "log"]


def steps_of(job: Job, kind: str) -> list[int]:
    return [e["step"] for e in RunFolder(job.run_dir).events() if e["type"] == kind]


def board(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    reader = EventAccumulator(str(run_dir / TENSORBOARD_DIR), size_guidance={"scalars": 0, "images": 0,
                                                                             "tensors": 0})
    reader.Reload()
    return reader


def trackio_rows(job: Job) -> list[dict]:
    from trackio.sqlite_storage import SQLiteStorage
    return SQLiteStorage.get_logs(TASK, run=job.run_id)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, tiny_bert, text_csv) -> Tracked:
    workspace = Workspace(tmp_path_factory.mktemp("tracking-ws"))
    manager = JobManager(workspace, in_process=True)
    job = manager.start(make_recipe("text", tiny_bert, text_csv, "full", epochs=2, report_to=ALL))
    assert finish(job)["status"] == "completed", job.status.get("error")
    return Tracked(workspace, manager, job)


def test_tensorboard_has_the_loss_per_step_the_epochs_the_confusion_matrix_and_the_recipe(tracked):
    reader = board(tracked.job.run_dir)
    loss = reader.Scalars("train/loss")
    steps = [e for e in RunFolder(tracked.job.run_dir).events() if e["type"] == "step"]
    assert [(s.step, round(s.value, 5)) for s in loss] == [(e["step"], round(e["train_loss"], 5)) for e in steps]
    assert [s.step for s in reader.Scalars("train/learning_rate")] == [e["step"] for e in steps]
    assert len(reader.Scalars("train/samples_per_s")) == len(steps)
    epochs = [e for e in RunFolder(tracked.job.run_dir).events() if e["type"] == "epoch"]
    assert [s.step for s in reader.Scalars("val/loss")] == [e["step"] for e in epochs] == [0, 4, 8]
    assert [s.value for s in reader.Scalars("val/accuracy")] == pytest.approx([e["accuracy"] for e in epochs])
    assert len(reader.Scalars("val/macro_f1")) == 3
    picture = Image.open(io.BytesIO(reader.Images("confusion_matrix")[-1].encoded_image_string))
    assert picture.format == "PNG" and picture.width > 100 and picture.height > 100
    from tensorboard.util import tensor_util
    text = tensor_util.make_ndarray(reader.Tensors("recipe/text_summary")[-1].tensor_proto).item().decode()
    assert "learning_rate:" in text and "report_to:" in text


def test_mlflow_has_the_params_metrics_tags_and_artifacts_in_the_workspace(tracked):
    client, job = tracked.mlflow(), tracked.job
    experiment = client.get_experiment_by_name(TASK)
    assert experiment.artifact_location == (tracked.workspace.root / "mlartifacts").as_uri()
    run_id = json.loads((job.run_dir / TRACKING).read_text())["mlflow_run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.experiment_id == experiment.experiment_id
    assert run.data.tags["studio_run_id"] == job.run_id and run.data.tags["owner"]
    recipe = recipes.load(job.run_dir / "recipe.yaml")
    assert float(run.data.params["train.learning_rate"]) == recipe.train.learning_rate
    assert run.data.params["strategy"] == "full" and run.data.params["data.text_column"] == "text"
    history = client.get_metric_history(run_id, "train/loss")
    assert [m.step for m in history] == steps_of(job, "step")
    assert [m.step for m in client.get_metric_history(run_id, "val/accuracy")] == steps_of(job, "epoch")
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"model", "eval.json", "recipe.yaml", "confusion_matrix.png"} <= names
    assert "model/model.safetensors" in {a.path for a in client.list_artifacts(run_id, "model")}
    assert list(tracked.workspace.mlflow_artifacts.rglob("eval.json"))  # the files are in the workspace


def test_trackio_has_the_same_figures_in_the_workspace(tracked):
    rows = trackio_rows(tracked.job)
    assert [r["step"] for r in rows if "train/loss" in r] == steps_of(tracked.job, "step")
    assert [r["step"] for r in rows if "val/accuracy" in r] == steps_of(tracked.job, "epoch")
    assert list(tracked.workspace.trackio_dir.glob("*.db"))
    reporting = [m for m in logs(tracked.job) if m.startswith("Reporting to")]
    assert len(reporting) == 3 and any(str(tracked.workspace.trackio_dir) in m for m in reporting)


def test_a_resumed_run_continues_the_same_tracker_runs(tracked, tiny_bert, text_csv):
    gate = Gate(at_step=2)
    job = tracked.manager.start(make_recipe("text", tiny_bert, text_csv, "full", epochs=2, report_to=ALL), [gate])
    assert gate.reached.wait(60)
    job.cancel()
    gate.release.set()
    assert finish(job)["status"] == "cancelled"
    client = tracked.mlflow()
    run_id = json.loads((job.run_dir / TRACKING).read_text())["mlflow_run_id"]
    assert client.get_run(run_id).info.status == "KILLED"
    assert finish(tracked.manager.resume(job.run_id))["status"] == "completed"
    assert json.loads((job.run_dir / TRACKING).read_text())["mlflow_run_id"] == run_id
    assert client.get_run(run_id).info.status == "FINISHED"
    experiment = client.get_experiment_by_name(TASK).experiment_id
    assert len(client.search_runs([experiment], f"tags.studio_run_id = '{job.run_id}'")) == 1
    every_step = sorted(set(steps_of(job, "step")))
    assert every_step == list(range(1, 9))
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == every_step
    assert [s.step for s in board(job.run_dir).Scalars("train/loss")] == every_step
    assert [r["step"] for r in trackio_rows(job) if "train/loss" in r] == every_step


def test_trackers_that_fail_leave_one_warning_each_and_the_run_completes(tracked, tiny_bert, text_csv, monkeypatch):
    """MLflow at a port nothing listens on, trackio missing, TensorBoard raising at every write."""
    def broken(self, rows):
        raise OSError("disk full")
    monkeypatch.setattr(trackers.TensorBoard, "log", broken)
    monkeypatch.setitem(sys.modules, "trackio", None)  # as if the tracking extra were not installed
    recipe = make_recipe("text", tiny_bert, text_csv, "full", epochs=2, report_to=ALL,
                         mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}")
    job = tracked.manager.start(recipe)
    status = finish(job)
    assert status["status"] == "completed", status.get("error")
    warnings = [m for m in logs(job) if "Training goes on without it" in m]
    assert len(warnings) == 3, warnings
    assert any(m.startswith("Could not report to MLflow: ") for m in warnings)
    assert "Could not report to TensorBoard: disk full. Training goes on without it." in warnings
    assert any(m.startswith("trackio is not installed here") for m in warnings)
    assert (job.run_dir / "model").is_dir()


def test_a_tracker_stuck_never_holds_up_training(tracked, tiny_bert, text_csv, monkeypatch):
    """TensorBoard blocked from the start: every step still trains, and the run ends DRAIN_S after it without it."""
    release = threading.Event()
    start = trackers.TensorBoard.start

    def stuck(self):
        release.wait(120)
        start(self)
    monkeypatch.setattr(trackers.TensorBoard, "start", stuck)
    monkeypatch.setattr(tracking, "DRAIN_S", 1.0)
    try:
        job = tracked.manager.start(make_recipe("text", tiny_bert, text_csv, "full", epochs=2,
                                                report_to=["tensorboard"]))
        status = finish(job)
    finally:
        release.set()
    assert status["status"] == "completed", status.get("error")
    assert steps_of(job, "step") == list(range(1, 9))
    assert "The experiment trackers had not finished after 1 seconds; the run ends without waiting for them." \
        in logs(job)


@pytest.mark.parametrize("train, words", [
    ({"report_to": ["wandb"]}, "'train.report_to' names 'wandb'; choose among: tensorboard, mlflow, trackio"),
    ({"report_to": ["mlflow", "mlflow"]}, "'train.report_to' names 'mlflow' twice"),
    ({"report_to": "tensorboard"}, "'train.report_to' must be a list"),
    ({"mlflow_tracking_uri": "localhost:5000"}, "'train.mlflow_tracking_uri' is 'localhost:5000'; give the URI"),
    ({"mlflow_tracking_uri": "http://"}, "'train.mlflow_tracking_uri' is 'http://'"),
])
def test_bad_tracking_settings_are_refused_in_words(train, words):
    with pytest.raises(recipes.RecipeError, match=words.replace("(", r"\(")):
        recipes.from_dict({"data": {"path": "x.csv"}, "train": train})
    good = recipes.from_dict({"data": {"path": "x.csv"}, "train": {
        "report_to": ALL, "mlflow_tracking_uri": "postgresql+psycopg2://me@db/mlflow"}})
    assert good.train.report_to == ALL


def test_studio_tensorboard_serves_the_workspace_runs(tracked, tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "studio.cli", "--workspace", str(tracked.workspace.root), "tensorboard",
               "--port", str(port)]
    with open(tmp_path / "tensorboard.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, runs = time.monotonic() + 90, None
        while runs is None:
            assert process.poll() is None, (tmp_path / "tensorboard.log").read_text()
            assert time.monotonic() < deadline, "TensorBoard did not answer in 90 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=5) as answer:
                    runs = json.loads(answer.read())
            except OSError:
                time.sleep(0.2)  # not listening yet
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.status == 200 and b"TensorBoard" in page.read()
        assert f"{tracked.job.run_id}/{TENSORBOARD_DIR}" in runs
        assert f"http://127.0.0.1:{port}/" in (tmp_path / "tensorboard.log").read_text()
    finally:
        process.terminate()
        process.wait(30)


def test_studio_tensorboard_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from studio import cli
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    assert cli.main(["--workspace", str(tmp_path), "tensorboard"]) == 2
    assert 'pip install -e ".[tracking]"' in capsys.readouterr().err


def test_the_strategy_tab_puts_the_trackers_ticked_into_the_recipe(tmp_path):
    import gradio as gr

    from studio.ui import session as sessions
    from studio.ui.app import Context
    from studio.ui.i18n import PageTexts
    from studio.ui.strategy_tab import StrategyTab
    with gr.Blocks():
        with gr.Tabs() as tabs, gr.Tab("Strategy") as tab:
            ctx = Context(Workspace(tmp_path), None, gr.BrowserState(), gr.Markdown(), tabs, PageTexts())
            page = StrategyTab(ctx, tab)
    box = next(b for b in page.boxes if b.name == "train.report_to")
    assert box.component.elem_id == "report-to" and box.component.value == []
    state = sessions.new_session()
    state["lang"] = "en"
    name = state["recipe"]["strategy"]
    entered = [["mlflow", "tensorboard"] if b is box else b.component.value for b in page.boxes]
    _, _, state = page.apply(state, name, *entered)
    assert state["recipe"]["train"]["report_to"] == ["mlflow", "tensorboard"]
    other = next(s for s in page.strategy.choices if s[1] != name)[1]
    assert page.settings(state, other, keep_settings=False)["train.report_to"] == ["mlflow", "tensorboard"]

"""Runs through the job API on tiny models: run folders, events, cancel, failure, feature caching. These run
in-process (JobManager(in_process=True)) to hook into the loop; test_worker.py covers the worker processes."""
import json
import threading

import pytest

from helpers import make_recipe
from studio.run.inference import Predictor
from studio.run.jobs import JobManager
from studio.engine.loop import Callback
from studio.families.hf import HFBackbone
from studio.runfolder import RunFolder
from studio.workspace import Workspace

RUN_FILES = {"recipe.yaml", "events.jsonl", "status.json", "labels.json", "eval.json", "data_report.json", "model"}


@pytest.fixture
def manager(tmp_path):
    return JobManager(Workspace(tmp_path / "ws"), in_process=True)


def finish(job, timeout=120):
    assert job.wait(timeout), "run did not finish in time"
    return job.status

SOLVED = {"feature-extraction": {"head_solver": "lbfgs"}}  # the solved head (the default), said out loud


@pytest.mark.parametrize("strategy", ["feature-extraction", "full", "partial", "layerwise", "lora", "scratch"])
def test_every_strategy_trains_and_saves_a_model(manager, tiny_bert, text_csv, strategy):
    job = manager.start(make_recipe("text", tiny_bert, text_csv, strategy, SOLVED.get(strategy), epochs=2))
    status = finish(job)
    assert status["status"] == "completed", status.get("error")
    assert RUN_FILES <= {p.name for p in job.run_dir.iterdir()}
    report = json.loads((job.run_dir / "eval.json").read_text())
    assert {"accuracy", "macro_f1", "loss", "per_class", "confusion_matrix"} <= report.keys()
    assert set(report["per_class"]) == {"food", "sports", "tech"}
    assert sum(map(sum, report["confusion_matrix"])) == report["num_examples"] == 6
    events = RunFolder(job.run_dir).events()
    steps = [e for e in events if e["type"] == "step"]
    epochs = [e for e in events if e["type"] == "epoch"]
    if strategy == "feature-extraction":  # the head is solved: a search over its regularisation, one result
        assert [e["epoch"] for e in epochs] == [1] and not steps
        assert len([e for e in events if e["type"] == "head_search"]) == 9
    else:  # the backbone trains: from the linear probe (epoch 0), except from scratch
        assert [e["epoch"] for e in epochs] == ([1, 2] if strategy == "scratch" else [0, 1, 2])
        assert steps[-1]["step"] == steps[-1]["total_steps"]
        assert {"train_loss", "samples_per_s", "eta", "elapsed", "epoch"} <= steps[0].keys()
    assert {"val_loss", "accuracy", "macro_f1"} <= epochs[-1].keys()
    assert {"temperature", "ece_before", "ece_after"} <= report["calibration"].keys()
    answers = Predictor(job.run_dir).predict(["pizza cheese soup", "goal match team"], top_k=2)
    assert all(a["label"] in ("food", "sports", "tech") and len(a["top_k"]) == 2 for a in answers)


@pytest.mark.parametrize("strategy", ["feature-extraction", "full", "lora"])
def test_image_strategies_on_a_tiny_vit(manager, tiny_vit, shapes_small, strategy):
    job = manager.start(make_recipe("image", tiny_vit, shapes_small, strategy, epochs=1))
    status = finish(job)
    assert status["status"] == "completed", status.get("error")
    answer = Predictor(job.run_dir).predict([f"{shapes_small}/circle/circle_000.jpg"])[0]
    assert answer["label"] in ("circle", "square", "triangle") and 0 <= answer["score"] <= 1
    examples = json.loads((job.run_dir / "examples.json").read_text())["examples"]
    assert [e["label"] for e in examples] == ["circle"] * 2 + ["square"] * 2 + ["triangle"] * 2
    assert all((job.run_dir / e["input"]).is_file() for e in examples)  # copied into the run folder


def test_feature_extraction_runs_the_backbone_once_per_example(manager, tiny_bert, text_csv, monkeypatch):
    seen = []
    original = HFBackbone.forward

    def counting(self, inputs):
        seen.append(len(inputs["input_ids"]))
        return original(self, inputs)
    monkeypatch.setattr(HFBackbone, "forward", counting)
    first = manager.start(make_recipe("text", tiny_bert, text_csv, "feature-extraction", epochs=5))
    assert finish(first)["status"] == "completed"
    assert sum(seen) == 36  # 30 training + 6 validation texts, once each, over 5 epochs
    second = manager.start(make_recipe("text", tiny_bert, text_csv, "feature-extraction", epochs=5))
    assert finish(second)["status"] == "completed"
    assert sum(seen) == 36  # the cache served the second run


class Gate(Callback):
    """Holds the loop after a step until the test lets it go."""

    def __init__(self, at_step: int):
        self.at_step, self.reached, self.release = at_step, threading.Event(), threading.Event()

    def on_step_end(self, loop):
        if loop.step == self.at_step:
            self.reached.set()
            self.release.wait(30)


def test_cancel_mid_epoch_ends_cancelled_and_the_next_run_works(manager, tiny_bert, text_csv):
    gate = Gate(at_step=2)
    job = manager.start(make_recipe("text", tiny_bert, text_csv, "full", epochs=3, batch_size=4), [gate])
    assert gate.reached.wait(60)
    job.cancel()
    gate.release.set()
    status = finish(job)
    assert status["status"] == "cancelled"
    assert json.loads((job.run_dir / "status.json").read_text())["status"] == "cancelled"
    steps = [e["step"] for e in RunFolder(job.run_dir).events() if e["type"] == "step"]
    assert max(steps) == 2  # stopped within one step
    assert not (job.run_dir / "model").exists()
    after = manager.start(make_recipe("text", tiny_bert, text_csv, "full"))
    assert finish(after)["status"] == "completed"


class Explode(Callback):
    def on_step_end(self, loop):
        if loop.step == 2:
            raise RuntimeError("injected fault at step 2")


def test_a_failing_step_marks_the_run_failed_and_the_next_run_works(manager, tiny_bert, text_csv):
    job = manager.start(make_recipe("text", tiny_bert, text_csv, "full", batch_size=4), [Explode()])
    status = finish(job)
    assert status["status"] == "failed"
    assert "injected fault at step 2" in status["error"]
    assert "injected fault" in (job.run_dir / "error.log").read_text()
    after = manager.start(make_recipe("text", tiny_bert, text_csv, "full"))
    assert finish(after)["status"] == "completed"


def test_bad_data_fails_the_run_with_the_reason(manager, tiny_bert, tmp_path):
    job = manager.start(make_recipe("text", tiny_bert, str(tmp_path / "missing.csv")))
    status = finish(job)
    assert status["status"] == "failed" and "Data not found" in status["error"]


def test_runs_queue_one_at_a_time(manager, tiny_bert, text_csv):
    gate = Gate(at_step=1)
    first = manager.start(make_recipe("text", tiny_bert, text_csv, "full"), [gate])
    second = manager.start(make_recipe("text", tiny_bert, text_csv, "feature-extraction"))
    assert gate.reached.wait(60)
    assert second.status["status"] == "queued"
    gate.release.set()
    assert finish(first)["status"] == "completed" and finish(second)["status"] == "completed"
    assert [run["status"] for run in manager.workspace.runs()] == ["completed", "completed"]

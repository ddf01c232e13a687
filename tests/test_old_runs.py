"""Run folders written before the 2026-12 redesign (tests/fixtures/old-workspace) still open, predict, export and
resume with today's studio."""
import json
import shutil
from pathlib import Path

import pytest

from studio.run.export import export
from studio.run.inference import Predictor
from studio.run.jobs import JobManager
from studio.run.summary import runs
from studio.runfolder import RunFolder
from studio.workspace import Workspace

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "old-workspace"
IMAGES_DONE, IMAGES_STOPPED, CHAT = "20261202-161620-tiny-vit-full", "20261202-161621-tiny-vit-full", \
    "20261202-161632-tiny-llama-lora"


@pytest.fixture()
def old(tmp_path) -> Path:
    """A copy of the old workspace and its data, its paths pointing at the copy (a workspace moved here)."""
    root = tmp_path / "old"
    shutil.copytree(FIXTURE, root)
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".yaml", ".md"):
            text = path.read_text(encoding="utf-8")
            if "@ROOT@" in text:
                path.write_text(text.replace("@ROOT@", str(root)), encoding="utf-8")
    return root


def test_old_runs_are_listed_with_their_headline_figures(old):
    listed = {r["id"]: r for r in runs(Workspace(old / "workspace"))}
    assert set(listed) == {IMAGES_DONE, IMAGES_STOPPED, CHAT}
    assert listed[IMAGES_DONE]["metric"]["name"] == "accuracy" and listed[IMAGES_DONE]["metric"]["value"] >= 0
    assert listed[CHAT]["metric"]["name"] == "perplexity" and listed[CHAT]["metric"]["value"] > 0
    assert listed[IMAGES_STOPPED]["status"] == "cancelled"


def test_an_old_image_run_predicts_exports_and_shows_its_mistakes(old):
    import gradio as gr

    from studio import tasks
    from studio.ui import panels
    run = old / "workspace" / "runs" / IMAGES_DONE
    task = tasks.get("image-classification")
    examples = task.example_inputs(RunFolder(run))
    assert examples and all(Path(e).is_file() for e in examples)
    answers = Predictor(run).predict(examples[:2], top_k=2)
    assert all(a["label"] in ("circle", "square", "triangle") and len(a["top_k"]) == 2 for a in answers)
    assert export(run, "zip").is_file() and export(run, "onnx").is_file()
    panel = panels.for_app()["image-classes"]
    with gr.Blocks():
        panel.build_mistakes()
    report = json.loads((run / "eval.json").read_text())
    gallery = panel.show_mistakes(report, run, "en")[panel.mistakes[0]]
    assert len(gallery["value"]) == len(report["misclassified"]) > 0  # the old "thumbnail" copies are found


def test_an_old_stopped_run_resumes_to_completion(old):
    job = JobManager(Workspace(old / "workspace"), in_process=True).resume(IMAGES_STOPPED)
    assert job.wait(300)
    assert job.status["status"] == "completed", job.status
    assert any("Resumed" in (e.get("message") or "") for e in job.events())


def test_an_old_chat_run_answers_and_exports_its_adapter(old):
    run = old / "workspace" / "runs" / CHAT
    answer = Predictor(run).predict(["how do I reset my password 3"])[0]
    assert isinstance(answer["answer"], str)
    assert (export(run, "adapter") / "adapter_config.json").exists() and export(run, "zip").is_file()

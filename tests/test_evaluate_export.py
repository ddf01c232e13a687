"""Evaluation depth (misclassified examples, groups, overfitting, early stopping) and exports (transformers
pipeline, ONNX, zip, model card), on tiny models trained through the job API."""
import csv
import json
import random
import zipfile

import pytest
import torch

from helpers import WORDS, finished_run, make_recipe
from studio.tasks.classification import metrics as evaluation
from studio.engine.export import ExportError
from studio.run.export import export
from studio.run.inference import Predictor
from studio.run.jobs import JobManager
from studio.engine.loop import Callback
from studio.workspace import Workspace


@pytest.fixture
def manager(tmp_path):
    return JobManager(Workspace(tmp_path / "ws"), in_process=True)


@pytest.fixture(scope="module")
def grouped_csv(tmp_path_factory):
    """Topic texts with a region column; texts from 'south' mix in words of another topic, so groups differ."""
    rng = random.Random(1)
    path = tmp_path_factory.mktemp("grouped") / "topics.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label", "region"])
        topics = list(WORDS)
        for i in range(60):
            label = topics[i % 3]
            region = "north" if i % 2 else "south"
            words = rng.choices(WORDS[label], k=4)
            if region == "south":
                words += rng.choices(WORDS[topics[(i + 1) % 3]], k=4)
            writer.writerow([" ".join(words), label, region])
    return str(path)


def test_misclassified_lists_exactly_the_wrong_validation_items():
    logits = torch.tensor([[3.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 5.0]])
    labels = torch.tensor([0, 0, 1, 1])
    wrong = evaluation.misclassified(logits, labels, ["a", "b", "c", "d"], ["cat", "dog"])
    assert [w["input"] for w in wrong] == ["b", "c"]  # most confident mistake first
    assert wrong[0] == {"index": 1, "input": "b", "true": "cat", "predicted": "dog",
                        "confidence": pytest.approx(torch.tensor([0.0, 2.0]).softmax(0)[1].item(), abs=1e-4)}


def test_run_reports_misclassified_items_and_per_group_results(manager, tiny_bert, grouped_csv):
    recipe = make_recipe("text", tiny_bert, grouped_csv, "full", epochs=2)
    recipe.data.group_column = "region"
    run_dir, report = finished_run(manager, recipe)
    predictor = Predictor(run_dir)
    texts, truth = [], []
    with open(grouped_csv) as f:
        rows = {r["text"]: r for r in csv.DictReader(f)}
    # The misclassified list is exactly the validation texts whose prediction differs from the label.
    val_texts = [m["input"] for m in report["misclassified"]]
    assert len(val_texts) == report["num_examples"] - round(report["accuracy"] * report["num_examples"])
    for item in report["misclassified"]:
        assert item["true"] == rows[item["input"]]["label"] != item["predicted"]
        texts.append(item["input"]), truth.append(item["true"])
    if texts:
        assert [p["label"] for p in predictor.predict(texts)] == [m["predicted"] for m in report["misclassified"]]
    groups = report["groups"]
    assert set(groups["groups"]) == {"north", "south"}
    assert sum(g["support"] for g in groups["groups"].values()) == report["num_examples"]
    accs = [g["accuracy"] for g in groups["groups"].values()]
    assert groups["accuracy_gap"] == pytest.approx(max(accs) - min(accs))
    card = (run_dir / "model" / "README.md").read_text()
    assert "Results per region" in card and "north" in card and "Intended use" in card


class RisingValidationLoss(Callback):
    """Makes validation loss rise after epoch 2 by scrambling the head after each epoch's evaluation."""

    def on_epoch_end(self, loop):
        if loop.epoch >= 2:
            with torch.no_grad():
                for p in loop.model.parameters():
                    p.add_(torch.randn_like(p) * 5)


SGD = {"head_solver": "sgd"}  # the head trained by epochs on cached features: a quick loop to stop early


def test_early_stopping_stops_after_patience_epochs_without_improvement(manager, tiny_bert, text_csv):
    recipe = make_recipe("text", tiny_bert, text_csv, "feature-extraction", SGD, epochs=20, learning_rate=0.01)
    recipe.train.early_stopping_patience = 3
    run_dir, report = finished_run(manager, recipe, [RisingValidationLoss()])
    history = report["history"]
    best = report["best_epoch"]
    assert report["stopped_early"] and len(history) == best + 3 < 20
    assert all(h["val_loss"] >= history[best - 1]["val_loss"] for h in history[best:])


def test_scratch_does_not_stop_before_half_its_epochs(manager, tiny_bert, text_csv):
    recipe = make_recipe("text", tiny_bert, text_csv, "scratch", epochs=8)
    recipe.train.early_stopping_patience = 1
    _, report = finished_run(manager, recipe, [RisingValidationLoss()])
    assert report["stopped_early"] and len(report["history"]) == 4  # worse from epoch 3 on, but 4 is the minimum


def test_without_patience_every_epoch_runs(manager, tiny_bert, text_csv):
    recipe = make_recipe("text", tiny_bert, text_csv, "feature-extraction", SGD, epochs=6)
    recipe.train.early_stopping_patience = 0
    _, report = finished_run(manager, recipe, [RisingValidationLoss()])
    assert len(report["history"]) == 6 and not report["stopped_early"]


def test_overfitting_warning_in_plain_words():
    history = [{"epoch": e, "val_loss": v, "train_loss": t}
               for e, v, t in [(1, 1.0, 1.2), (2, 0.5, 0.8), (3, 0.7, 0.5), (4, 0.9, 0.3)]]
    text = evaluation.overfitting_warning(history, best_epoch=2)
    assert "memorise" in text and "epoch 2" in text and "0.500 to 0.900" in text
    assert evaluation.overfitting_warning(history[:3], best_epoch=2) is None  # one epoch after the best: too early


def test_pipeline_round_trip_gives_the_studios_top1(manager, tiny_bert, text_csv):
    from transformers import pipeline
    run_dir, _ = finished_run(manager, make_recipe("text", tiny_bert, text_csv, "full", epochs=6, learning_rate=3e-3))
    folder = export(run_dir, "hf")
    texts = [line.split(",")[0] for line in open(text_csv).read().splitlines()[1:]]
    studio = [p["label"] for p in Predictor(run_dir).predict(texts)]
    classify = pipeline("text-classification", model=str(folder), device="cpu")
    assert [p["label"] for p in classify(texts)] == studio
    assert len(set(studio)) > 1  # a trained model, not a constant answer


def test_pipeline_round_trip_for_an_image_model(manager, tiny_vit, shapes_small):
    from PIL import Image
    from transformers import pipeline
    run_dir, _ = finished_run(manager, make_recipe("image", tiny_vit, shapes_small, "full", epochs=2))
    folder = export(run_dir, "hf")
    paths = sorted(str(p) for p in __import__("pathlib").Path(shapes_small).rglob("*.jpg"))
    studio = Predictor(run_dir).predict(paths, top_k=3)
    piped = pipeline("image-classification", model=str(folder), device="cpu")([Image.open(p) for p in paths],
                                                                             top_k=3)
    for mine, theirs in zip(studio, piped):
        assert mine["label"] == theirs[0]["label"]
        assert mine["score"] == pytest.approx(theirs[0]["score"], abs=1e-3)


def test_sentence_encoder_refuses_hf_export_with_a_reason(manager, text_csv):
    run_dir, _ = finished_run(manager, make_recipe("text", "all-minilm-l6-v2", text_csv, "feature-extraction", epochs=2))
    with pytest.raises(ExportError, match="sentence encoder"):
        export(run_dir, "hf")


@pytest.mark.parametrize("kind", ["text", "image"])
def test_onnx_matches_torch(manager, tiny_bert, text_csv, shapes_small, kind):
    import numpy as np
    import onnxruntime
    data, model = (text_csv, tiny_bert) if kind == "text" else (shapes_small, "efficientnet-lite0")
    run_dir, _ = finished_run(manager, make_recipe(kind, model, data, "feature-extraction", epochs=2))
    path = export(run_dir, "onnx")
    check = json.loads((path.parent / "onnx_check.json").read_text())
    assert check["max_abs_diff"] <= check["tolerance"] and check["same_top1"]
    print(check)
    # A batch size the export never saw: the batch axis is dynamic.
    session = onnxruntime.InferenceSession(str(path))
    if kind == "image":
        feed = {"pixel_values": np.zeros((3, 3, 224, 224), np.float32)}
    else:
        feed = {i.name: np.ones((3, 7), np.int64) for i in session.get_inputs()}  # and a new sequence length
    assert session.run(None, feed)[0].shape == (3, 3)
    if kind == "text":  # the model card's onnxruntime snippet, as written
        import subprocess
        import sys
        code = _code_blocks((run_dir / "model" / "README.md").read_text())[-1]
        out = subprocess.run([sys.executable, "-c", code], cwd=run_dir / "model", capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert any(label in out.stdout for label in ("food", "sports", "tech"))


def test_zip_holds_the_model_folder_and_its_card(manager, tiny_bert, text_csv, tmp_path):
    run_dir, _ = finished_run(manager, make_recipe("text", tiny_bert, text_csv, "lora", epochs=1))
    archive = export(run_dir, "zip")
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "unzipped")
    root = f"{run_dir.name}/"
    assert {root + "model.safetensors", root + "studio_model.json", root + "README.md",
            root + "adapter/adapter_config.json"} <= names
    # The unzipped folder loads on its own and answers like the run.
    texts = ["goal match team", "pizza bread cheese"]
    assert Predictor(tmp_path / "unzipped" / run_dir.name).predict(texts) == Predictor(run_dir).predict(texts)


def test_cli_export_prints_the_path_or_a_one_line_reason(manager, tiny_bert, text_csv, capsys):
    from studio.cli import main
    run_dir, _ = finished_run(manager, make_recipe("text", tiny_bert, text_csv, "feature-extraction", epochs=1))
    workspace = str(manager.workspace.root)
    assert main(["export", run_dir.name, "--format", "zip", "--workspace", workspace]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{run_dir.name}-model.zip")
    assert main(["export", "no-such-run", "--workspace", workspace]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no-such-run" in err and "Traceback" not in err


def _code_blocks(card: str) -> list[str]:
    return [block.split("\n", 1)[1] for block in card.split("```")[1::2] if block.startswith("python")]


@pytest.mark.slow  # about 20 s: the card's snippets run in a new process
def test_the_model_cards_loading_snippets_work(manager, shapes_small):
    """The README.md in an offline-backbone run's model folder: its studio and onnxruntime snippets, run as
    written (with a real image for the placeholder) in a fresh process, give the studio's answer."""
    import subprocess
    import sys
    from pathlib import Path
    run_dir, _ = finished_run(manager, make_recipe("image", "efficientnet-lite0", shapes_small, "feature-extraction",
                                          epochs=3))
    export(run_dir, "onnx")
    image = str(sorted(Path(shapes_small).rglob("*.jpg"))[0])
    expected = Predictor(run_dir).predict([image])[0]["label"]
    blocks = _code_blocks((run_dir / "model" / "README.md").read_text())
    assert len(blocks) == 2  # the studio one and the onnxruntime one (no pipeline: not a transformers model)
    for code in blocks:
        out = subprocess.run([sys.executable, "-c", code.replace("photo.jpg", image)], cwd=run_dir / "model",
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert expected in out.stdout

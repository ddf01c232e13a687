"""Defects found by reading the code, each with the test that failed before its fix: a refused ONNX export left
on disk (and zipped), sessions sharing an upload folder, playground models never evicted nor reloaded after a
retrain, and phone photos trained sideways."""
import os
import zipfile

import pytest
import torch
from PIL import Image

from helpers import make_recipe
from studio.engine import export as exports
from studio.run.export import export
from studio.engine.data.images import open_rgb
from studio.run.inference import Predictor
from studio.run.jobs import JobManager
from studio.workspace import Workspace


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    return JobManager(Workspace(tmp_path_factory.mktemp("ws")), in_process=True)


def trained(manager, *args, **train):
    job = manager.start(make_recipe(*args, **train))
    assert job.wait(300) and job.status["status"] == "completed", job.status
    return job.run


def test_a_refused_onnx_export_leaves_no_file_and_the_zip_carries_none(manager, tiny_bert, text_csv,
                                                                        monkeypatch):
    run = trained(manager, "text", tiny_bert, text_csv, "feature-extraction", epochs=1)
    monkeypatch.setattr(exports, "ONNX_ATOL", -1.0)  # every difference is too large: the check refuses
    with pytest.raises(exports.ExportError, match="was not kept"):
        export(run.path, "onnx")
    assert not any(p.name.endswith((".onnx", ".tmp")) for p in run.model_dir.iterdir())
    archive = export(run.path, "zip")
    assert not any(name.endswith(".onnx") for name in zipfile.ZipFile(archive).namelist())


def test_every_browser_session_gets_its_own_id_when_it_is_created():
    from studio.ui.session import new_session
    ids = {new_session()["id"] for _ in range(50)}
    assert len(ids) == 50 and "draft" not in ids


def test_playground_models_are_bounded_by_memory_and_reloaded_after_a_retrain(manager, tiny_bert, text_csv,
                                                                              monkeypatch):
    from studio.ui import playground_tab
    runs = [trained(manager, "text", tiny_bert, text_csv, "feature-extraction", epochs=1, seed=s) for s in (1, 2, 3)]
    size_mb = sum(f.stat().st_size for f in runs[0].model_dir.rglob("*.safetensors")) / 2**20
    monkeypatch.setenv("STUDIO_PLAYGROUND_CACHE_MB", str(2.5 * size_mb))  # room for two models
    playground_tab._predictors.clear()
    first = playground_tab.predictor(runs[0])
    playground_tab.predictor(runs[1])
    assert playground_tab.predictor(runs[0]) is first  # still cached, now the most recently used
    playground_tab.predictor(runs[2])
    assert playground_tab.cached_runs() == [str(runs[0].path), str(runs[2].path)]  # runs[1] went first
    weights = runs[0].model_dir / "model.safetensors"
    later = weights.stat().st_mtime_ns + 10**9
    os.utime(weights, ns=(later, later))  # as a resumed run writes its new model
    assert playground_tab.predictor(runs[0]) is not first
    assert playground_tab.cached_runs().count(str(runs[0].path)) == 1


def sideways_photo(path, upright: Image.Image):
    """Saves `upright` the way a phone does: pixels stored rotated, with an EXIF tag saying how to turn them."""
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored pixels must be turned 90° clockwise to be upright
    upright.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)


def test_phone_photos_are_seen_upright_in_training_and_prediction(tmp_path, manager, tiny_vit):
    """A picture whose top half is red and bottom half blue, saved sideways with its EXIF orientation: every
    place that opens it sees it upright, so the model trained from a folder predicts alike for the phone's file
    and the upright file."""
    upright = Image.new("RGB", (40, 30), (0, 0, 255))
    upright.paste((255, 0, 0), (0, 0, 40, 15))
    sideways_photo(tmp_path / "phone.jpg", upright)
    upright.save(tmp_path / "upright.jpg")
    seen = open_rgb(tmp_path / "phone.jpg")
    assert seen.size == (40, 30) and seen.getpixel((20, 3))[0] > 200 and seen.getpixel((20, 27))[2] > 200
    data = tmp_path / "data"
    for label, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (data / label).mkdir(parents=True)
        for n in range(4):
            sideways_photo(data / label / f"{n}.jpg", Image.new("RGB", (40, 30), colour))
    run = trained(manager, "image", tiny_vit, str(data), "full", epochs=1)
    predictor = Predictor(run.path)
    phone, straight = predictor.predict([str(tmp_path / "phone.jpg"), str(tmp_path / "upright.jpg")], top_k=2)
    scores = lambda answer: {r["label"]: r["score"] for r in answer["top_k"]}  # noqa: E731
    assert scores(phone) == pytest.approx(scores(straight), abs=0.02)
    transform = predictor.impl.encoder.transform
    assert torch.allclose(transform(open_rgb(tmp_path / "phone.jpg")), transform(open_rgb(tmp_path / "upright.jpg")),
                          atol=0.05)  # the model's input: the same picture (JPEG noise aside)


@pytest.fixture(scope="module")
def long_reviews(tmp_path_factory):
    """Product reviews of 300 characters and more, as real ones are: longer than a file name may be."""
    import csv
    path = tmp_path_factory.mktemp("reviews") / "reviews.csv"
    words = {"good": "great lovely works perfectly happy recommend excellent sturdy".split(),
             "bad": "broken awful refund disappointed cheap useless returned faulty".split()}
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for n in range(12):
            for label, vocabulary in words.items():
                text = " ".join(vocabulary[(n + i) % len(vocabulary)] for i in range(60))
                assert len(text.encode()) > 300
                writer.writerow([text, label])
    return str(path)


def test_a_text_over_255_bytes_is_a_text_never_a_file_name(manager, tiny_bert, long_reviews, capsys):
    """An example input is a text or a file because the task says so: exporting (hf, ONNX) and the Playground's
    examples of a text classifier trained on long reviews work (they once asked the disk whether a file of that
    name existed, and failed with 'File name too long')."""
    from studio import cli, tasks
    run = trained(manager, "text", tiny_bert, long_reviews, "feature-extraction", epochs=1)
    for fmt in ("hf", "onnx"):
        assert cli.main(["--workspace", str(manager.workspace.root), "export", run.id, "--format", fmt]) == 0, \
            capsys.readouterr().err
    examples = tasks.get("text-classification").example_inputs(run)
    assert examples and all(len(e.encode()) > 255 for e in examples)
    answers = Predictor(run.path).predict(examples)
    assert [a["label"] for a in answers] and all(a["label"] in ("good", "bad") for a in answers)

"""Why the model said so (captum): explanations are checked against what decides the class in generated data —
a small coloured square on a textured background (its colour is the class: the heat must lie on it), a sentence
whose one planted word is the class (that word must weigh most) — with models actually trained on that data, and
for every kind of saved model (feature extraction, LoRA, full fine-tuning), through `studio explain` too."""
from __future__ import annotations

import csv
import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio import cli
from studio.recipe import DataSpec, Recipe, TrainSpec
from studio.run.inference import Predictor, explainer
from studio.run.jobs import JobManager
from studio.ui.explain_view import segments_figure
from studio.workspace import Workspace

SIDE, BOX = 224, 40  # efficientnet-lite0's input; the object is under 4 % of the image
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 230)}
FILLER = "the a report note page item list team office morning update paper street window".split()
PLANTED = {"alarm": "urgent", "calm": "lovely"}


def square_image(colour, seed: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Grey blotchy texture with a coloured square somewhere: (image, its box)."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(60, 200, (SIDE // 8, SIDE // 8), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    pixels = np.stack([texture] * 3, -1) + rng.integers(-20, 20, (SIDE, SIDE, 3))
    left, top = (int(v) for v in rng.integers(8, SIDE - BOX - 8, 2))
    pixels[top:top + BOX, left:left + BOX] = colour
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), (left, top, left + BOX, top + BOX)


def write_squares(root, per_class: int = 30) -> str:
    for label, colour in COLOURS.items():
        (root / label).mkdir(parents=True)
        for n in range(per_class):
            square_image(colour, seed=1000 * len(label) + n)[0].save(root / label / f"{n}.png")
    return str(root)


def planted_sentence(rng: random.Random, label: str) -> str:
    words = rng.choices(FILLER, k=7)
    words.insert(rng.randrange(len(words) + 1), PLANTED[label])
    return " ".join(words)


def write_planted(path, per_class: int = 24) -> str:
    rng = random.Random(0)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for _ in range(per_class):
            for label in PLANTED:
                writer.writerow([planted_sentence(rng, label), label])
    return str(path)


def train(workspace: Workspace, task: str, model: str, data: str, strategy: str, **settings):
    job = JobManager(workspace, in_process=True).start(Recipe(
        task=task, model=model, data=DataSpec(path=data), strategy=strategy,
        train=TrainSpec(**{"epochs": 3, "batch_size": 8, **settings})))
    assert job.wait(600) and job.status["status"] == "completed", job.status
    return job.run_dir


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("explain-ws"))


@pytest.fixture(scope="module")
def image_run(workspace, tmp_path_factory):
    return train(workspace, "image-classification", "efficientnet-lite0",
                 write_squares(tmp_path_factory.mktemp("squares")), "feature-extraction")


@pytest.fixture(scope="module")
def text_run(workspace, tmp_path_factory):
    return train(workspace, "text-classification", "all-minilm-l6-v2",
                 write_planted(tmp_path_factory.mktemp("planted") / "planted.csv"), "feature-extraction")


def box_ratio(heatmap: str, box) -> float:
    heat = np.asarray(Image.open(heatmap), np.float64)
    inside = np.zeros(heat.shape, bool)
    inside[box[1]:box[3], box[0]:box[2]] = True
    return heat[inside].mean() / max(heat[~inside].mean(), 1e-9)


def test_the_heat_lies_on_the_small_object_that_decides_the_class(image_run, tmp_path):
    explain = explainer(image_run)
    ratios = []
    for n in range(6):
        label = list(COLOURS)[n % 2]
        image, box = square_image(COLOURS[label], seed=500 + n)  # not among the training images
        path = tmp_path / f"{n}.png"
        image.save(path)
        started = time.perf_counter()
        result = explain.explain([str(path)], tmp_path / "out")[0]
        seconds = time.perf_counter() - started
        assert result["label"] == label
        assert result["score"] == Predictor(image_run).predict([str(path)], top_k=1)[0]["score"]
        assert Image.open(result["heatmap"]).size == image.size and Image.open(result["heatmap"]).mode == "L"
        ratios.append(box_ratio(result["heatmap"], box))
        print(f"{label}: heat inside / outside the box = {ratios[-1]:.1f} ({result['method']}, {seconds:.2f} s)")
    print(f"mean ratio {np.mean(ratios):.1f}")
    assert min(ratios) > 5, ratios


def test_the_planted_word_weighs_most(text_run):
    explain = explainer(text_run)
    rng = random.Random(7)
    for label, word in PLANTED.items():
        for _ in range(3):
            text = planted_sentence(rng, label) + " unbelievably"  # a word split into pieces, merged back
            result = explain.explain([text], None)[0]
            words = [w for w, _ in result["tokens"]]
            assert words == text.split()
            assert result["label"] == label
            assert max(result["tokens"], key=lambda t: t[1])[0] == word, result["tokens"]


def test_a_lora_vit_and_a_fine_tuned_bert_explain_too(workspace, tiny_vit, tiny_bert, shapes_small, text_csv,
                                                     tmp_path):
    vit = train(workspace, "image-classification", tiny_vit, shapes_small, "lora", epochs=1)
    image = next(p for p in sorted(Path(shapes_small).rglob("*")) if p.suffix in (".png", ".jpg"))
    result = explainer(vit).explain([str(image)], tmp_path)[0]
    heat = np.asarray(Image.open(result["heatmap"]))
    assert heat.shape == Image.open(image).size[::-1] and heat.max() > 0
    bert = train(workspace, "text-classification", tiny_bert, text_csv, "full", epochs=1)
    result = explainer(bert).explain(["the printer is out of toner"], tmp_path)[0]
    assert [w for w, _ in result["tokens"]] == "the printer is out of toner".split()
    assert max(abs(w) for _, w in result["tokens"]) == 1.0


def test_a_clip_gets_a_weight_per_window(workspace, tiny_wav2vec2, sounds, tmp_path):
    run = train(workspace, "audio-classification", tiny_wav2vec2, sounds, "feature-extraction", epochs=4)
    clip = sorted(Path(sounds).rglob("*.wav"))[-1]
    result = explainer(run).explain([str(clip)], tmp_path)[0]
    segments = result["segments"]
    assert segments[0]["start"] == 0 and all(a["end"] == b["start"] for a, b in zip(segments, segments[1:]))
    assert all(0.5 <= s["end"] - s["start"] <= 1.0 for s in segments[:-1])
    assert {"label", "score"} <= result.keys()
    figure = segments_figure(str(clip), segments, "en")  # the Playground's drawing: waveform, a bar per window
    assert [len(trace.x) for trace in figure.data][1] == len(segments)


def test_studio_explain_prints_one_json_object_per_input(workspace, text_run, image_run, tmp_path, capsys):
    root = str(workspace.root)
    assert cli.main(["explain", str(text_run), "an urgent note", "a lovely page", "--json",
                     "--workspace", root]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["input"] for line in lines] == ["an urgent note", "a lovely page"]
    image, _ = square_image(COLOURS["red"], seed=5)
    image.save(tmp_path / "red.png")
    assert cli.main(["explain", str(image_run), str(tmp_path / "red.png"), "--json", "--workspace", root]) == 0
    heatmap = json.loads(capsys.readouterr().out)["heatmap"]
    assert heatmap.startswith(str(workspace.root / "explanations" / image_run.name))


@pytest.mark.parametrize("case", ["missing file", "image for a text run", "unfinished run"])
def test_bad_input_gets_one_line_of_words(workspace, text_run, image_run, tmp_path, capsys, case):
    image = tmp_path / "red.png"
    square_image(COLOURS["red"], seed=5)[0].save(image)
    unfinished = workspace.root / "runs" / "unfinished"
    unfinished.mkdir(parents=True, exist_ok=True)
    (unfinished / "status.json").write_text(json.dumps({"status": "running"}))
    run, item = {"missing file": (image_run, str(tmp_path / "nowhere.png")),
                 "image for a text run": (text_run, str(image)),
                 "unfinished run": (unfinished, "some text")}[case]
    assert cli.main(["explain", str(run), item, "--workspace", str(workspace.root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err

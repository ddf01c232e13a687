"""Duplicates and leakage (issue 24, part 2): exact copies found as the data loads (file content, normalised text),
near copies found on the cached features in a run, both across the split (the leak that inflates validation) and
under two labels; data.drop_duplicates leaves them out; the Data tab shows the pairs; bad input gets words."""
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from helpers import finished_run
from studio import tasks
from studio.recipe import DataSpec, Recipe, RecipeError, TrainSpec
from studio.run.jobs import JobManager
from studio.tasks.classification import duplicates
from studio.workspace import Workspace

TEXT = "text-classification"
IMAGE = "image-classification"


def write_csv(path, rows) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return str(path)


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """Training and validation tables: validation rows 1 and 2 copy training rows 1 and 2 (case, spacing, a
    full-width letter); training row 4 repeats row 3 under another label; every other text is distinct."""
    folder = tmp_path_factory.mktemp("texts")
    topics = {"sports": "goal match team player score league coach stadium".split(),
              "food": "pizza bread cheese soup salad taste recipe dinner".split()}
    train = [(f"the {w} and the {v} story number {n}", label) for label, words in topics.items()
             for n, (w, v) in enumerate(zip(words, reversed(words)))]
    train[3] = (train[2][0], "food" if train[2][1] == "sports" else "sports")
    val = [(f"  {train[0][0].upper()} ", train[0][1]), (train[1][0].replace("t", "ｔ", 1), train[1][1])]
    val += [(f"a different {w} sentence {n}", label) for label, words in topics.items()
            for n, w in enumerate(words[:3])]
    return write_csv(folder / "train.csv", train), write_csv(folder / "val.csv", val)


def load(path, val_path, drop="none"):
    spec = DataSpec(path=path, validation_path=val_path, drop_duplicates=drop)
    return tasks.get(TEXT).load_data(spec, seed=0, uploads_dir=Path(path).parent / "uploads")


def test_exact_copies_across_the_split_and_under_two_labels_are_found_and_only_them(texts):
    data = load(*texts)
    found = data.report.duplicates
    assert (found["exact"], found["across_split"], found["different_labels"]) == (3, 2, 1)
    assert found["near"] is None and found["near_reason"]  # no features at load: said why
    leaks = [p for p in found["examples"] if p["across_split"]]
    assert sorted((p["a"]["example"], p["b"]["example"]) for p in leaks) == [(1, "validation: 1"), (2, "validation: 2")]
    assert {p["a"]["split"] for p in leaks} == {"training"} and {p["b"]["split"] for p in leaks} == {"validation"}
    conflict = next(p for p in found["examples"] if not p["same_label"])
    assert (conflict["a"]["example"], conflict["b"]["example"]) == (3, 4)
    assert any("2 validation examples have a copy in training" in w for w in data.report.warnings)


@pytest.mark.parametrize("mode, train_left, val_left", [("validation", 16, 6), ("all", 15, 6)])
def test_drop_duplicates_leaves_the_copies_out(texts, mode, val_left, train_left):
    data = load(*texts, drop=mode)
    assert (len(data.train_items), len(data.val_items)) == (train_left, val_left)
    assert len(data.val_keys) == val_left and data.report.duplicates["dropped"] == 2 + (mode == "all")
    train = {duplicates.normalised(t) for t in data.train_items}
    assert not train & {duplicates.normalised(t) for t in data.val_items}
    assert sum(data.report.validation_counts.values()) == val_left
    assert not any("have a copy in training" in w for w in data.report.warnings)  # dropped: no leak left


def test_drop_duplicates_maybe_is_refused_in_words(texts):
    raw = {"task": TEXT, "model": "all-minilm-l6-v2", "data": {"path": texts[0], "drop_duplicates": "maybe"}}
    with pytest.raises(RecipeError, match=r"data.drop_duplicates' is 'maybe'; choose one of: none .*validation .*all"):
        tasks.from_dict(raw)


# -- near copies, in a run: the pretrained EfficientNet-Lite0's cached features ---------------------------------------

@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Training shapes, and validation shapes (another seed: distinct) plus, planted, an exact copy of a training
    image and two near copies of others (re-encoded at JPEG quality 80 after resizing to 90 %, and cropped by 2 px)."""
    root = tmp_path_factory.mktemp("planted")
    # Made in a process of their own: PIL's effect_noise (the shapes' grain) draws from the C library's rand(),
    # whose state here depends on whatever ran before (chance near copies among the shapes came and went)
    subprocess.run([sys.executable, "-c", "import sys; from studio.examples import make_shapes; "
                    "make_shapes(sys.argv[1], per_class=8); make_shapes(sys.argv[2], per_class=3, seed=1)",
                    str(root / "train"), str(root / "val")], check=True)
    train, val = root / "train", root / "val"
    sources = sorted(p for p in train.rglob("*.jpg"))
    shutil.copyfile(sources[18], val / sources[18].parent.name / "copy.jpg")
    image = Image.open(sources[9])
    image.resize((86, 86)).save(val / sources[9].parent.name / "resized.jpg", quality=80)
    image = Image.open(sources[0])
    image.crop((2, 2, 94, 94)).save(val / sources[0].parent.name / "cropped.jpg", quality=90)
    return str(train), str(val)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, planted):
    manager = JobManager(Workspace(tmp_path_factory.mktemp("ws")), in_process=True)
    out = {}
    for mode in ("none", "validation", "all"):
        recipe = Recipe(task=IMAGE, model="efficientnet-lite0", strategy="feature-extraction",
                        data=DataSpec(path=planted[0], validation_path=planted[1], drop_duplicates=mode),
                        train=TrainSpec(batch_size=16))
        out[mode] = finished_run(manager, recipe)
    return manager, out


@pytest.mark.integration
def test_near_copies_across_the_split_are_found_in_a_run_and_only_them(runs):
    _, out = runs
    run_dir, report = out["none"]
    found = report["duplicates"]
    assert (found["exact"], found["near"], found["across_split"]) == (1, 2, 3)
    named = {(p["a"]["example"], p["b"]["example"].split("/")[-1], p["kind"]) for p in found["examples"]}
    assert {n[1:] for n in named} == {("copy.jpg", "exact"), ("resized.jpg", "near"), ("cropped.jpg", "near")}
    assert all(p["a"]["split"] == "training" and p["across_split"] for p in found["examples"])
    assert all(duplicates.NEAR_THRESHOLD <= p["similarity"] <= 1 for p in found["examples"])
    assert any("3 validation examples have a copy in training" in w for w in report["warnings"])
    assert json.loads((run_dir / "data_report.json").read_text())["duplicates"]["near"] == 2


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["validation", "all"])
def test_drop_duplicates_gives_runs_without_them(runs, mode):
    _, out = runs
    examples = out["none"][1]["num_examples"]
    report = out[mode][1]
    assert report["num_examples"] == examples - 3  # the three planted copies are not measured
    assert report["duplicates"]["dropped"] == 3
    assert sum(json.loads((out[mode][0] / "data_report.json").read_text())["train_counts"].values()) == 24
    assert not any("have a copy in training" in w for w in report["warnings"])


@pytest.mark.integration
def test_the_data_tab_shows_the_pairs_once_a_run_has_cached_the_features(runs, planted):
    """Handler level: the Data tab's view of the same data and model, after the run: the near copies the run
    found, side by side, with the warning (a browser adds nothing the handler does not decide)."""
    from studio.ui.duplicates_view import DuplicatesView
    manager, _ = runs
    draft = {"task": IMAGE, "model": "efficientnet-lite0",
             "data": {"path": planted[0], "validation_path": planted[1]}}
    data = tasks.get(IMAGE).load_data(DataSpec(**draft["data"]), seed=0, uploads_dir=manager.workspace.uploads_dir)
    view = DuplicatesView()
    with gr.Blocks():
        view.build_option()
        view.build()
    shown = view.show(data, draft, manager.workspace, "en")
    assert "1 exact copies, 2 near copies" in shown[view.note]["value"]
    assert "3 validation examples have a copy in training" in shown[view.note]["value"]
    assert len(shown[view.gallery]["value"]) == 6 and shown[view.table]["visible"]
    before = view.show(data, {**draft, "model": "mobilenet_v3_large"}, manager.workspace, "en")
    assert "1 exact copies." in before[view.note]["value"]  # no features of that model: not run


def test_the_same_clip_under_two_labels_is_found_and_played_side_by_side(tmp_path):
    from helpers import write_sound_folders
    from studio.ui.duplicates_view import DuplicatesView
    root = Path(write_sound_folders(tmp_path / "sounds", per_class=4))
    kinds = sorted(p.name for p in root.iterdir())
    clip = next((root / kinds[0]).glob("*_1.*"))
    shutil.copyfile(clip, root / kinds[1] / f"copied{clip.suffix}")
    spec = {"path": str(root)}
    data = tasks.get("audio-classification").load_data(DataSpec(**spec), seed=0, uploads_dir=tmp_path / "uploads")
    found = data.report.duplicates
    assert (found["exact"], found["different_labels"]) == (1, 1)
    pair = found["examples"][0]
    names = {pair["a"]["example"], pair["b"]["example"]}
    assert names == {f"{kinds[0]}/{clip.name}", f"{kinds[1]}/copied{clip.suffix}"}
    view = DuplicatesView()
    with gr.Blocks():
        view.build_option()
        view.build()
    shown = view.show(data, {"task": "audio-classification", "model": "", "data": spec}, Workspace(tmp_path / "ws"),
                      "en")
    assert "1 pair(s) carry different labels" in shown[view.note]["value"]
    assert [shown[c]["visible"] for c in view.clips[:2]] == [True, True]
    assert {shown[c]["value"] for c in view.clips[:2]} == {pair["a"]["item"], pair["b"]["item"]}


def test_the_view_stays_hidden_for_chat_data_whose_panel_counts_its_own_copies(tmp_path):
    """The chat task's data report counts its duplicate conversations in a number (its own panel says it): the
    classification view must hide itself, not fail (it did, and the chat example never loaded in the browser)."""
    from studio.assets import HELPDESK_CHAT
    from studio.ui.duplicates_view import DuplicatesView
    data = tasks.get("instruction-tuning").load_data(DataSpec(path=str(HELPDESK_CHAT)), seed=0,
                                                     uploads_dir=tmp_path / "uploads")
    assert isinstance(data.report.duplicates, int)
    view = DuplicatesView()
    with gr.Blocks():
        view.build_option()
        view.build()
    shown = view.show(data, {"task": "instruction-tuning", "model": "smollm2-135m-instruct",
                             "data": {"path": str(HELPDESK_CHAT)}}, Workspace(tmp_path / "ws"), "en")
    assert set(shown) == set(view.components) and not any(update["visible"] for update in shown.values())

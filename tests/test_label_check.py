"""The Data tab's "N examples look mislabelled — see them" before training: with a run's features of this data
cached, the check runs as a queued process of its own (never the page's), finds what the run found, and the page
shows the sentence and the examples; without cached features nothing starts; a check already done is not started
again."""
import copy
import os
import time
from pathlib import Path

import gradio as gr
import pytest

from helpers import finished_run
from test_label_issues import text_recipe, write_noisy_texts
from studio import tasks
from studio.recipe import DataSpec
from studio.engine.device import pick_device
from studio.run import admission, label_check
from studio.run.jobs import JobManager
from studio.ui.label_check_view import LabelCheckView
from studio.workspace import Workspace

STATE = {"lang": "en"}


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """A feature-extraction run on texts with planted flips (it caches all-MiniLM-L6-v2's features of them), and
    the Data tab's draft and check of the same data."""
    root = tmp_path_factory.mktemp("check")
    path, flipped = write_noisy_texts(root / "topics.csv")
    workspace = Workspace(root / "ws")
    _, evaluation = finished_run(JobManager(workspace, in_process=True), text_recipe(path))
    draft = {"task": "text-classification", "model": "all-minilm-l6-v2", "strategy": "feature-extraction",
             "strategy_options": {}, "train": {}, "trust_remote_code": False,
             "data": {"path": path, "validation_split": 0.2}}
    data = tasks.get(draft["task"]).load_data(DataSpec(**draft["data"]), seed=0, uploads_dir=workspace.uploads_dir)
    return {"workspace": workspace, "eval": evaluation, "draft": draft, "data": data, "flipped": flipped}


def view() -> LabelCheckView:
    shown = LabelCheckView()
    with gr.Blocks():
        shown.build()
    return shown


def wait_for(result, seconds: float = 180) -> dict:
    deadline = time.monotonic() + seconds
    while (found := label_check.read(result)) is None:
        assert label_check.running(result), "the check ended without a result"
        assert time.monotonic() < deadline, "the check did not finish in time"
        time.sleep(0.2)
    return found


def queued(folder: Path, seconds: float = 120) -> dict:
    """The check's ticket in the device queue once its process has said who it is and what it waits for."""
    deadline = time.monotonic() + seconds
    while not (found := [info for ticket, info in admission.waiting(clear=False)
                         if ticket.name.endswith(folder.name) and "pid" in info]):
        assert time.monotonic() < deadline, "the check never queued for its device"
        time.sleep(0.2)
    return found[0]


def test_with_cached_features_a_queued_process_finds_the_flips_and_the_page_shows_them(cached):
    page, workspace = view(), cached["workspace"]
    recipe = tasks.from_dict(copy.deepcopy(cached["draft"]))
    training = admission.DeviceLock(admission.device_names(pick_device(recipe.train.device).type, 1, 0))
    assert training.try_take({"run": "a training run"})  # the device is busy: the check must wait its turn
    try:
        shown = page.show(cached["data"], cached["draft"], workspace, "en")
        result = Path(shown[page.watched])
        assert shown[page.timer].active and "Looking for examples" in shown[page.note]["value"]
        job = result.with_suffix("") / label_check.JOB_FILE
        started = job.read_text()
        assert label_check.start(recipe, cached["data"], workspace) == result
        assert job.read_text() == started  # a second page checking the same data starts nothing more
        ticket = queued(result.with_suffix(""))
        assert ticket["pid"] != os.getpid() and label_check.read(result) is None
        assert page.on_tick(str(result), STATE)[page.timer].active  # still waiting: the page keeps polling
    finally:
        training.release()
    found = wait_for(result)
    assert "error" not in found and found["pid"] != os.getpid()  # a process of its own, not this one
    # The same examples, in the same order, as the run's own eval.json (same folds, same C chosen the same way).
    assert [i["example"] for i in found["label_issues"]] == [i["example"] for i in cached["eval"]["label_issues"]]
    top = [i["example"] for i in found["label_issues"][:len(cached["flipped"])]]
    print(f"check: {found['seconds']} s in its process; {len(found['label_issues'])} flagged, "
          f"{sum(e in cached['flipped'] for e in top)} of the top {len(top)} planted")
    ticked = page.on_tick(result, STATE)
    n = len(found["label_issues"])
    assert ticked[page.note]["value"] == f"**{n} examples look mislabelled**" and ticked[page.note]["visible"]
    assert ticked[page.see]["visible"] and not ticked[page.timer].active  # done: the polling stops
    seen = page.on_see(result, STATE)
    table = seen[page.table]["value"]
    assert seen[page.table]["visible"] and not seen[page.gallery]["visible"]  # texts: rows, no gallery
    assert list(table["given"][:3]) == [i["given"] for i in found["label_issues"][:3]]
    assert list(table["suggested"][:3]) == [i["suggested"] for i in found["label_issues"][:3]]
    first = found["label_issues"][0]
    assert table["example"][0] == f"{first['example']}: {first['input']}"  # the text itself, as a row


def test_a_check_already_done_is_not_started_again(cached):
    page, workspace = view(), cached["workspace"]
    result = label_check.result_path(cached["data"], "all-minilm-l6-v2", workspace)
    wait_for(result)
    written = result.stat().st_mtime_ns
    job = (result.with_suffix("") / label_check.JOB_FILE).read_text()
    shown = page.show(cached["data"], cached["draft"], workspace, "en")
    assert "examples look mislabelled" in shown[page.note]["value"] and not shown[page.timer].active
    assert result.stat().st_mtime_ns == written and (result.with_suffix("") / label_check.JOB_FILE).read_text() == job


def test_without_cached_features_nothing_starts(cached, tmp_path, tiny_bert):
    page, workspace = view(), Workspace(tmp_path / "fresh")
    shown = page.show(cached["data"], cached["draft"], workspace, "en")
    assert not shown[page.note]["visible"] and shown[page.watched] is None and not shown[page.timer].active
    assert not list(workspace.root.rglob("labels-*"))
    other = page.show(cached["data"], {**cached["draft"], "model": tiny_bert}, cached["workspace"], "en")
    assert other[page.watched] is None  # no run read this data with that model: its features are not cached
    assert not label_check.result_path(cached["data"], tiny_bert, cached["workspace"]).exists()

"""Sweeps belong to someone, as runs do (issue 21): the Strategy tab's sweep is checked as its user's recipe, in
every run it may start, records its user as its owner, and its runs carry that owner; the Runs tab's sweep board
lists, opens and stops only the user's own sweeps (an admin's: all). Page handlers are called in this process as
their login (gr.Request), the sweep's driver runs in its own process as the page starts it."""
from __future__ import annotations

import gradio as gr
import pytest
import yaml

from helpers import wait_for, write_text_csv
from studio import audit
from studio.run import ownership
from studio.run import sweep as sweeps
from studio.run.jobs import JobManager
from studio.runfolder import RunFolder
from studio.ui.session import new_session
from studio.users import Users
from studio.workspace import Workspace

MODEL = "all-minilm-l6-v2"  # a catalog name: a non-admin's recipe may not name a model folder on the machine


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """(workspace, app): alice an admin, bob and carol users; bob has an upload."""
    from studio.ui.app import build_app
    workspace = Workspace(tmp_path_factory.mktemp("sweep-owners") / "ws")
    users = Users(workspace.root)
    users.add("alice", "alice-pw", admin=True)
    for name in ("bob", "carol"):
        users.add(name, f"{name}-pw")
    uploads = workspace.user_uploads_dir("bob")
    uploads.mkdir(parents=True)
    write_text_csv(uploads / "notes.csv", per_class=6)
    yield workspace, build_app(workspace, JobManager(workspace, in_process=True))
    for left in sweeps.all_sweeps(workspace):  # a failed test's sweep: its driver process ends
        sweeps.stop(workspace, left["id"])


def handler(app, name: str, writes: str):
    """The page's handler of that name that writes the component with this elem_id, and that component."""
    out = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == writes)
    return next(f for f in app.fns.values() if f.name == name and out in f.outputs), out


def session(user: str, data: str) -> dict:
    state = {**new_session(user=user), "lang": "en", "data_kind": "text-classification"}
    state["recipe"].update(task="text-classification", model=MODEL, data={"path": data}, strategy="full",
                           train={"epochs": 50, "batch_size": 8})
    return state


def start_sweep(app, user: str, data: str) -> str:
    """The Strategy tab's "Start the sweep" as `user`, two learning rates of the full strategy: its note."""
    fn, note = handler(app, "on_start", "sweep-note")
    # The Advanced settings as the page shows them for text, with epochs enough for the sweep to be stopped while
    # it trains and short texts (quick to train)
    typed = {"Epochs": 50, "Tokens kept per example": 32}
    boxes = [typed.get(c.label, c.value) for c in fn.inputs[6:]]
    answer = fn.fn(session(user, data), ["full"], "1e-4, 1e-3", "grid", 2, "full",
                   gr.Request(username=user), *boxes)  # the request goes before the handler's *entered
    return answer[note]


def test_a_sweep_reading_what_its_user_may_not_is_refused_in_words(studio):
    workspace, app = studio
    before = sweeps.all_sweeps(workspace)
    note = start_sweep(app, "bob", "/etc/passwd")
    assert "Cannot start the sweep." in note and "Recipe key 'data.path' is '/etc/passwd'" in note, note
    assert "your own uploads" in note and sweeps.all_sweeps(workspace) == before  # nothing started


@pytest.mark.parametrize("setting, words", [
    ({"data.path": ["UPLOAD", "/etc/passwd"]},
     "combination 2 of 2 (data.path=/etc/passwd) cannot run: Recipe key 'data.path' is '/etc/passwd'"),
    ({"trust_remote_code": [False, True]},
     "combination 2 of 2 (trust_remote_code=True) cannot run: Recipe key 'trust_remote_code' is true"),
])
def test_every_run_a_sweep_may_start_is_checked_as_its_users(studio, setting, words):
    """A setting can change what a run reads: each combination is checked, not only the recipe beside the sweep."""
    workspace, _ = studio
    upload = str(workspace.user_uploads_dir("bob") / "notes.csv")
    grid = {k: [upload if v == "UPLOAD" else v for v in values] for k, values in setting.items()}
    raw = {"task": "text-classification", "model": MODEL, "data": {"path": upload}, "sweep": {"grid": grid}}
    bob, alice = ownership.viewer(workspace, "bob"), ownership.viewer(workspace, "alice")
    with pytest.raises(sweeps.SweepError) as refused:
        sweeps.check(raw, may_run=lambda recipe: ownership.check_recipe(recipe, bob, workspace))
    assert words in str(refused.value)
    assert sweeps.check(raw, may_run=lambda recipe: ownership.check_recipe(recipe, alice, workspace))  # an admin


def test_a_users_sweep_is_theirs_its_runs_too_and_another_user_neither_sees_nor_stops_it(studio):
    workspace, app = studio
    note = start_sweep(app, "bob", str(workspace.user_uploads_dir("bob") / "notes.csv"))
    assert note.startswith("Started sweep "), note
    sweep = sweeps.find(workspace, note.split()[2].rstrip(":"))
    assert sweep.read()["owner"] == "bob"
    wait_for(lambda: sweep.read()["runs"][0]["run_id"], 120, "the sweep's first run")
    first = sweep.read()["runs"][0]["run_id"]
    assert RunFolder(workspace.find_run(first)).status()["owner"] == "bob"  # its runs are bob's, in his limits

    open_board, pick = handler(app, "on_open", "sweep-pick")
    stop, status = handler(app, "on_stop", "sweep-status")

    def listed(user: str) -> list:
        return open_board.fn(session(user, ""), gr.Request(username=user))[pick]["choices"]

    assert sweep.id in listed("bob") and sweep.id in listed("alice") and sweep.id not in listed("carol")
    assert stop.fn(sweep.id, session("carol", ""), gr.Request(username="carol"))[status] == \
        "This sweep is gone from the workspace."  # carol's crafted call: the same words as for no sweep at all
    assert not sweep.stop_requested() and sweep.read()["status"] in ("created", "running")
    assert "runs finished" in stop.fn(sweep.id, session("bob", ""), gr.Request(username="bob"))[status]
    # Stopped as `studio stop` stops it (its driver ending then is test_sweep's): no next run, this one cancelled
    assert sweep.stop_requested() and RunFolder(workspace.find_run(first)).cancel_requested()
    said = [(e["user"], e["what"]) for e in audit.read(workspace.root) if e["details"].get("sweep") == sweep.id]
    assert said == [("bob", "sweep started"), ("bob", "sweep stopped")]


def test_the_best_run_of_a_users_sweep_opens_for_them_and_for_no_one_else(studio, tiny_bert, text_csv):
    """Its runs are its owner's, so "Use the best" opens one in their Evaluate tab; another user gets nothing."""
    from studio.run.sweep_driver import Driver
    workspace, app = studio
    raw = {"task": "text-classification", "model": tiny_bert, "data": {"path": text_csv}, "strategy": "full",
           "train": {"epochs": 1, "batch_size": 8}, "sweep": {"grid": {"train.learning_rate": [1e-4, 1e-3]}}}
    sweep = sweeps.create(workspace, sweeps.check(raw), owner="bob")  # as `studio sweep --owner bob` makes it
    data = Driver(workspace, sweep, JobManager(workspace, in_process=True)).run()
    assert data["status"] == "completed" and data["best"], data
    assert {RunFolder(workspace.find_run(r["run_id"])).status()["owner"] for r in data["runs"]} == {"bob"}
    use_best, tabs = handler(app, "on_use_best", "tabs")
    answer = use_best.fn(sweep.id, session("bob", ""), gr.Request(username="bob"))
    state = next(value for component, value in answer.items() if isinstance(component, gr.BrowserState))
    assert state["run_id"] == data["best"]["run_id"] and answer[tabs].selected == "evaluate"
    assert use_best.fn(sweep.id, session("carol", ""), gr.Request(username="carol")) == gr.skip()


def test_the_command_line_sweep_owner_must_be_an_account(studio, tmp_path, capsys, monkeypatch):
    """`studio sweep --owner NAME` as `studio train --owner NAME`: an account, said in words before anything runs;
    a resumed sweep keeps the owner it was started with."""
    from studio import cli
    from studio.workspace import CACHE_VARIABLES
    workspace, _ = studio
    for name, sub in CACHE_VARIABLES.items():  # named, so the command leaves this process's caches as they were
        monkeypatch.setenv(name, str(workspace.root / "cache" / sub))
    recipe = tmp_path / "sweep.yaml"
    recipe.write_text(yaml.safe_dump({"task": "text-classification", "model": MODEL, "data": {"path": "notes.csv"},
                                      "sweep": {"grid": {"train.learning_rate": [1e-4, 1e-3]}}}))
    before = sweeps.all_sweeps(workspace)
    for args, words in ((["sweep", str(recipe), "--owner", "mallory"], "There is no user called 'mallory'"),
                        (["sweep", "--resume", "x", "--owner", "bob"], "keep the owner it was started with")):
        assert cli.main(["--workspace", str(workspace.root), *args]) == 2
        assert words in capsys.readouterr().err
    assert sweeps.all_sweeps(workspace) == before

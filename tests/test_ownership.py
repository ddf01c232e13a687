"""Runs belong to someone (studio/run/ownership.py, and the owner's limit in studio/run/admission.py): who sees which
run, what a user's recipe may read, `studio train --owner`, and at most max_runs runs of one owner past the queue
while the runs queued behind pass them. Real accounts, real run folders, real lock files and threads."""
from __future__ import annotations

import json
import threading
import uuid

import pytest

from helpers import wait_for, write_text_csv
from studio import cli
from studio.assets import HELPDESK_CSV
from studio.recipe import DataSpec, Recipe, RecipeError
from studio.run import admission, ownership
from studio.users import Users
from studio.workspace import RunNotFound, Workspace


@pytest.fixture()
def space(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_LOCK_DIR", str(tmp_path / "locks"))
    users = Users(tmp_path / "ws")
    users.add("ada", "pw", admin=True)
    users.add("bob", "pw")
    users.add("cara", "pw")
    return Workspace(tmp_path / "ws")


def run_folder(space: Workspace, name: str, owner: str | None, status: str = "completed"):
    folder = space.root / "runs" / name
    (folder / "model").mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"status": status, "owner": owner}))
    return folder


def test_admins_see_every_run_others_their_own_and_a_studio_without_accounts_everything(space, tmp_path):
    run_folder(space, "bobs", "bob")
    run_folder(space, "from-before-accounts", None)
    ada, bob, cara = (ownership.viewer(space, name) for name in ("ada", "bob", "cara"))
    seen = {who.name: [r["id"] for r in space.runs() if ownership.visible(r, who)] for who in (ada, bob, cara)}
    assert seen == {"ada": ["bobs", "from-before-accounts"], "bob": ["bobs"], "cara": []}
    assert ownership.find_run(space, bob, "bobs") == space.root / "runs" / "bobs"
    for who, ref in ((cara, "bobs"), (bob, "from-before-accounts"), (bob, "nothing-here"),
                     (ada, str(space.root / "runs" / "bobs")), (ada, "../runs/bobs")):
        with pytest.raises(RunNotFound) as refused:  # hidden, missing or a path: the same words
            ownership.find_run(space, who, ref)
        assert str(refused.value).startswith("No run called")
    anonymous = ownership.viewer(space, None)
    assert not any(ownership.visible(r, anonymous) for r in space.runs())
    alone = Workspace(tmp_path / "alone")  # no accounts: today's single-user studio
    assert ownership.visible({"owner": None}, ownership.viewer(alone, None))
    assert ownership.viewer(alone, "someone").owner is None


def test_a_removed_account_is_no_one_and_an_auth_name_an_ordinary_user(space):
    run_folder(space, "caras", "cara")
    assert ownership.find_run(space, ownership.viewer(space, "cara"), "caras")
    Users(space.root).remove("cara")  # her login cookie may live on in a running studio
    removed = ownership.viewer(space, "cara")
    assert removed.name is None and removed.owner is None and not removed.admin
    with pytest.raises(RunNotFound):
        ownership.find_run(space, removed, "caras")
    legacy = ownership.viewer(space, "legacy", logins=["legacy"])  # `--auth legacy:PASSWORD` beside the accounts
    assert legacy.name == "legacy" and legacy.owner == "legacy" and not legacy.admin
    assert ownership.viewer(space, "legacy").name is None  # a name no one gave this studio


def test_no_one_logged_in_starts_nothing_once_accounts_exist(space):
    """A studio started before its first account asks for no login: its page's events come from no one."""
    with pytest.raises(RecipeError, match="Log in first"):
        ownership.check_recipe(recipe(str(HELPDESK_CSV)), ownership.viewer(space, None), space)


def recipe(data: str, **keys) -> Recipe:
    return Recipe(task="text-classification", model=keys.pop("model", "all-minilm-l6-v2"), data=DataSpec(path=data),
                  strategy="feature-extraction", **keys)


def test_a_users_recipe_reads_only_their_uploads_the_examples_and_the_opened_folders(space, tmp_path):
    bob, cara, ada = (ownership.viewer(space, name) for name in ("bob", "cara", "ada"))
    mine = space.user_uploads_dir("bob") / "u1"
    mine.mkdir(parents=True)
    data = write_text_csv(mine / "topics.csv")
    opened = tmp_path / "team-data"
    opened.mkdir()
    shared = write_text_csv(opened / "shared.csv")
    ownership.check_recipe(recipe(data), bob, space)
    ownership.check_recipe(recipe(str(HELPDESK_CSV)), bob, space)
    ownership.check_recipe(recipe(shared), bob, space, [opened])
    ownership.check_recipe(recipe("/etc/passwd", trust_remote_code=True, output_dir="elsewhere"), ada, space)
    bobs_run = run_folder(space, "bobs-run", "bob")
    ownership.check_recipe(recipe(data, model=str(bobs_run / "model")), bob, space)
    ownership.check_recipe(recipe(data, model="org/some-model"), bob, space)
    refused = {
        "data.path": [recipe("/etc/passwd"), recipe(str(mine / ".." / ".." / "cara" / "x.csv")), recipe(shared)],
        "trust_remote_code": [recipe(data, trust_remote_code=True)],
        "model": [recipe(data, model="/tmp"), recipe(data, model="./models/x"), recipe(data, model="runs")],
        "output_dir": [recipe(data, output_dir=name) for name in ("uploads", "cache", "serving", "explanations",
                                                                  "sweeps", "runs/x", "runs/bobs-run",
                                                                  "../elsewhere", ".", "runs/", "/tmp/runs")],
    }
    refused["data.validation_path"] = [recipe(data)]
    refused["data.validation_path"][0].data.validation_path = "/etc/hosts"
    refused["train.mlflow_tracking_uri"] = [recipe(data)]
    refused["train.mlflow_tracking_uri"][0].train.mlflow_tracking_uri = "sqlite:////tmp/elsewhere.db"
    for key, recipes in refused.items():
        for bad in recipes:
            with pytest.raises(RecipeError, match=f"Recipe key '{key}'"):
                ownership.check_recipe(bad, bob, space)
    with pytest.raises(RecipeError, match="Recipe key 'data.path'"):  # bob's upload is not cara's
        ownership.check_recipe(recipe(data), cara, space)
    for model in (str(bobs_run / "model"), "runs/bobs-run"):  # nor is his run
        with pytest.raises(RecipeError, match="Recipe key 'model'"):
            ownership.check_recipe(recipe(str(HELPDESK_CSV), model=model), cara, space)


def test_a_user_over_their_disk_limit_starts_no_run_and_is_told_the_numbers(space):
    mine = space.user_uploads_dir("bob") / "u1"
    mine.mkdir(parents=True)
    data = write_text_csv(mine / "topics.csv")
    with open(run_folder(space, "bobs-run", "bob") / "model" / "weights.bin", "wb") as weights:
        weights.truncate(1_200_000_000)  # 1.2 GB as its size says (sparse: nothing written)
    ownership.check_recipe(recipe(data), ownership.viewer(space, "bob"), space)  # within the default 50 GB
    Users(space.root).set_limits("bob", max_disk_gb=1)
    with pytest.raises(RecipeError, match=r"take 1\.2 GB of the workspace, over your limit of 1 GB"):
        ownership.check_recipe(recipe(data), ownership.viewer(space, "bob"), space)
    ownership.check_recipe(recipe(str(HELPDESK_CSV)), ownership.viewer(space, "cara"), space)  # bob's runs not hers


def test_a_table_of_files_lists_only_files_the_user_may_read(space):
    bob = ownership.viewer(space, "bob")
    mine = space.user_uploads_dir("bob") / "u2"
    mine.mkdir(parents=True)
    (mine / "a.png").write_bytes(b"")
    table = mine / "images.csv"
    table.write_text("path,label\na.png,cat\n")
    listed = recipe(str(table))
    listed.data.path_column = "path"
    ownership.check_recipe(listed, bob, space)
    table.write_text("path,label\na.png,cat\n/etc/secret.png,dog\n")
    with pytest.raises(RecipeError, match="'/etc/secret.png'"):
        ownership.check_recipe(listed, bob, space)


def test_studio_train_owner_names_an_account(space, capsys):
    recipe_file = space.root / "r.yaml"
    recipe_file.write_text("task: text-classification\nmodel: all-minilm-l6-v2\ndata: {path: x.csv}\n")
    assert cli.main(["--workspace", str(space.root), "train", str(recipe_file), "--owner", "nobody"]) == 2
    assert "There is no user called 'nobody'" in capsys.readouterr().err
    assert ownership.check_owner(space, "bob") == "bob" and ownership.check_owner(space, None) is None


def test_an_owner_over_their_limit_waits_and_the_runs_behind_pass(space):
    """bob may train 1 run at once: his second waits, saying why, while cara's, started after it, goes first."""
    Users(space.root).set_limits("bob", max_runs=1)
    kind = f"owner-test-{uuid.uuid4().hex[:8]}"  # a device kind of this test's own
    cancel = threading.Event()
    first = run_folder(space, "bob-1", "bob", "queued")
    assert admission.wait_turn(first, kind, lambda me: "bob-1 admitted", cancel) == "bob-1 admitted"
    (first / "status.json").write_text(json.dumps({"status": "running", "owner": "bob"}))
    second, third = run_folder(space, "bob-2", "bob", "queued"), run_folder(space, "cara-1", "cara", "queued")
    admission.take_ticket(second)
    admission.take_ticket(third)  # after bob's second
    said, got = [], {}

    def wait(run, name):
        got[name] = admission.wait_turn(run, kind, lambda me: name, cancel, said.append if name == "bob-2" else None)
    waiters = [threading.Thread(target=wait, args=(run, run.name), daemon=True) for run in (second, third)]
    try:
        for waiter in waiters:
            waiter.start()
        wait_for(lambda: "cara-1" in got, 10, "cara's run to pass bob's waiting one")
        wait_for(lambda: said, 10, "bob's second run to say why it waits")
        assert "bob-2" not in got
        assert said[-1]["owner_limit"] == {"owner": "bob", "running": 1, "max_runs": 1}
        assert said[-1]["message"] == ("Waiting: bob has 1 run training, the most allowed at once (1); this run "
                                       "starts when one of them ends.")
        (first / "status.json").write_text(json.dumps({"status": "completed", "owner": "bob"}))
        wait_for(lambda: "bob-2" in got, 10, "bob's second run to go once his first ended")
        assert got["bob-2"] == "bob-2"
    finally:
        cancel.set()

"""Runs belong to someone, on the page: the real studio with accounts in its own process (alice an admin, bob and
carol users), one run of bob's and one of carol's trained beforehand in its workspace. From outside: the browser
shows each user only their runs on the Runs, Evaluate and Playground tabs, and an admin both with their owners; a
login on the same browser after another's gets a session of its own; the file route refuses a run folder's files
by their path; and the page's own endpoints, called with gradio_client and the other user's run id, answer in words
and with nothing of that run."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from browser_helpers import choose_example, lists, shot, tab, wait_text
from helpers import free_port, start_server, stop_server, write_text_csv
from studio import audit
from studio.recipe import DataSpec, Recipe, TrainSpec
from studio.run.jobs import JobManager
from studio.users import Users
from studio.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_bert):
    """(url, workspace, {owner: run id}): bob's run on bobs-notes.csv, carol's on carols-notes.csv."""
    workspace = tmp_path_factory.mktemp("ownership-workspace")
    users = Users(workspace)
    users.add("alice", PASSWORDS["alice"], admin=True)
    users.add("bob", PASSWORDS["bob"])
    users.add("carol", PASSWORDS["carol"])
    manager = JobManager(Workspace(workspace), in_process=True)
    runs = {}
    for owner in ("bob", "carol"):
        data = write_text_csv(workspace.parent / f"{owner}s-notes.csv", per_class=6)
        job = manager.start(Recipe(task="text-classification", model=tiny_bert, data=DataSpec(path=data),
                                   train=TrainSpec(epochs=1, batch_size=8)), owner=owner)
        assert job.wait(300) and job.status["status"] == "completed", job.status.get("error")
        runs[owner] = job.run_id
    port = free_port()
    server = start_server([sys.executable, str(ROOT / "launch.py"), "--port", str(port), "--workspace",
                           str(workspace)], port, workspace / "server.log", cwd=ROOT,
                          env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    yield f"http://127.0.0.1:{port}", workspace, runs
    stop_server(server)


@contextlib.contextmanager
def logged_in(url: str, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=60) as http:
        assert http.post("/login", data={"username": name, "password": PASSWORDS[name]}).status_code == 200
        yield http


def test_no_run_file_is_served_by_its_path(studio):
    url, workspace, runs = studio
    with logged_in(url, "bob") as http:
        for owner in ("carol", "bob"):  # another's run, and even one's own: files come from the page's handlers
            status = workspace / "runs" / runs[owner] / "status.json"
            assert status.exists()
            for route in (f"/gradio_api/file={status}", f"/gradio_api/file/{status}",
                          f"/gradio_api/file={workspace}/runs/../runs/{runs[owner]}/status.json"):
                answer = http.get(route)
                assert answer.status_code == 403 and "owner" not in answer.text, (route, answer.text)
        assert http.get(f"/gradio_api/file={workspace / 'server.log'}").status_code == 403


def page_client(url: str, name: str) -> Client:
    return Client(url, auth=(name, PASSWORDS[name]), verbose=False, download_files=False)


def elem_ids(client: Client) -> dict[int, str]:
    return {c["id"]: c.get("props", {}).get("elem_id") for c in client.config["components"]}


def endpoint(client: Client, handler: str, writes: str) -> int:
    """The fn_index of the page's handler of that name that writes the component with this elem_id."""
    ids = elem_ids(client)
    found = [i for i, d in enumerate(client.config["dependencies"])
             if str(d.get("api_name") or "").startswith(handler) and writes in {ids[o] for o in d["outputs"]}]
    assert found, (handler, writes)
    return found[0]


def session(name: str) -> dict:
    """A session as a crafted client sends it: claiming to be the caller's own."""
    from studio.ui.session import new_session
    return {**new_session(user=name), "lang": "en"}


def call(client: Client, fn_index: int, *args) -> str:
    """Everything the endpoint answered, as text (or the words of its error)."""
    try:
        return repr(client.predict(*args, fn_index=fn_index))
    except AppError as exc:
        return f"error: {exc}"


def test_the_pages_endpoints_give_nothing_of_another_users_run(studio):
    """As a script would: bob's client opens the tabs (so the page offers his runs), then asks the Playground,
    Evaluate and export for his own run (answers) and for carol's (words, nothing of hers)."""
    url, workspace, runs = studio
    bob = page_client(url, "bob")
    for tab_id in ("playground-run", "evaluate-run", "runs-run"):  # each tab's opening fills its run picker
        assert runs["bob"] in call(bob, endpoint(bob, "on_open", tab_id), session("bob"))
    predict, evaluate = endpoint(bob, "on_predict", "prediction"), endpoint(bob, "show", "evaluate-note")
    show_run, export = endpoint(bob, "show", "runs-note"), endpoint(bob, "on_export", "export-note")
    ids, kinds = elem_ids(bob), {c["id"]: c["type"] for c in bob.config["components"]}
    panels = [ids[i] for i in bob.config["dependencies"][predict]["inputs"][2:]  # every panel's input that the
              if kinds[i] != "state"]                                            # client sends (not a gr.State)

    def answers(run_id: str, claimed: str = "bob") -> dict:
        text = ["the match and the goal of the team" if p == "playground-text" else None for p in panels]
        call(bob, show_run, run_id, session(claimed))  # offers the run's export formats
        return {"predict": call(bob, predict, run_id, session(claimed), *text),
                "evaluate": call(bob, evaluate, run_id, session(claimed)),
                "export": call(bob, export, run_id, "zip", session(claimed))}

    own = answers(runs["bob"])
    assert "sure" in own["predict"] and "Exported" in own["export"], own
    assert not own["evaluate"].startswith("error: ") and "accuracy" in own["evaluate"].lower(), own["evaluate"]
    for claimed in ("bob", "carol"):  # a session that claims to be carol's is not believed either
        for what, answer in answers(runs["carol"], claimed).items():
            assert answer.startswith("error: ") and runs["carol"] in answer, (what, answer)
            assert "sure" not in answer and "Exported" not in answer and ".zip" not in answer, (what, answer)
    exports = [e for e in audit.read(workspace, user="bob") if e["what"] == "export"]
    assert [e["details"]["run"] for e in exports] == [runs["bob"]]


def test_a_handler_refuses_a_run_its_user_may_not_see_in_words(studio):
    """Beneath gradio's own check of a dropdown's value: the handlers themselves (Context.run_dir) refuse."""
    import gradio as gr
    from studio.ui.app import build_app
    _, workspace, runs = studio
    app = build_app(Workspace(workspace), JobManager(Workspace(workspace), in_process=True))
    note = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "evaluate-note")
    show = next(f.fn for f in app.fns.values() if f.name == "show" and note in f.outputs)
    as_bob = gr.Request(username="bob")
    assert show(runs["bob"], session("bob"), as_bob)[note] == ""  # his run's results, under an empty note
    with pytest.raises(gr.Error, match=f"No run called '{runs['carol']}' here"):
        show(runs["carol"], session("bob"), as_bob)
    assert show(runs["carol"], session("alice"), gr.Request(username="alice"))[note] == ""  # an admin's


def log_in(page, url: str, name: str) -> None:
    page.goto(url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Login").click()
    page.get_by_role("tab", name="Model", exact=True).wait_for(timeout=60_000)
    page.locator(".veil").wait_for(state="hidden", timeout=60_000)  # the page has its session back


def options(page, dropdown: str) -> list[str]:
    """The choices a run dropdown offers."""
    page.locator(f"#{dropdown} input").click()
    page.get_by_role("option").first.wait_for(timeout=30_000)
    found = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return found


def seen_runs(page) -> dict:
    """What the page lists on the Runs, Evaluate and Playground tabs."""
    tab(page, "Runs")
    wait_text(page, "#runs-table", "notes", timeout=60)
    table = page.locator("#runs-table").inner_text()
    tab(page, "Evaluate")
    evaluate = options(page, "evaluate-run")
    tab(page, "Playground")
    return {"table": table, "evaluate": evaluate, "playground": options(page, "playground-run")}


@pytest.mark.browser
def test_each_user_sees_only_their_runs_and_an_admin_sees_both_with_owners(studio, page):
    url, _, runs = studio
    log_in(page, url, "bob")
    bob = seen_runs(page)
    assert lists(bob["table"], runs["bob"]) and not lists(bob["table"], runs["carol"]), bob["table"]
    for listed in (bob["evaluate"], bob["playground"]):
        assert len(listed) == 1 and listed[0].startswith("bobs-notes"), listed
    choose_example(page, "helpdesk")  # something of bob's in his session: the example's data
    assert "not chosen yet" not in page.locator("#summary").inner_text()
    shot(page, "ownership-bob")
    page.locator("#logout").click()
    page.get_by_role("button", name="Login").wait_for(timeout=30_000)

    log_in(page, url, "carol")  # the same browser, which kept bob's session: carol gets one of her own
    assert "not chosen yet" in page.locator("#summary").inner_text()
    carol = seen_runs(page)
    assert lists(carol["table"], runs["carol"]) and not lists(carol["table"], runs["bob"]), carol["table"]
    for listed in (carol["evaluate"], carol["playground"]):
        assert len(listed) == 1 and listed[0].startswith("carols-notes"), listed
    page.locator("#logout").click()
    page.get_by_role("button", name="Login").wait_for(timeout=30_000)

    log_in(page, url, "alice")
    alice = seen_runs(page)
    assert lists(alice["table"], runs["bob"]) and lists(alice["table"], runs["carol"]) and "owner" in alice["table"]
    for listed in (alice["evaluate"], alice["playground"]):
        assert sorted(name.rsplit(" · ", 1)[-1] for name in listed) == ["bob", "carol"], listed
    tab(page, "Runs")
    shot(page, "ownership-admin-runs")


def test_the_train_tab_starts_a_run_owned_by_its_user_and_refuses_what_their_recipe_may_not_read(tmp_path):
    """On the page's Train tab (its handler, in this process): bob's run records him as its owner and is in the
    audit trail; a recipe reading a file outside his uploads is refused in words, and nothing starts."""
    import gradio as gr
    from studio.ui.app import build_app
    workspace = Workspace(tmp_path / "ws")
    Users(workspace.root).add("bob", PASSWORDS["bob"])
    manager = JobManager(workspace, in_process=True)
    app = build_app(workspace, manager)
    message = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "train-message")
    start = next(f.fn for f in app.fns.values() if f.name == "on_start" and message in f.outputs)
    as_bob = gr.Request(username="bob")

    def ready(data: str) -> dict:
        """A session whose recipe is ready to start on this data (a new one each time: the server keeps each
        session's latest copy and would hand that back in place of a changed one)."""
        state = session("bob")
        state["recipe"].update(task="text-classification", model="all-minilm-l6-v2", data={"path": data},
                               train={"epochs": 1, "batch_size": 8})
        return {**state, "data_kind": "text-classification"}

    refused = start(ready(write_text_csv(tmp_path / "elsewhere.csv", per_class=6)), as_bob)
    assert "Recipe key 'data.path'" in refused[message] and "your own uploads" in refused[message]
    assert workspace.runs() == []
    uploads = workspace.user_uploads_dir("bob")
    uploads.mkdir(parents=True)
    answer = start(ready(write_text_csv(uploads / "notes.csv", per_class=6)), as_bob)
    assert answer[message] == "", answer[message]
    state = next(value for component, value in answer.items() if isinstance(component, gr.BrowserState))
    assert manager.get(state["run_id"]).wait(300)
    assert [(r["id"], r["owner"]) for r in workspace.runs()] == [(state["run_id"], "bob")]
    started = [e for e in audit.read(workspace.root) if e["what"] == "run started"]
    assert [(e["user"], e["details"]["run"]) for e in started] == [("bob", state["run_id"])]


def test_an_upload_over_the_users_limit_is_refused_with_the_numbers(tmp_path):
    import gradio as gr
    from studio.ui.app import build_app
    workspace = Workspace(tmp_path / "ws")
    Users(workspace.root).add("bob", PASSWORDS["bob"])
    Users(workspace.root).set_limits("bob", max_upload_mb=1)
    app = build_app(workspace, JobManager(workspace, in_process=True))
    upload = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "data-upload")
    on_upload = next(f.fn for f in app.fns.values() if f.name == "on_upload" and upload in f.inputs)
    big = tmp_path / "big.csv"
    big.write_text("text,label\n" + "some words here,a\n" * 120_000)  # about 2 MB
    with pytest.warns(UserWarning, match=r"This upload is 2\.1 MB; your uploads may be up to 1 MB each"):
        assert on_upload(str(big), session("bob"), None, gr.Request(username="bob")) == gr.skip()
    assert not workspace.uploads_dir.exists()


def test_the_data_tab_reads_no_file_a_crafted_session_names(studio):
    """The session is the browser's: one naming another user's data (or any file) is refused before it is read."""
    import gradio as gr
    from studio.ui.app import build_app
    _, workspace, _ = studio
    app = build_app(Workspace(workspace), JobManager(Workspace(workspace), in_process=True))
    status = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "data-status")
    on_split = next(f.fn for f in app.fns.values() if f.name == "on_split" and status in f.outputs)
    def crafted(name: str) -> dict:
        state = session(name)
        state["recipe"].update(task="text-classification", data={"path": str(workspace.parent / "carols-notes.csv")})
        return state
    refused = on_split(0.2, crafted("bob"), gr.Request(username="bob"))[status]
    assert "may read only your own uploads" in refused and "Ready" not in refused
    assert "Ready" in on_split(0.2, crafted("alice"), gr.Request(username="alice"))[status]  # admins read any file

"""Deleting a run, owner-checked and audited, through each door: the run layer (run/deletion.py), the JSON API
(`DELETE /api/runs/{id}` against the real server in its own process, with httpx), the Runs tab's handlers (the
built page, called as its login), and `studio delete`. Only the run's own folder goes; a run still queued or
running is refused ("Stop it first"); another user's run is "not found"; every deletion is one audit line. Runs are
written as a worker leaves them (tests/team_runs.py): deleting needs runs to exist, not to have trained."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gradio as gr
import httpx
import pytest

from helpers import free_port, login, start_server, stop_server
from studio import audit
from studio.cli import main
from studio.run.deletion import DeleteError, delete_run
from studio.run.jobs import JobManager
from studio.run.ownership import viewer
from studio.users import Users
from studio.workspace import RunNotFound, Workspace
from team_runs import made_run

ROOT = Path(__file__).resolve().parent.parent


def team(root: Path) -> Workspace:
    users = Users(root)
    users.add("ada", "ada-pw", admin=True)
    users.add("bob", "bob-pw")
    users.add("cara", "cara-pw")
    return Workspace(root)


def deleted(workspace: Workspace) -> list[tuple]:
    return [(e["user"], e["details"]["run"]) for e in audit.read(workspace.root) if e["what"] == "run deleted"]


# -- the run layer ---------------------------------------------------------------------------------------------------

def test_an_owner_deletes_their_ended_run_and_nothing_else(tmp_path):
    workspace = team(tmp_path / "ws")
    mine, theirs = made_run(workspace.root, "bob"), made_run(workspace.root, "cara")
    beside = workspace.root / "runs" / "notes.txt"  # a file of the runs folder that is no run's
    beside.write_text("kept")
    where = delete_run(workspace, viewer(workspace, "bob"), mine)
    assert where == workspace.root / "runs" / mine and not where.exists()
    assert [r["id"] for r in workspace.runs()] == [theirs] and beside.read_text() == "kept"
    assert (workspace.root / "users.json").exists()


def test_another_users_run_is_not_found_and_an_admin_deletes_anyones(tmp_path):
    workspace = team(tmp_path / "ws")
    theirs = made_run(workspace.root, "cara")
    for who in ("bob", None):  # another user, and no one logged in
        with pytest.raises(RunNotFound, match=f"No run called '{theirs}'"):
            delete_run(workspace, viewer(workspace, who), theirs)
    assert (workspace.root / "runs" / theirs).is_dir()
    delete_run(workspace, viewer(workspace, "ada"), theirs)
    assert workspace.runs() == []
    with pytest.raises(RunNotFound):  # a path is never an id
        delete_run(workspace, viewer(workspace, "ada"), "../runs")


@pytest.mark.parametrize("state", ["queued", "running"])
def test_an_active_run_is_refused_in_words(tmp_path, state):
    workspace = team(tmp_path / "ws")
    run_id = made_run(workspace.root, "bob", status=state)
    with pytest.raises(DeleteError, match=f"Run {run_id} is {state}. Stop it first"):
        delete_run(workspace, viewer(workspace, "bob"), run_id)
    assert (workspace.root / "runs" / run_id / "model" / "model.safetensors").exists()


def test_nothing_outside_the_workspace_is_followed_or_deleted(tmp_path):
    """A run folder that is a link, a runs folder that is a link, a "run" among the shared uploads: refused, and
    what they lead to stays whole."""
    workspace = team(tmp_path / "ws")
    outside = Workspace(tmp_path / "outside")
    far = made_run(outside.root, "bob")
    (workspace.root / "runs").mkdir()
    (workspace.root / "runs" / far).symlink_to(outside.root / "runs" / far)
    (workspace.root / "linked").symlink_to(outside.root / "runs")
    in_uploads = made_run(workspace.root, "bob", output_dir="uploads")
    ada = viewer(workspace, "ada")
    assert {r["id"] for r in workspace.runs()} >= {far, in_uploads}
    for run_id in (far, in_uploads):
        with pytest.raises(DeleteError, match="not a plain folder of the workspace"):
            delete_run(workspace, ada, run_id)
    assert (outside.root / "runs" / far / "model" / "model.safetensors").exists()
    assert (workspace.root / "uploads" / in_uploads / "status.json").exists()


def test_the_job_manager_forgets_a_deleted_run(tmp_path):
    workspace = team(tmp_path / "ws")
    run_id = made_run(workspace.root, "bob")
    manager = JobManager(workspace, in_process=True)
    assert manager.get(run_id).status["status"] == "completed"
    delete_run(workspace, viewer(workspace, "bob"), run_id, manager)
    with pytest.raises(RunNotFound):
        manager.get(run_id)


# -- the JSON API ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """(url, workspace, {name: token}): the real studio, with ada an admin, bob and cara users."""
    workspace = team(tmp_path_factory.mktemp("delete"))
    tokens = {name: Users(workspace.root).new_token(name)[1] for name in ("ada", "bob", "cara")}
    port = free_port()
    server = start_server([sys.executable, str(ROOT / "launch.py"), "--port", str(port), "--workspace",
                           str(workspace.root)], port, workspace.root / "server.log", cwd=ROOT)
    yield f"http://127.0.0.1:{port}", workspace, tokens
    stop_server(server)


def test_delete_through_the_api(studio):
    url, workspace, tokens = studio
    bobs, caras, running = (made_run(workspace.root, "bob"), made_run(workspace.root, "cara"),
                            made_run(workspace.root, "bob", status="running"))
    bob = httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {tokens['bob']}"})
    with bob, httpx.Client(base_url=url, timeout=30) as anonymous:
        refused = anonymous.delete(f"/api/runs/{bobs}")
        assert refused.status_code == 401 and refused.json()["error"].startswith("Log in first")
        hidden = bob.delete(f"/api/runs/{caras}")
        assert hidden.status_code == 404 and f"No run called '{caras}'" in hidden.json()["error"]
        active = bob.delete(f"/api/runs/{running}")
        assert active.status_code == 409 and "Stop it first" in active.json()["error"]
        gone = bob.delete(f"/api/runs/{bobs}")
        assert gone.status_code == 204 and gone.content == b""
        assert bobs not in [r["id"] for r in bob.get("/api/runs").json()["runs"]]
        assert bob.delete(f"/api/runs/{bobs}").status_code == 404  # once
        assert bob.get(f"/api/runs/{bobs}/files/model/model.safetensors").status_code == 404
    assert not (workspace.root / "runs" / bobs).exists()
    assert (workspace.root / "runs" / caras).is_dir() and (workspace.root / "runs" / running).is_dir()
    assert deleted(workspace) == [("bob", bobs)]
    assert "delete" in httpx.get(f"{url}/api/openapi.json").json()["paths"]["/runs/{run_id}"]
    assert "DELETE /api/runs/{run_id}" in httpx.get(f"{url}/api/docs").text


def test_the_login_cookie_deletes_only_from_the_studios_own_page(studio):
    url, workspace, _ = studio
    run_id = made_run(workspace.root, "cara")
    with httpx.Client(base_url=url, timeout=30) as cara:
        assert login(cara, "cara", "cara-pw").status_code == 200
        bare = cara.delete(f"/api/runs/{run_id}")
        assert bare.status_code == 403 and "Origin" in bare.json()["error"]
        elsewhere = cara.delete(f"/api/runs/{run_id}", headers={"Origin": "https://evil.example"})
        assert elsewhere.status_code == 403 and "another site" in elsewhere.json()["error"]
        assert (workspace.root / "runs" / run_id).is_dir()
        assert cara.delete(f"/api/runs/{run_id}", headers={"Origin": url}).status_code == 204
    assert ("cara", run_id) in deleted(workspace)


# -- the Runs tab ----------------------------------------------------------------------------------------------------

def page_handlers(workspace: Workspace) -> dict:
    """The built page's delete handlers and the tabs' openings, as gradio calls them, by name; and components."""
    from studio.ui.app import build_app
    app = build_app(workspace, JobManager(workspace, in_process=True))
    ids = {b.elem_id: b for b in app.blocks.values() if getattr(b, "elem_id", None)}
    found = {"ids": ids}
    for name, writes in (("on_ask", "delete-note"), ("on_confirm", "delete-note"), ("on_open", "evaluate-run"),
                         ("on_open", "playground-run"), ("on_open", "runs-run")):
        found[f"{name} {writes}"] = next(f.fn for f in app.fns.values()
                                         if f.name == name and ids[writes] in f.outputs)
    return found


def fresh_session(name: str) -> dict:
    from studio.ui.session import new_session
    return {**new_session(user=name), "lang": "en"}


def choices(answer: dict, component) -> list[str]:
    return [value for _, value in answer[component]["choices"]]


def test_the_runs_tab_asks_then_deletes_and_the_run_leaves_every_picker(tmp_path):
    workspace = team(tmp_path / "ws")
    mine, theirs = made_run(workspace.root, "bob"), made_run(workspace.root, "cara")
    page = page_handlers(workspace)
    ids, as_bob = page["ids"], gr.Request(username="bob")
    note, confirm = ids["delete-note"], ids["delete-run-confirm"]
    state = {**fresh_session("bob"), "run_id": mine, "runs": [mine]}
    asked = page["on_ask delete-note"](mine, state, as_bob)
    assert asked[note].startswith("**Delete notes · ") and "for good" in asked[note]
    assert asked[confirm]["visible"] is True
    hidden = page["on_ask delete-note"](theirs, fresh_session("bob"), as_bob)  # crafted: another user's run
    assert hidden[note] == "Pick a run first." and hidden[confirm]["visible"] is False
    refused = page["on_confirm delete-note"](theirs, theirs, fresh_session("bob"), as_bob)
    assert refused[note].startswith("**Cannot delete.** No run called") and (workspace.root / "runs" / theirs).is_dir()
    # the picker shows another run than the one the question named (the tab reopened on the latest): nothing goes
    other = made_run(workspace.root, "bob")
    moved = page["on_confirm delete-note"](other, mine, state, as_bob)
    assert moved[note] == "Pick a run first." and moved[confirm]["visible"] is False
    assert (workspace.root / "runs" / other).is_dir() and (workspace.root / "runs" / mine).is_dir()

    done = page["on_confirm delete-note"](mine, mine, state, as_bob)
    assert done[note] == f"Deleted run {mine}." and done[confirm]["visible"] is False
    assert mine not in choices(done, ids["runs-run"]) and not (workspace.root / "runs" / mine).exists()
    kept = next(v for c, v in done.items() if isinstance(c, gr.BrowserState))
    assert kept["run_id"] is None and kept["runs"] == []
    for picker in ("evaluate-run", "playground-run"):
        assert choices(page[f"on_open {picker}"](kept, as_bob), ids[picker]) == [other]
    as_ada = gr.Request(username="ada")  # an admin sees cara's run, and deletes it
    assert theirs in choices(page["on_open runs-run"](fresh_session("ada"), as_ada), ids["runs-run"])
    assert page["on_confirm delete-note"](theirs, theirs, fresh_session("ada"), as_ada)[note] == \
        f"Deleted run {theirs}."
    assert deleted(workspace) == [("bob", mine), ("ada", theirs)]


def test_the_runs_tab_refuses_an_active_run_in_words(tmp_path):
    workspace = team(tmp_path / "ws")
    running = made_run(workspace.root, "bob", status="running")
    page = page_handlers(workspace)
    note, as_bob = page["ids"]["delete-note"], gr.Request(username="bob")
    asked = page["on_ask delete-note"](running, fresh_session("bob"), as_bob)
    assert asked[note] == "This run is running. Stop it first, then delete it."
    forced = page["on_confirm delete-note"](running, running, fresh_session("bob"), as_bob)
    assert "Stop it first" in forced[note] and (workspace.root / "runs" / running).is_dir()
    assert deleted(workspace) == []


# -- the command line ------------------------------------------------------------------------------------------------

def test_studio_delete_asks_refuses_active_runs_and_audits(tmp_path, capsys):
    workspace = team(tmp_path / "ws")
    ended, running = made_run(workspace.root, "bob"), made_run(workspace.root, "cara", status="running")
    asked = subprocess.run([sys.executable, "-m", "studio.cli", "--workspace", str(workspace.root), "delete", ended],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert asked.returncode == 2 and "add --yes" in asked.stderr and "Traceback" not in asked.stderr
    assert (workspace.root / "runs" / ended).is_dir()
    assert main(["--workspace", str(workspace.root), "delete", running, "--yes"]) == 2
    assert f"Run {running} is running. Stop it first" in capsys.readouterr().err
    assert main(["--workspace", str(workspace.root), "delete", "no-such-run", "--yes"]) == 2
    assert "No run called 'no-such-run'" in capsys.readouterr().err
    assert main(["--workspace", str(workspace.root), "delete", ended, "--yes"]) == 0
    assert capsys.readouterr().err.strip() == f"Deleted run {ended}."
    assert not (workspace.root / "runs" / ended).exists() and (workspace.root / "runs" / running).is_dir()
    [line] = [e for e in audit.read(workspace.root) if e["what"] == "run deleted"]
    assert line["details"]["run"] == ended and line["details"]["by"].startswith("command line")


def test_studio_runs_shows_owners(tmp_path, capsys):
    workspace = team(tmp_path / "ws")
    bobs, older = made_run(workspace.root, "bob"), made_run(workspace.root, None)
    assert main(["--workspace", str(workspace.root), "runs"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[-1] == "owner"
    assert {row.split()[0]: row.split()[-1] for row in rows} == {bobs: "bob", older: "-"}
    assert main(["--workspace", str(workspace.root), "runs", "--json"]) == 0
    assert {r["id"]: r["owner"] for r in json.loads(capsys.readouterr().out)} == {bobs: "bob", older: None}
    bare = Workspace(tmp_path / "alone")  # no accounts, no owners: the table as before
    made_run(bare.root, None)
    assert main(["--workspace", str(bare.root), "runs"]) == 0
    assert "owner" not in capsys.readouterr().out

"""The JSON API (/api/…), from outside: the real studio (`python launch.py`) in its own process on 127.0.0.1 with
three accounts in its workspace (ada an admin, bob and cara users), spoken to over HTTP with httpx as a script
would. Anonymous callers get 401, tokens work until revoked, the login cookie works (its changes only with the
page's own Origin), another user's run is 404 through every route, no path leads out of a run's folder, a recipe
posted by a user runs to its end, a recipe that reads what its user may not is 422 naming the key, stop is 202
then 409, and an owner over their limit waits while the runs behind pass."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from helpers import free_port, login, start_server, stop_server, wait_for, write_text_csv
from studio import audit
from studio.users import Users

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """(url, workspace, {name: token})."""
    workspace = tmp_path_factory.mktemp("api")
    users = Users(workspace)
    tokens = {}
    for name, admin in (("ada", True), ("bob", False), ("cara", False)):
        users.add(name, f"{name}-pw", admin=admin)
        tokens[name] = users.new_token(name)[1]
    port = free_port()
    server = start_server([sys.executable, str(ROOT / "launch.py"), "--port", str(port), "--workspace",
                           str(workspace)], port, workspace / "server.log", cwd=ROOT)
    yield f"http://127.0.0.1:{port}", workspace, tokens
    stop_server(server)


def as_user(studio, name: str | None) -> httpx.Client:
    url, _, tokens = studio
    return httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {tokens[name]}"} if name else {})


def status_of(http: httpx.Client, run_id: str) -> dict:
    return http.get(f"/api/runs/{run_id}").json()["details"]


def test_anonymous_callers_get_401_in_words(studio):
    with as_user(studio, None) as http:
        for method, path in (("GET", "/api/runs"), ("GET", "/api/runs/any"), ("GET", "/api/runs/any/files/eval.json"),
                             ("POST", "/api/runs"), ("POST", "/api/runs/any/stop"), ("POST", "/api/uploads")):
            answer = http.request(method, path)
            assert answer.status_code == 401, (path, answer.text)
            assert answer.json()["error"].startswith("Log in first") and answer.headers["www-authenticate"] == "Bearer"
        described = http.get("/api/docs")  # the API's description is public, and needs no internet
        assert described.status_code == 200 and "POST /api/runs/{run_id}/stop" in described.text
        assert "cdn" not in described.text.lower()
        assert set(http.get("/api/openapi.json").json()["paths"]) == {
            "/runs", "/runs/{run_id}", "/runs/{run_id}/files/{path}", "/runs/{run_id}/stop", "/uploads"}


def test_a_token_works_until_it_is_revoked(studio):
    url, workspace, _ = studio
    token_id, token = Users(workspace).new_token("cara")
    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get("/api/runs").status_code == 200
        Users(workspace).revoke_token("cara", token_id)
        refused = http.get("/api/runs")
        assert refused.status_code == 401 and "unknown or was revoked" in refused.json()["error"]
    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": "Basic Y2FyYTpjYXJhLXB3"}) as http:
        assert http.get("/api/runs").status_code == 401


def test_the_login_cookie_works_and_its_changes_need_the_pages_origin(studio):
    url = studio[0]
    with httpx.Client(base_url=url, timeout=30) as http:
        assert login(http, "cara", "cara-pw").status_code == 200
        assert http.get("/api/runs").json() == {"runs": []}
        bare = http.post("/api/runs", content="task: nothing")
        assert bare.status_code == 403 and "Origin" in bare.json()["error"]
        elsewhere = http.post("/api/runs", content="task: nothing", headers={"Origin": "https://evil.example"})
        assert elsewhere.status_code == 403 and "another site" in elsewhere.json()["error"]
        same = http.post("/api/runs", content="{task: [", headers={"Origin": url})
        assert same.status_code == 422 and "not valid YAML" in same.json()["error"]  # heard, and answered


def test_the_login_cookie_reads_nothing_for_another_site(studio):
    """gradio's CORS answers let any site read what the browser fetches with the cookie once the studio is served
    beyond localhost: the API refuses the cookie on every request naming another origin."""
    url = studio[0]
    with httpx.Client(base_url=url, timeout=30) as http:
        assert login(http, "cara", "cara-pw").status_code == 200
        for path in ("/api/runs", "/api/runs/any", "/api/runs/any/files/eval.json"):
            elsewhere = http.get(path, headers={"Origin": "https://evil.example"})
            assert elsewhere.status_code == 403 and "another site" in elsewhere.json()["error"], path
        assert http.get("/api/runs", headers={"Origin": url}).status_code == 200  # the studio's own page


def test_the_cookie_of_a_removed_account_opens_nothing(studio):
    url, workspace, _ = studio
    Users(workspace).add("dan", "dan-pw")
    with httpx.Client(base_url=url, timeout=30) as http:
        assert login(http, "dan", "dan-pw").status_code == 200
        assert http.get("/api/runs").status_code == 200
        Users(workspace).remove("dan")  # gradio still knows his cookie
        refused = http.get("/api/runs")
        assert refused.status_code == 401 and refused.json()["error"].startswith("Log in first")


def upload(http: httpx.Client, path: Path) -> dict:
    answer = http.post("/api/uploads", files={"file": (path.name, path.read_bytes(), "text/csv")})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_users_recipe_runs_to_its_end_and_only_they_and_admins_see_it(studio, tmp_path):
    url, workspace, _ = studio
    data = Path(write_text_csv(tmp_path / "topics.csv"))
    with as_user(studio, "bob") as bob, as_user(studio, "cara") as cara, as_user(studio, "ada") as ada:
        sent = upload(bob, data)
        assert sent["size"] == data.stat().st_size and sent["name"] == "topics.csv"
        recipe = {"task": "text-classification", "model": "all-minilm-l6-v2", "strategy": "feature-extraction",
                  "data": {"path": sent["path"]}}
        started = bob.post("/api/runs", json=recipe)
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        assert started.json()["status"] == "queued"
        wait_for(lambda: status_of(bob, run_id)["status"] not in ("queued", "running"), 240, "bob's run to end")
        run = bob.get(f"/api/runs/{run_id}").json()
        assert run["status"] == "completed", run["details"].get("error")
        assert run["owner"] == "bob" and run["eval"]["num_examples"] > 0
        listed = bob.get("/api/runs").json()["runs"]
        assert [r["id"] for r in listed] == [run_id]
        assert listed[0]["metric"]["name"] == "accuracy" and 0 <= listed[0]["metric"]["value"] <= 1
        assert json.loads(bob.get(f"/api/runs/{run_id}/files/eval.json").content) == run["eval"]
        assert run_id in [r["id"] for r in ada.get("/api/runs").json()["runs"]]  # an admin sees it, with its owner
        assert ada.get(f"/api/runs/{run_id}").json()["owner"] == "bob"
        assert run_id not in [r["id"] for r in cara.get("/api/runs").json()["runs"]]
        for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/files/eval.json", "/api/runs/no-such-run"):
            hidden = cara.get(path)
            assert hidden.status_code == 404 and "No run called" in hidden.json()["error"], path
        assert cara.post(f"/api/runs/{run_id}/stop").status_code == 404
        ended = bob.post(f"/api/runs/{run_id}/stop")
        assert ended.status_code == 409
        assert ended.json()["error"] == f"Run {run_id} is completed: there is nothing to stop."
        for path in ("../../../users.json", "..%2F..%2F..%2Fusers.json", "%2E%2E/%2E%2E/%2E%2E/audit.jsonl",
                     "..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
                     "model%2F..%2F..%2F..%2Fcache%2Fui-session-key"):
            outside = httpx.get(f"{url}/api/runs/{run_id}/files/{path}", headers=bob.headers, timeout=30)
            assert outside.status_code == 404 and outside.json()["error"], path
        cara_upload = workspace / "uploads" / "users" / "bob" / sent["path"]
        theirs = cara.post("/api/runs", json={**recipe, "data": {"path": str(cara_upload)}})
        assert theirs.status_code == 422 and "Recipe key 'data.path'" in theirs.json()["error"]
    trail = [(e["what"], e["user"]) for e in audit.read(workspace) if e["what"] in ("run started", "download")]
    assert trail == [("run started", "bob"), ("download", "bob")]


@pytest.mark.parametrize("recipe, key", [
    ("task: text-classification\nmodel: all-minilm-l6-v2\ndata: {path: x.csv}\ncolour: blue\n", "colour"),
    ("task: text-classification\nmodel: all-minilm-l6-v2\ndata: {path: /etc/passwd}\n", "data.path"),
    ("task: text-classification\nmodel: /tmp\ndata: {path: x.csv}\n", "model"),
    ("task: text-classification\nmodel: all-minilm-l6-v2\ndata: {path: x.csv}\ntrust_remote_code: true\n",
     "trust_remote_code"),
    ("task: text-classification\nmodel: all-minilm-l6-v2\ndata: {path: x.csv}\noutput_dir: ../../elsewhere\n",
     "output_dir"),
    ("task: text-classification\nmodel: all-minilm-l6-v2\ndata: {path: x.csv}\noutput_dir: runs/nested\n",
     "output_dir"),
    ("task: text-classification\nmodel: all-minilm-l6-v2\ndata: {path: x.csv}\ntrain: {epochs: 0}\n", "train.epochs"),
])
def test_a_recipe_that_cannot_run_or_reads_what_it_may_not_is_422_naming_the_key(studio, recipe, key):
    with as_user(studio, "cara") as cara:
        answer = cara.post("/api/runs", content=recipe, headers={"Content-Type": "application/yaml"})
        assert answer.status_code == 422 and f"'{key}'" in answer.json()["error"], answer.text


def test_an_upload_over_the_users_limit_is_refused_with_the_number(studio, tmp_path):
    _, workspace, _ = studio
    Users(workspace).set_limits("cara", max_upload_mb=1)
    big = tmp_path / "big.csv"
    big.write_bytes(b"text,label\n" + b"x" * (2 * 2**20))
    with as_user(studio, "cara") as cara:
        answer = cara.post("/api/uploads", files={"file": ("big.csv", big.read_bytes(), "text/csv")})
        assert answer.status_code == 413 and answer.json()["error"] == ("The file is larger than your upload limit "
                                                                        "of 1 MB.")
    assert not list((workspace / "uploads" / "users").glob("cara/*/big.csv"))


def long_recipe(tiny_bert: str, text_csv: str) -> dict:
    """A run that trains until it is stopped (an admin's: a model folder of the tests' own)."""
    return {"task": "text-classification", "model": tiny_bert, "strategy": "full", "data": {"path": text_csv},
            "train": {"epochs": 1000, "batch_size": 2, "early_stopping_patience": 0}}


def test_stop_is_202_while_a_run_is_active_and_409_once_it_has_ended(studio, tiny_bert, text_csv):
    _, workspace, _ = studio
    with as_user(studio, "ada") as ada:
        run_id = ada.post("/api/runs", json=long_recipe(tiny_bert, text_csv)).json()["id"]
        wait_for(lambda: status_of(ada, run_id)["status"] == "running", 120, "the run to start")
        assert ada.post(f"/api/runs/{run_id}/stop").status_code == 202
        wait_for(lambda: status_of(ada, run_id)["status"] == "cancelled", 60, "the run to stop")
        assert ada.post(f"/api/runs/{run_id}/stop").status_code == 409
    assert [(e["user"], e["details"]["run"]) for e in audit.read(workspace) if e["what"] == "run stopped"] == \
        [("ada", run_id)]


@pytest.mark.slow
def test_an_owner_over_their_limit_waits_while_the_runs_behind_pass(studio, tiny_bert, text_csv):
    """ada may train one run at once: her second waits for her first, saying so, and cara's, started after it,
    does not wait behind it (only for the CPU that ada's first holds)."""
    _, workspace, _ = studio
    Users(workspace).set_limits("ada", max_runs=1)
    with as_user(studio, "ada") as ada, as_user(studio, "cara") as cara:
        first = ada.post("/api/runs", json=long_recipe(tiny_bert, text_csv)).json()["id"]
        wait_for(lambda: status_of(ada, first)["status"] == "running", 120, "ada's first run to start")
        second = ada.post("/api/runs", json=long_recipe(tiny_bert, text_csv)).json()["id"]
        wait_for(lambda: status_of(ada, second).get("owner_limit"), 120, "ada's second run to wait for her limit")
        assert status_of(ada, second)["message"].startswith("Waiting: ada has 1 run training")
        texts = upload(cara, Path(text_csv))
        third = cara.post("/api/runs", json={"task": "text-classification", "model": "all-minilm-l6-v2",
                                             "strategy": "feature-extraction", "data": {"path": texts["path"]}})
        third = third.json()["id"]
        wait_for(lambda: status_of(cara, third).get("position") == 1, 120, "cara's run to wait for the device only")
        assert status_of(cara, third)["owner_limit"] is None
        assert status_of(ada, second)["status"] == "queued"
        for http, run_id in ((ada, first), (ada, second), (cara, third)):
            assert http.post(f"/api/runs/{run_id}/stop").status_code == 202
        for http, run_id in ((ada, first), (ada, second), (cara, third)):
            wait_for(lambda: status_of(http, run_id)["status"] == "cancelled", 60, f"{run_id} to stop")

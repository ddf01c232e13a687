"""Runs every case of the team's bad-input corpus (tests/corpus_team.py) against one real studio in its own process
(accounts ada an admin, bob and cara users; one run of bob's and one of cara's): `studio users …` in a new process,
the JSON API and the login form over HTTP with httpx. Each answer has the code and the words the case expects and
no traceback; nothing is written outside the workspace, no account is added, and both runs are still there."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from corpus_team import API, CASES, PASSWORDS, USERS_CLI, Team
from helpers import free_port, start_server, stop_server
from studio.users import Users
from team_runs import made_run

ROOT = Path(__file__).resolve().parent.parent
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(team, url, {name: token}, the folder around the workspace: two levels, so that '../..' stays inside it)."""
    around = tmp_path_factory.mktemp("team-corpus")
    workspace = around / "a" / "ws"
    users = Users(workspace)
    for name, password in PASSWORDS.items():
        users.add(name, password, admin=name == "ada")
    tokens = {name: users.new_token(name)[1] for name in PASSWORDS}
    team = Team(workspace, {name: made_run(workspace, name) for name in ("bob", "cara")})
    port = free_port()
    server = start_server([sys.executable, str(ROOT / "launch.py"), "--port", str(port), "--workspace",
                           str(workspace)], port, workspace / "server.log", cwd=ROOT)
    yield team, f"http://127.0.0.1:{port}", tokens, around
    stop_server(server)


def files_outside(around: Path, workspace: Path) -> set[Path]:
    return {p for p in around.rglob("*") if workspace != p and workspace not in p.parents}


def answer(case, team: Team, url: str, tokens: dict) -> tuple[int, str]:
    sent = case.sent(team)
    if case.via == USERS_CLI:
        done = subprocess.run([sys.executable, "-m", "studio.cli", "--workspace", str(team.workspace), "users",
                               *sent.args], input=sent.stdin, capture_output=True, text=True, cwd=ROOT, timeout=120,
                              check=False)
        return done.returncode, done.stdout + done.stderr
    assert case.via == API
    headers = {**({"Authorization": f"Bearer {tokens[sent.user]}"} if sent.user else {}), **sent.headers}
    if sent.yaml is not None:
        headers["Content-Type"] = "application/yaml"
    reply = httpx.request(sent.method, url + sent.path, headers=headers, json=sent.json, content=sent.yaml,
                          files=sent.files, data=sent.form, timeout=60)
    return reply.status_code, reply.text


def test_the_corpus_holds_what_the_issue_names():
    ids = {case.id for case in CASES}
    assert {"empty-password", "name-with-a-slash", "output-dir-outside-the-workspace",
            "files-route-to-etc-passwd"} <= ids and len(ids) == len(CASES) >= 20
    assert {case.via for case in CASES} == {USERS_CLI, API}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_bad_input_is_answered_in_words(case, served):
    team, url, tokens, around = served
    before = files_outside(around, team.workspace)
    code, text = answer(case, team, url, tokens)
    assert code == case.code, text[-2000:]
    for pattern in case.expect:
        assert re.search(pattern, text, re.IGNORECASE | re.MULTILINE), (pattern, text[-2000:])
    assert not TRACEBACK.search(text), text[-2000:]
    assert files_outside(around, team.workspace) == before
    assert [user.name for user in Users(team.workspace).all()] == sorted(PASSWORDS)
    assert all((team.workspace / "runs" / run_id / "model").is_dir() for run_id in team.runs.values())

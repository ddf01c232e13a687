"""The login of `studio serve`, from outside: the real studio in its own process on 127.0.0.1 with accounts in its
workspace, spoken to over HTTP with httpx as a script or a browser would. Wrong passwords are refused, the right
one's cookie opens the page until logout, the old --auth pair still logs in, too many failures are answered 429 in
words, X-Forwarded-For counts only from a trusted proxy, the accounts' files are never served, and the audit trail
has every attempt.

Two studios: one behind a "proxy" (--trusted-proxy 127.0.0.1, so each test speaks from an address of its own via
X-Forwarded-For, and one test's lockout cannot touch another's), one without (where that header must not count)."""
from __future__ import annotations

import asyncio
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from browser_helpers import shot
from helpers import free_port, login, start_server, stop_server
import studio.ui.app as app
from studio import audit, cli
from studio.ui import login as login_check
from studio.users import FILE, Users

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def studios(tmp_path_factory):
    """{"proxied": (url, workspace), "direct": (url, workspace)}, each with alice (admin), bob and carol."""
    made, servers = {}, []

    def start(kind: str, extra: list[str]):
        workspace = tmp_path_factory.mktemp(f"login-{kind}")
        users = Users(workspace)
        users.add("alice", "alice-pw", admin=True)
        users.add("bob", "bob-pw")
        users.add("carol", "carol-pw")  # the browser's (no other test fails her logins)
        port = free_port()
        env = {**os.environ, "STUDIO_AUTH": "legacy:legacy-pw", "GRADIO_ANALYTICS_ENABLED": "False"}
        server = start_server([sys.executable, str(ROOT / "launch.py"), "--port", str(port), "--workspace",
                               str(workspace), *extra], port, workspace / "server.log", cwd=ROOT, env=env)
        return kind, server, (f"http://127.0.0.1:{port}", workspace)

    with ThreadPoolExecutor(2) as pool:  # both start at once: a studio takes a while to import
        for kind, server, where in pool.map(lambda a: start(*a), [("proxied", ["--trusted-proxy", "127.0.0.1"]),
                                                                   ("direct", [])]):
            servers.append(server)
            made[kind] = where
    yield made
    for server in servers:  # all stopped first: a failed check below leaves none running
        server.terminate()
    for server in servers:
        stop_server(server)
        server.wait(30)


def client(url: str, address: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, headers={"X-Forwarded-For": address} if address else {})


def test_the_right_password_opens_the_page_until_logout(studios):
    url, workspace = studios["proxied"]
    with client(url, "10.1.0.1") as http:
        assert http.get("/config").status_code == 401  # anonymous
        wrong = login(http, "alice", "not-her-password")
        assert wrong.status_code == 400 and not http.cookies
        assert http.get("/config").status_code == 401
        assert login(http, "alice", "alice-pw").status_code == 200
        config = http.get("/config")
        assert config.status_code == 200
        logout = [c for c in config.json()["components"] if c["props"].get("elem_id") == "logout"]
        assert logout and logout[0]["props"]["link"] == "/logout"  # the page's Log out button
        assert http.get("/logout", follow_redirects=False).status_code == 302
        assert http.get("/config").status_code == 401
    trail = [(e["what"], e["user"], e["address"]) for e in audit.read(workspace) if e["address"] == "10.1.0.1"]
    assert trail == [("login failed", "alice", "10.1.0.1"), ("login", "alice", "10.1.0.1")]
    assert "alice-pw" not in (workspace / audit.FILE).read_text()


def test_the_old_auth_pair_still_logs_in(studios):
    url, _ = studios["proxied"]
    with client(url, "10.1.0.2") as http:
        assert login(http, "legacy", "wrong").status_code == 400
        assert login(http, "legacy", "legacy-pw").status_code == 200
        assert http.get("/config").status_code == 200
        assert http.get("/api/runs").status_code == 200  # a user beside the accounts, not a removed one


def test_more_than_ten_failures_for_a_name_lock_it_for_five_minutes_from_any_address(studios):
    url, workspace = studios["proxied"]
    for n in range(11):
        with client(url, f"10.2.0.{n}") as http:
            assert login(http, "bob", f"guess-{n}").status_code == 400
    with client(url, "10.2.1.1") as http:  # a fresh address, and the right password: still refused
        refused = login(http, "bob", "bob-pw")
        assert refused.status_code == 429, refused.text
        assert refused.json()["detail"] == ("Too many failed logins for this name or from this address: try again "
                                            "in 5 minutes.")
        assert 290 <= int(refused.headers["retry-after"]) <= 301
        assert login(http, "alice", "alice-pw").status_code == 200  # another name from there is heard
    refusals = [e for e in audit.read(workspace, user="bob") if e["what"] == "login refused"]
    assert [e["address"] for e in refusals] == ["10.2.1.1"]


def test_without_a_trusted_proxy_x_forwarded_for_does_not_count(studios):
    """Each attempt claims another address: were the header believed, no address would reach eleven failures."""
    url, workspace = studios["direct"]
    for n in range(11):
        with client(url, f"10.3.0.{n}") as http:
            assert login(http, f"nobody{n}", "guess").status_code == 400
    with client(url, "10.3.1.1") as http:
        assert login(http, "alice", "alice-pw").status_code == 429
    assert {e["address"] for e in audit.read(workspace) if e["what"].startswith("login")} == {"127.0.0.1"}


def test_guesses_sent_all_at_once_count_before_any_is_answered(studios):
    """Thirty wrong passwords for one name at once, each from an address of its own: were failures counted only
    once gradio had answered, all thirty would be checked."""
    url, workspace = studios["proxied"]

    def guess(n: int) -> int:
        with client(url, f"10.4.0.{n}") as http:
            return login(http, "erin", f"guess-{n}").status_code
    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(guess, range(30)))
    assert answers.count(400) == 11 and answers.count(429) == 19, answers
    trail = [e["what"] for e in audit.read(workspace, user="erin")]
    assert trail.count("login failed") == 11 and trail.count("login refused") == 19


def test_an_auth_name_costs_the_same_hashing_as_an_account(tmp_path):
    """The time a wrong password takes does not tell an `--auth` name from another."""
    users = Users(tmp_path)
    users.add("alice", "alice-pw")
    check = login_check.checker(users, [("legacy", "legacy-pw")])

    def took(name: str, password: str) -> tuple[float, bool]:
        start = time.perf_counter()
        ok = pool.submit(asyncio.run, check(name, password)).result()
        return time.perf_counter() - start, ok
    with ThreadPoolExecutor(1) as pool:  # a loop of its own: playwright's may be running on this thread
        assert took("legacy", "legacy-pw")[1] and not took("legacy", "guess")[1] and took("alice", "alice-pw")[1]
        legacy = min(took("legacy", "guess")[0] for _ in range(3))
        unknown = min(took("nobody", "guess")[0] for _ in range(3))
    assert legacy > unknown / 3, (legacy, unknown)


def test_the_accounts_and_the_audit_trail_are_never_served(studios):
    url, workspace = studios["proxied"]
    with client(url, "10.4.0.1") as http:
        assert login(http, "alice", "alice-pw").status_code == 200
        for name in (FILE, audit.FILE):
            answer = http.get(f"/gradio_api/file={workspace / name}")
            assert answer.status_code == 403 and "argon2" not in answer.text, name


@pytest.mark.browser
def test_in_the_browser_a_login_opens_the_studio_and_log_out_closes_it(studios, page):
    url, workspace = studios["proxied"]  # the browser sends no X-Forwarded-For: it logs in from 127.0.0.1
    page.goto(url)
    page.get_by_text("After more than 10 failed tries in 5 minutes, logins pause").wait_for(timeout=30_000)
    page.get_by_label("username").fill("carol")
    page.get_by_label("password").fill("not-hers")
    page.get_by_role("button", name="Login").click()
    page.get_by_text("Incorrect Credentials").wait_for(timeout=30_000)
    page.get_by_label("username").fill("carol")  # the form empties the name after a failure
    page.get_by_label("password").fill("carol-pw")
    page.get_by_role("button", name="Login").click()
    page.get_by_role("tab", name="Model", exact=True).wait_for(timeout=60_000)
    page.locator(".veil").wait_for(state="hidden", timeout=60_000)  # the page has its session back
    shot(page, "login-logged-in")
    page.locator("#logout").click()
    page.get_by_role("button", name="Login").wait_for(timeout=30_000)
    assert page.locator("#logout").count() == 0
    assert [e["what"] for e in audit.read(workspace, user="carol")] == ["login failed", "login"]


def test_serve_knows_the_accounts_and_checks_the_proxy_address(tmp_path, monkeypatch, capsys):
    """`studio serve` in this process with the real launcher replaced: what it says and passes on."""
    calls = []
    monkeypatch.setattr(app, "launch", lambda **kwargs: calls.append(kwargs))
    monkeypatch.delenv("STUDIO_AUTH", raising=False)
    workspace = tmp_path / "ws"
    Users(workspace).add("alice", "pw")
    serve = ["--workspace", str(workspace), "serve", "--host", "0.0.0.0"]
    assert cli.main([*serve, "--trusted-proxy", "10.0.0.5,192.168.0.0/16"]) == 0
    assert "a login is required" in capsys.readouterr().err
    assert calls[-1]["trusted_proxy"] == "10.0.0.5,192.168.0.0/16" and calls[-1]["auth"] is None
    assert cli.main([*serve, "--trusted-proxy", "proxy.example"]) == 2
    assert "--trusted-proxy 'proxy.example' is not an address or a network" in capsys.readouterr().err
    (workspace / FILE).write_text("{damaged")
    assert cli.main(serve) == 2 and "cannot be read" in capsys.readouterr().err
    assert len(calls) == 1

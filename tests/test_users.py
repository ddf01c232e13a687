"""Accounts (studio/users.py), the audit trail (studio/audit.py) and their commands (`studio users …`, `studio
audit`): what lands on disk holds no secret in clear, bad names and passwords are refused in words, two processes
changing the accounts at once lose nothing, every change is audited."""
from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio import audit, cli
from studio.users import FILE, AccountError, Users

STUDIO = str(Path(sys.executable).with_name("studio"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_password_is_kept_as_an_argon2_hash_in_a_file_only_its_owner_reads(tmp_path):
    users = Users(tmp_path)
    assert not users.exist()
    users.add("alice", "correct horse battery", admin=True)
    text = (tmp_path / FILE).read_text()
    assert "correct horse battery" not in text
    assert json.loads(text)["users"]["alice"]["password_hash"].startswith("$argon2id$")
    assert mode(tmp_path / FILE) == 0o600
    assert users.exist() and users.get("alice").is_admin and users.get("nobody") is None
    assert users.verify_password("alice", "correct horse battery")
    assert not users.verify_password("alice", "correct horse")
    assert not users.verify_password("nobody", "correct horse battery")
    users.set_password("alice", "a new one")
    assert users.verify_password("alice", "a new one") and not users.verify_password("alice", "correct horse battery")
    assert mode(tmp_path / FILE) == 0o600  # still, after a rewrite


def test_a_token_is_kept_only_as_its_sha256_and_can_be_revoked(tmp_path):
    users = Users(tmp_path)
    users.add("bob", "pw")
    first_id, first = users.new_token("bob")
    second_id, second = users.new_token("bob")
    assert len(first) >= 43 and first != second  # 32 random bytes, URL-safe base64
    text = (tmp_path / FILE).read_text()
    assert first not in text and second not in text
    assert hashlib.sha256(first.encode()).hexdigest() in text
    assert users.verify_token(first) == "bob" and users.verify_token(second) == "bob"
    assert users.verify_token("not a token") is None and users.verify_token("") is None
    users.revoke_token("bob", first_id)
    assert users.verify_token(first) is None and users.verify_token(second) == "bob"
    with pytest.raises(AccountError, match=f"no token with the id 'nope'.*{second_id}"):
        users.revoke_token("bob", "nope")


# The accounts' bad inputs: each refused in words that say what is wrong.
BAD_NAMES = ["", "a/b", "../etc", "..", "a..b", "with space", ".hidden", "-dash", "x" * 65, "tab\tname", "ü" * 3]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_bad_name_is_refused_in_words(tmp_path, name):
    with pytest.raises(AccountError, match=r"cannot be a user name: use 1 to 64 letters.*no '/'"):
        Users(tmp_path).add(name, "pw")
    assert not (tmp_path / FILE).exists()


def test_an_empty_password_is_refused_in_words(tmp_path):
    users = Users(tmp_path)
    with pytest.raises(AccountError, match="password is empty"):
        users.add("alice", "")
    users.add("alice", "pw")
    with pytest.raises(AccountError, match="password is empty"):
        users.set_password("alice", "")
    assert users.verify_password("alice", "pw")


def test_changes_to_unknown_or_existing_users_are_refused(tmp_path):
    users = Users(tmp_path)
    users.add("alice", "pw")
    with pytest.raises(AccountError, match="exists already"):
        users.add("alice", "other")
    for change in (lambda: users.remove("zed"), lambda: users.new_token("zed"), lambda: users.set_password("zed", "x"),
                   lambda: users.set_limits("zed", max_runs=1)):
        with pytest.raises(AccountError, match="no user called 'zed'"):
            change()


def test_limits_have_defaults_and_take_whole_numbers_only(tmp_path):
    users = Users(tmp_path)
    users.add("alice", "pw")
    limits = users.get("alice").limits
    assert (limits.max_runs, limits.max_upload_mb, limits.max_disk_gb) == (2, 2048, 50)
    users.set_limits("alice", max_runs=4, max_upload_mb=None, max_disk_gb=10)
    limits = users.get("alice").limits
    assert (limits.max_runs, limits.max_upload_mb, limits.max_disk_gb) == (4, 2048, 10)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(AccountError, match="max-runs must be a whole number of at least 1"):
            users.set_limits("alice", max_runs=bad)


def test_a_damaged_accounts_file_is_said_in_words(tmp_path):
    (tmp_path / FILE).write_text("{not json")
    with pytest.raises(AccountError, match="cannot be read.*restore it from a backup"):
        Users(tmp_path).exist()


ADD_SOME = """
import sys
from studio.users import Users
for n in range(4):
    Users(sys.argv[1]).add(f"{sys.argv[2]}{n}", "pw")
"""


def test_two_processes_adding_users_at_once_lose_nothing(tmp_path):
    """Each add reads, changes and writes the whole file: without the lock, one process's write drops the other's."""
    processes = [subprocess.Popen([sys.executable, "-c", ADD_SOME, str(tmp_path), prefix]) for prefix in "ab"]
    assert all(p.wait(120) == 0 for p in processes)
    assert sorted(u.name for u in Users(tmp_path).all()) == [f"{p}{n}" for p in "ab" for n in range(4)]


def test_the_audit_trail_appends_lines_and_reads_them_back_filtered(tmp_path):
    audit.record(tmp_path, "login", "alice", "10.0.0.1")
    audit.record(tmp_path, "login failed", "bob", "10.0.0.2")
    audit.record(tmp_path, "user added", "carol", by="command line")
    assert mode(tmp_path / audit.FILE) == 0o600
    lines = (tmp_path / audit.FILE).read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["details"] == {"by": "command line"}
    with open(tmp_path / audit.FILE, "a") as f:
        f.write('{"time": "2026-01-01T00:00:00Z", "user": "cut sh')  # a line a crash cut short
    entries = audit.read(tmp_path)
    assert [(e["what"], e["user"], e["address"]) for e in entries] == [
        ("login", "alice", "10.0.0.1"), ("login failed", "bob", "10.0.0.2"), ("user added", "carol", None)]
    assert [e["what"] for e in audit.read(tmp_path, user="bob")] == ["login failed"]
    assert len(audit.read(tmp_path, since="1m")) == 3
    assert audit.read(tmp_path, since="30m", now=time.time() + 3600) == []
    assert len(audit.read(tmp_path, since="2h", now=time.time() + 3600)) == 3


def test_the_audit_trail_refuses_a_secret_and_a_bad_span(tmp_path):
    with pytest.raises(ValueError, match="keeps no secrets"):
        audit.record(tmp_path, "user added", "alice", password="pw")
    assert audit.parse_since("90s") == 90 and audit.parse_since("2d") == 2 * 86400
    with pytest.raises(audit.AuditError, match="not a span of time.*30m, 1h, 2d"):
        audit.parse_since("yesterday")


def studio(capsys, monkeypatch, workspace, *args, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(["--workspace", str(workspace), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_users_commands_change_the_accounts_and_audit_every_change(tmp_path, capsys, monkeypatch):
    ws = tmp_path / "ws"
    code, _, err = studio(capsys, monkeypatch, ws, "users", "add", "alice", "--admin", "--password-stdin",
                          stdin="s3cret pass\n")
    assert code == 0 and "Added the admin alice" in err
    assert studio(capsys, monkeypatch, ws, "users", "add", "bob", "--password-stdin", stdin="pw\n")[0] == 0
    code, token, err = studio(capsys, monkeypatch, ws, "users", "token", "bob")
    token = token.strip()
    token_id = Users(ws).get("bob").tokens[0]["id"]
    assert code == 0 and Users(ws).verify_token(token) == "bob" and f"--revoke {token_id}" in err
    code, out, _ = studio(capsys, monkeypatch, ws, "users", "list", "--json")
    listed = json.loads(out)["users"]
    assert [(u["name"], u["admin"], u["tokens"]) for u in listed] == [("alice", True, []), ("bob", False, [token_id])]
    code, out, _ = studio(capsys, monkeypatch, ws, "users", "limit", "bob", "--max-runs", "1", "--max-disk-gb", "5")
    assert code == 0 and "at most 1 run(s) at once, uploads up to 2048 MB, 5 GB of disk" in out
    assert studio(capsys, monkeypatch, ws, "users", "token", "bob", "--revoke", token_id)[0] == 0
    assert Users(ws).verify_token(token) is None
    assert studio(capsys, monkeypatch, ws, "users", "passwd", "bob", "--password-stdin", stdin="new pw\n")[0] == 0
    assert Users(ws).verify_password("bob", "new pw")
    assert studio(capsys, monkeypatch, ws, "users", "remove", "bob")[0] == 0
    assert Users(ws).get("bob") is None
    code, out, _ = studio(capsys, monkeypatch, ws, "audit", "--json")
    trail = [json.loads(line) for line in out.splitlines()]
    assert [(e["what"], e["user"]) for e in trail] == [
        ("user added", "alice"), ("user added", "bob"), ("token created", "bob"), ("limits changed", "bob"),
        ("token revoked", "bob"), ("password changed", "bob"), ("user removed", "bob")]
    assert all(e["details"]["by"].startswith("command line") for e in trail)
    code, out, _ = studio(capsys, monkeypatch, ws, "audit", "--user", "alice", "--since", "1h")
    assert code == 0 and "user added" in out and "bob" not in out
    disk = (ws / FILE).read_text() + (ws / audit.FILE).read_text()
    assert "s3cret pass" not in disk and "new pw" not in disk and token not in disk


def test_the_audit_trail_shows_a_forged_name_escaped_on_one_line(tmp_path, capsys, monkeypatch):
    """A failed login's name is whatever the form sent: no escape code or line break of it reaches the terminal."""
    ws = tmp_path / "ws"
    audit.record(ws, "login failed", "eve\x1b[2J\nforged  -  login", "10.0.0.9")
    code, out, _ = studio(capsys, monkeypatch, ws, "audit")
    assert code == 0 and out.count("\n") == 1 and "\x1b" not in out
    assert "eve\\x1b[2J\\nforged" in out and out.rstrip().endswith("login failed")


def test_the_first_account_says_a_running_studio_asks_for_logins_after_a_restart(tmp_path, capsys, monkeypatch):
    ws = tmp_path / "ws"
    _, _, err = studio(capsys, monkeypatch, ws, "users", "add", "alice", "--admin", "--password-stdin", stdin="pw\n")
    assert "first account" in err and "only once it is started again" in err
    _, _, err = studio(capsys, monkeypatch, ws, "users", "add", "bob", "--password-stdin", stdin="pw\n")
    assert "first account" not in err


@pytest.mark.parametrize("args, stdin, words", [
    (["users", "add", "a/b", "--password-stdin"], "pw\n", "'a/b' cannot be a user name"),
    (["users", "add", "carol", "--password-stdin"], "\n", "The password is empty"),
    (["users", "remove", "zed"], "", "There is no user called 'zed'"),
    (["users", "limit", "zed", "--max-runs", "0"], "", "max-runs must be a whole number of at least 1"),
    (["audit", "--since", "soon"], "", "--since 'soon' is not a span of time"),
])
def test_the_commands_refuse_bad_input_in_one_line(tmp_path, capsys, monkeypatch, args, stdin, words):
    code, out, err = studio(capsys, monkeypatch, tmp_path / "ws", *args, stdin=stdin)
    assert code == 2 and "Traceback" not in out + err
    assert err.strip().splitlines()[-1].startswith("error: ") and words in err, err
    assert not (tmp_path / "ws" / FILE).exists()


def test_without_stdin_the_password_is_asked_twice_and_must_match(tmp_path):
    """The real command with no terminal of its own: getpass reads the two answers from stdin."""
    def add(answers: str) -> subprocess.CompletedProcess:
        return subprocess.run([STUDIO, "--workspace", str(tmp_path), "users", "add", "carol"], input=answers,
                              capture_output=True, text=True, timeout=120, start_new_session=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
    differ = add("one\ntwo\n")
    assert differ.returncode == 2 and "The two passwords differ" in differ.stderr
    assert not Users(tmp_path).exist()
    same = add("one\none\n")
    assert same.returncode == 0, same.stderr
    assert Users(tmp_path).verify_password("carol", "one")


def test_keys_a_later_version_wrote_are_left_alone_and_a_wrong_shape_is_said(tmp_path):
    users = Users(tmp_path)
    users.add("alice", "pw")
    data = json.loads((tmp_path / FILE).read_text())
    data["users"]["alice"].update(owner_of="later", limits={**data["users"]["alice"]["limits"], "max_gpus": 1})
    (tmp_path / FILE).write_text(json.dumps(data))
    assert users.verify_password("alice", "pw") and users.get("alice").limits.max_runs == 2
    (tmp_path / FILE).write_text("[]")
    with pytest.raises(AccountError, match="cannot be read"):
        users.get("alice")

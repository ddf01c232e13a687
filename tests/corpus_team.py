"""The bad-input corpus of a studio a team shares: what a person or a script may send to the accounts command
(`studio users …`) and to the server (the JSON API, the login form), and what must come back. Every case is one
row: how it is sent, what is sent (built from the team's workspace: its runs, its paths), the exit code or HTTP
status, and regular expressions (case-insensitive) the answer must contain. tests/test_corpus_team.py sends every
row to one real server and checks besides that no answer is a traceback and nothing is written outside the
workspace.

    via "users-cli": `studio --workspace WS users ARGS…` in a new process, `stdin` its input (a password)
    via "api":       an HTTP request to the running studio, as `user` (their API token; None: no credentials)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

USERS_CLI, API = "users-cli", "api"
PASSWORDS = {"ada": "ada-pw", "bob": "bob-pw", "cara": "cara-pw"}  # ada is an admin


@dataclass(frozen=True)
class Team:
    """The workspace the cases are sent to: its root, and one finished run of bob's and one of cara's."""
    workspace: Path
    runs: dict[str, str]


@dataclass
class Sent:
    args: list[str] = field(default_factory=list)  # users-cli: after `users`
    stdin: str = ""
    method: str = "GET"  # api
    path: str = ""
    user: str | None = "bob"
    headers: dict = field(default_factory=dict)
    json: dict | None = None
    yaml: str | None = None
    files: dict | None = None
    form: dict | None = None


@dataclass(frozen=True)
class TeamCase:
    id: str
    via: str
    sent: Callable[[Team], Sent]
    code: int  # exit code (users-cli) or HTTP status (api)
    expect: tuple[str, ...] = ()


def recipe(**keys) -> str:
    """A recipe bob may otherwise start, as YAML, with these keys changed."""
    lines = {"task": "text-classification", "model": "all-minilm-l6-v2", "strategy": "feature-extraction",
             "data": "{path: notes.csv}", **keys}
    return "".join(f"{key}: {value}\n" for key, value in lines.items())


def posted(yaml: str, user: str = "bob") -> Callable[[Team], Sent]:
    return lambda team: Sent(method="POST", path="/api/runs", user=user, yaml=yaml)


REFUSED_KEY = "Recipe key '{}'"

CASES = [
    # -- accounts, from the command line -------------------------------------------------------------------------
    TeamCase("empty-password", USERS_CLI, lambda t: Sent(["add", "dora", "--password-stdin"], stdin="\n"), 2,
             (r"password is empty",)),
    TeamCase("name-with-a-slash", USERS_CLI, lambda t: Sent(["add", "dora/evil", "--password-stdin"],
                                                            stdin="pw\n"), 2,
             (r"cannot be a user name", r"no '/'")),
    TeamCase("name-climbing-out", USERS_CLI, lambda t: Sent(["add", "../../etc", "--password-stdin"],
                                                            stdin="pw\n"), 2, (r"cannot be a user name",)),
    TeamCase("name-with-a-space", USERS_CLI, lambda t: Sent(["add", "dora smith", "--password-stdin"],
                                                            stdin="pw\n"), 2, (r"no spaces",)),
    TeamCase("remove-an-unknown-user", USERS_CLI, lambda t: Sent(["remove", "nobody"]), 2,
             (r"no user called 'nobody'", r"studio users list")),
    TeamCase("token-for-an-unknown-user", USERS_CLI, lambda t: Sent(["token", "nobody"]), 2,
             (r"no user called 'nobody'",)),
    TeamCase("an-existing-name-again", USERS_CLI, lambda t: Sent(["add", "bob", "--password-stdin"],
                                                                 stdin="other\n"), 2, (r"exists already",)),
    # -- who asks --------------------------------------------------------------------------------------------------
    TeamCase("anonymous", API, lambda t: Sent(path="/api/runs", user=None), 401, (r"^.*Log in first",)),
    TeamCase("unknown-token", API, lambda t: Sent(path="/api/runs", user=None, headers={
        "Authorization": "Bearer " + "A" * 43}), 401, (r"unknown or was revoked",)),
    TeamCase("token-of-a-bad-format", API, lambda t: Sent(path="/api/runs", user=None, headers={
        "Authorization": "Bearer not a token; DROP TABLE users"}), 401, (r"unknown or was revoked",)),
    TeamCase("basic-credentials", API, lambda t: Sent(path="/api/runs", user=None, headers={
        "Authorization": "Basic Ym9iOmJvYi1wdw=="}), 401, (r"Bearer <token>",)),
    TeamCase("wrong-password-at-login", API, lambda t: Sent(method="POST", path="/login", user=None, form={
        "username": "cara", "password": "not-her-password"}), 400, (r"incorrect credentials",)),
    TeamCase("empty-password-at-login", API, lambda t: Sent(method="POST", path="/login", user=None, form={
        "username": "cara", "password": ""}), 422, (r"password", r"Field required")),
    # -- another user's runs ---------------------------------------------------------------------------------------
    TeamCase("another-users-run", API, lambda t: Sent(path=f"/api/runs/{t.runs['cara']}"), 404,
             (r"No run called",)),
    TeamCase("another-users-file", API, lambda t: Sent(path=f"/api/runs/{t.runs['cara']}/files/eval.json"), 404,
             (r"No run called",)),
    TeamCase("delete-another-users-run", API, lambda t: Sent(method="DELETE", path=f"/api/runs/{t.runs['cara']}"),
             404, (r"No run called",)),
    TeamCase("stop-another-users-run", API, lambda t: Sent(method="POST", path=f"/api/runs/{t.runs['cara']}/stop"),
             404, (r"No run called",)),
    TeamCase("model-from-another-users-run", API, lambda t: posted(
        recipe(model=str(t.workspace / "runs" / t.runs["cara"] / "model")))(t), 422,
        (REFUSED_KEY.format("model"), r"your own runs")),
    # -- paths out of where they belong ---------------------------------------------------------------------------
    TeamCase("files-route-to-etc-passwd", API, lambda t: Sent(
        path=f"/api/runs/{t.runs['bob']}/files/..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd"), 404,
        (r"is not a file of run",)),
    TeamCase("files-route-to-users-json", API, lambda t: Sent(
        path=f"/api/runs/{t.runs['bob']}/files/..%2F..%2Fusers.json"), 404, (r"is not a file of run",)),
    TeamCase("output-dir-outside-the-workspace", API, posted(recipe(output_dir="../../escaped-runs")), 422,
             (REFUSED_KEY.format("output_dir"), r"folder name inside the workspace")),
    TeamCase("output-dir-absolute", API, posted(recipe(output_dir="/tmp/escaped-runs")), 422,
             (REFUSED_KEY.format("output_dir"),)),
    TeamCase("output-dir-into-uploads", API, posted(recipe(output_dir="uploads")), 422,
             (REFUSED_KEY.format("output_dir"),)),
    TeamCase("data-path-etc-passwd", API, posted(recipe(data="{path: /etc/passwd}")), 422,
             (REFUSED_KEY.format("data.path"), r"your own uploads")),
    TeamCase("data-path-in-another-users-uploads", API, lambda t: posted(recipe(
        data=f"{{path: {t.workspace / 'uploads' / 'users' / 'cara' / 'x' / 'notes.csv'}}}"))(t), 422,
        (REFUSED_KEY.format("data.path"),)),
    TeamCase("upload-named-to-climb-out", API, lambda t: Sent(method="POST", path="/api/uploads", files={
        "file": ("../../x.csv", b"text,label\nhello,a\n", "text/csv")}), 201, (r'"name":\s*"x\.csv"',)),
    TeamCase("upload-with-no-file", API, lambda t: Sent(method="POST", path="/api/uploads", form={"note": "x"}),
             422, (r"form field 'file'",)),
    # -- what a user's recipe may not do ----------------------------------------------------------------------------
    TeamCase("trust-remote-code", API, posted(recipe(trust_remote_code="true")), 422,
             (REFUSED_KEY.format("trust_remote_code"), r"admins only")),
    TeamCase("recipe-not-yaml", API, posted("task: [text-classification\n"), 422, (r"not valid YAML", r"line 2")),
    TeamCase("recipe-unknown-key", API, posted(recipe(colour="blue")), 422, (r"'colour'",)),
]

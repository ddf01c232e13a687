"""The studio's login, on gradio's own: gradio serves the login form, POST /login and /logout; this module gives it
the check of a name and password (the workspace's accounts, and the pairs of `--auth USER:PASSWORD`) and stands in
front of POST /login as an ASGI middleware (passed to gradio's FastAPI app through launch's app_kwargs) that
refuses a name or address after too many failures (429, in words) and writes every attempt to the audit trail.

The address is the connection's, as uvicorn gives it: uvicorn replaces it with X-Forwarded-For only for the
proxies FORWARDED_ALLOW_IPS names, which launch sets from `--trusted-proxy` (no one, without it)."""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
from pathlib import Path
from typing import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from studio import audit
from studio.login_guard import LoginGuard
from studio.users import AccountError, Users

log = logging.getLogger(__name__)

LOGIN_PATHS = ("/login", "/login/")
MAX_FORM_BYTES = 64 * 1024  # a login form is a name and a password


def checker(users: Users, logins: list[tuple[str, str]] | None) -> Callable[[str, str], Awaitable[bool]]:
    """gradio's auth function: True for a stored account's password, or one of the --auth pairs. A coroutine
    (gradio awaits it) that hashes on a thread: argon2 takes a tenth of a second, which would hold up every page
    of the studio if it ran on the server's event loop."""
    pairs = dict(logins or [])

    async def check(name: str, password: str) -> bool:
        if name in pairs:  # hashed all the same (no one's hash): the time taken does not tell an --auth name
            await asyncio.to_thread(users.verify_password, None, password)
            return hmac.compare_digest(password.encode("utf-8"), pairs[name].encode("utf-8"))
        try:
            return await asyncio.to_thread(users.verify_password, name, password)
        except AccountError as exc:  # users.json damaged while the studio runs: no one logs in, the log says why
            log.error("%s", exc)
            return False
    return check


def cookie_user(server, cookies: dict) -> str | None:
    """The login a request's cookie stands for on gradio's server app (the JSON API's cookie check), found as
    gradio finds it for gr.Request.username (routes.py, get_current_user): the app's access-token cookie, looked up
    in the tokens its /login handed out (a logout removes them)."""
    cookie_id, tokens = getattr(server, "cookie_id", None), getattr(server, "tokens", None)
    if not cookie_id or not isinstance(tokens, dict):
        return None
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return tokens.get(token) if token else None


class GuardedLogin:
    """ASGI middleware: POST /login passes through the guard; its outcome goes to the guard and the audit trail."""

    def __init__(self, app, root: str | Path, guard: LoginGuard | None = None):
        self.app, self.root, self.guard = app, Path(root), guard or LoginGuard()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in LOGIN_PATHS:
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        if body is None:
            return await _answer(send, 413, "The login form is too large.")
        name = await _form_name(scope, _replaying(body))
        address = (scope.get("client") or ("", 0))[0] or None
        wait = self.guard.begin(name, address)  # counted before gradio checks it: parallel guesses count too
        if wait > 0:
            audit.record(self.root, "login refused", name, address, reason="too many failed logins")
            return await _answer(send, 429, self.guard.message(wait), {"retry-after": str(int(wait) + 1)})

        async def watching_send(message):
            if message["type"] == "http.response.start":  # counted and written before the client hears
                self._outcome(message["status"], name, address)
            await send(message)
        await self.app(scope, _replaying(body), watching_send)

    def _outcome(self, status: int, name: str | None, address: str | None) -> None:
        if status == 400:  # gradio's answer to a wrong name or password: it stays counted
            audit.record(self.root, "login failed", name, address)
            return
        self.guard.take_back(name, address)  # in, or no password was checked
        if status == 200:
            audit.record(self.root, "login", name, address)


async def _read_body(receive) -> bytes | None:
    """The request's body, or None when it passes MAX_FORM_BYTES."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_FORM_BYTES:
            return None
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replaying(body: bytes):
    """A receive() that hands the app the body already read."""
    sent = []

    async def receive():
        if sent:
            return {"type": "http.disconnect"}
        sent.append(True)
        return {"type": "http.request", "body": body, "more_body": False}
    return receive


async def _form_name(scope, receive) -> str | None:
    """The user name the form gives (stripped, as gradio strips it), cut to 100 characters for the trail."""
    try:
        form = await Request(scope, receive).form(max_files=0, max_fields=10)
    except (MultiPartException, HTTPException, ValueError):  # no form: gradio answers it; no name to count
        return None
    name = form.get("username")
    return name.strip()[:100] if isinstance(name, str) else None


async def _answer(send, status: int, words: str, headers: dict | None = None) -> None:
    body = json.dumps({"detail": words}).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})

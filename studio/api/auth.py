"""Who calls the API: `Authorization: Bearer <token>` (a token of `studio users token NAME`), or the page's login
cookie. A request that changes something (POST) with the cookie must come from the studio's own pages (an Origin
header naming this server), so that another web site open in the same browser cannot start or stop runs with it;
a POST naming any other origin is refused whatever its credentials. No request with the cookie is heard from
another origin, reading ones included: gradio's CORS answers echo any origin with credentials allowed when the
studio is served beyond localhost, so only this refusal keeps another site from reading a user's runs. The cookie
of an account removed since is no one's (401). A studio with no login at all (no accounts, no --auth) answers
anyone, as its page does."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from fastapi import Request

from studio.api.errors import ApiError
from studio.run.jobs import JobManager
from studio.run.ownership import Viewer, viewer
from studio.users import AccountError, Users
from studio.workspace import Workspace

SERVER = "studio.server"  # where the mount keeps the server's app in the request's scope (the cookie's lookup)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass
class Settings:
    """What the API's routes share. cookie_user(server app, cookies) → the login a page's cookie stands for."""
    workspace: Workspace
    jobs: JobManager
    needs_login: bool
    cookie_user: Callable[[object, dict], str | None]
    data_roots: list[Path] = field(default_factory=list)
    max_upload_mb: float = 2048
    logins: tuple[str, ...] = ()  # the names of the `--auth` pairs: users beside the accounts


def settings(request: Request) -> Settings:
    return request.app.state.studio


def address(request: Request) -> str | None:
    return request.client.host if request.client else None


def caller(request: Request) -> Viewer:
    """The viewer of this request (a FastAPI dependency): 401 in words without valid credentials."""
    studio = settings(request)
    origin = request.headers.get("origin")
    foreign = bool(origin) and urlsplit(origin).netloc != request.headers.get("host")
    if request.method not in SAFE_METHODS and foreign:
        raise ApiError(403, f"This request comes from another site ({origin[:100]}): the API takes changes only "
                            "from the studio's own pages or from programs with a token.")
    header = request.headers.get("authorization")
    try:
        if header:
            scheme, _, token = header.partition(" ")
            name = Users(studio.workspace.root).verify_token(token.strip()) if scheme.lower() == "bearer" else None
            if name is None:
                raise _unauthorised("The API token is unknown or was revoked (send `Authorization: Bearer "
                                    "<token>`; `studio users token NAME` makes a new one).")
            return viewer(studio.workspace, name, studio.logins)
        name = studio.cookie_user(request.scope.get(SERVER), request.cookies)
        login = studio.needs_login or Users(studio.workspace.root).exist()  # accounts added since it started too
    except AccountError as exc:  # users.json damaged while the studio runs
        raise ApiError(503, str(exc)) from None
    if name is not None:
        if foreign:
            raise ApiError(403, f"This request comes from another site ({origin[:100]}): the login cookie counts "
                                "only on the studio's own pages; programs use `Authorization: Bearer <token>`.")
        if request.method not in SAFE_METHODS and not origin:
            raise ApiError(403, "A change made with the login cookie needs the Origin header of the studio's own "
                                "page; programs use `Authorization: Bearer <token>` instead.")
        who = viewer(studio.workspace, name, studio.logins)
        if who.name is not None:  # None: an account removed since its cookie was given, no one now
            return who
    if login:
        raise _unauthorised("Log in first: send `Authorization: Bearer <token>` (`studio users token NAME` makes "
                            "one), or use the login cookie of the studio's page.")
    return viewer(studio.workspace, None)


def _unauthorised(words: str) -> ApiError:
    return ApiError(401, words, {"www-authenticate": "Bearer"})

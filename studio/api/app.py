"""The API as an application of its own, mounted at /api on the page's server: its routes come before the page's,
its OpenAPI description holds only its own routes (/api/docs, /api/openapi.json), and its errors are its own
({"error": words})."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from fastapi import FastAPI
from starlette.routing import Mount

from studio.api import docs, errors, runs, uploads
from studio.api.auth import SERVER, Settings
from studio.run.jobs import JobManager
from studio.workspace import Workspace

PREFIX = "/api"
DESCRIPTION = """Runs of the studio, for scripts and CI. Authenticate with `Authorization: Bearer <token>` (`studio
users token NAME` prints one) or the page's login cookie. Another user's run answers 404, as a missing one."""


def create(studio: Settings) -> FastAPI:
    api = FastAPI(title="Studio API", description=DESCRIPTION, docs_url=None, openapi_url="/openapi.json",
                  redoc_url=None)
    docs.install(api, PREFIX)  # a page of its own: FastAPI's Swagger page needs a CDN
    api.state.studio = studio
    errors.install(api)
    api.include_router(runs.router)
    api.include_router(uploads.router)
    return api


def mount(workspace: Workspace, jobs: JobManager, needs_login: bool, cookie_user: Callable[[object, dict], str | None],
          data_roots: list[str | Path] = (), max_upload_mb: float = 2048, logins: tuple[str, ...] = ()) -> Mount:
    """The route that serves the API at /api on the page's server (give it to the server's routes, first).
    cookie_user(server app, cookies): the login that the page's cookie stands for. logins: the `--auth` names."""
    api = create(Settings(workspace, jobs, needs_login, cookie_user,
                          [Path(root).expanduser().resolve() for root in data_roots], max_upload_mb, tuple(logins)))

    async def keeping_server(scope, receive, send):
        # The API's own app takes the scope's "app"; the server's, which knows the login cookies, is kept beside it.
        await api({**scope, SERVER: scope.get("app")}, receive, send)
    return Mount(PREFIX, app=keeping_server)

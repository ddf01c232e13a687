"""/api/runs: the caller's runs (an admin's: everyone's), one run's status and evaluation, a file of its folder,
starting a recipe, stopping and deleting a run. Another user's run answers 404 as a missing one does
(ownership.find_run)."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse

from studio import audit
from studio import recipe as recipes
from studio.api.auth import Settings, address, caller, settings
from studio.api.errors import ApiError
from studio.errors import UserError
from studio.run import ownership
from studio.run.deletion import DeleteError, delete_run as delete_folder
from studio.run.ownership import Viewer
from studio.run.summary import headline, runs as summaries
from studio.runfolder import ACTIVE, EVAL, STATUS, read_json
from studio.workspace import RunNotFound

router = APIRouter()
MAX_RECIPE_BYTES = 1024 * 1024
HIDDEN = ("pid", "pid_started")  # the worker's process: nothing a caller needs


def entry(run: dict) -> dict:
    """A run as the list gives it."""
    metric = headline(run)
    name = " · ".join(str(p) for p in (Path(run.get("data_name") or "").stem, Path(str(run.get("model") or "")).name,
                                       run.get("strategy")) if p)
    return {"id": run["id"], "name": name, "task": run.get("task"), "model": run.get("model"),
            "strategy": run.get("strategy"), "status": run.get("status"), "owner": run.get("owner"),
            "metric": {"name": metric["name"], "value": metric["value"]} if metric else None}


def _run_dir(studio: Settings, who: Viewer, run_id: str) -> Path:
    try:
        return ownership.find_run(studio.workspace, who, run_id)
    except RunNotFound as exc:
        raise ApiError(404, f"{exc} GET /api/runs lists yours.") from None


@router.get("/runs", summary="The runs you may see, oldest first")
def list_runs(who: Viewer = Depends(caller), studio: Settings = Depends(settings)) -> dict:
    return {"runs": [entry(run) for run in summaries(studio.workspace) if ownership.visible(run, who)]}


@router.get("/runs/{run_id}", summary="A run's status and evaluation")
def get_run(run_id: str, who: Viewer = Depends(caller), studio: Settings = Depends(settings)) -> dict:
    run_dir = _run_dir(studio, who, run_id)
    status = {k: v for k, v in (read_json(run_dir / STATUS) or {}).items() if k not in HIDDEN}
    return {**entry({**status, "id": run_dir.name}), "details": status, "eval": read_json(run_dir / EVAL)}


@router.get("/runs/{run_id}/files/{path:path}", summary="A file of a run's folder")
def get_file(run_id: str, path: str, request: Request, who: Viewer = Depends(caller),
             studio: Settings = Depends(settings)) -> FileResponse:
    run_dir = _run_dir(studio, who, run_id)
    target = (run_dir / path).resolve()
    if run_dir not in target.parents:  # '..' or a link out of the folder: nothing outside it is served
        raise ApiError(404, f"{path[:200]!r} is not a file of run {run_id}: give a path inside its folder, such "
                            "as eval.json or model/README.md.")
    if not target.is_file():
        raise ApiError(404, f"Run {run_id} has no file {path[:200]!r}.")
    audit.record(studio.workspace.root, "download", who.name, address(request), run=run_id, file=path[:300])
    return FileResponse(target, filename=target.name)


@router.post("/runs", status_code=201, summary="Start a run from a recipe (JSON or YAML)")
async def start_run(request: Request, who: Viewer = Depends(caller), studio: Settings = Depends(settings)) -> dict:
    body = await _body(request)
    try:
        kind = request.headers.get("content-type", "")
        recipe = recipes.from_dict(json.loads(body)) if "json" in kind else recipes.from_yaml(body.decode("utf-8"))
        _in_uploads(recipe, studio.workspace.user_uploads_dir(who.owner))
        # Off the server's event loop: the check reads the user's folders and may read a whole table (path_column);
        # starting resolves the task and checks the backend (a cluster answering).
        job = await asyncio.to_thread(_checked_start, studio, recipe, who)
    except (ValueError, UnicodeDecodeError) as exc:  # UserError and RecipeError are ValueErrors; JSON's too
        words = str(exc) if isinstance(exc, UserError) else f"The recipe is not valid JSON or YAML: {exc}"
        raise ApiError(422, words) from None
    audit.record(studio.workspace.root, "run started", who.name, address(request), run=job.run_id)
    return {"id": job.run_id, "status": job.status.get("status", "queued")}


def _checked_start(studio: Settings, recipe: recipes.Recipe, who: Viewer):
    ownership.check_recipe(recipe, who, studio.workspace, studio.data_roots)
    return studio.jobs.start(recipe, (), who.owner)


@router.post("/runs/{run_id}/stop", status_code=202, summary="Stop a queued or running run")
def stop_run(run_id: str, request: Request, who: Viewer = Depends(caller),
             studio: Settings = Depends(settings)) -> dict:
    run_dir = _run_dir(studio, who, run_id)
    state = (read_json(run_dir / STATUS) or {}).get("status")
    if state not in ACTIVE:
        raise ApiError(409, f"Run {run_id} is {state}: there is nothing to stop.")
    studio.jobs.cancel(run_id)
    audit.record(studio.workspace.root, "run stopped", who.name, address(request), run=run_id)
    return {"id": run_id, "status": "stopping"}


@router.delete("/runs/{run_id}", status_code=204, summary="Delete an ended run and its folder, for good")
def delete_run(run_id: str, request: Request, who: Viewer = Depends(caller),
               studio: Settings = Depends(settings)) -> Response:
    try:
        delete_folder(studio.workspace, who, run_id, studio.jobs)
    except RunNotFound as exc:
        raise ApiError(404, f"{exc} GET /api/runs lists yours.") from None
    except DeleteError as exc:  # still queued or running
        raise ApiError(409, str(exc)) from None
    audit.record(studio.workspace.root, "run deleted", who.name, address(request), run=run_id)
    return Response(status_code=204)


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_RECIPE_BYTES:
            raise ApiError(413, "A recipe is at most 1 MB: post the recipe, and upload data with POST /api/uploads.")
        chunks.append(chunk)
    return b"".join(chunks)


def _in_uploads(recipe: recipes.Recipe, uploads: Path) -> None:
    """Relative data paths of a posted recipe are the caller's uploads (what POST /api/uploads answered)."""
    for key in ("path", "validation_path", "corrections"):
        value = getattr(recipe.data, key)
        if value and not Path(value).expanduser().is_absolute():
            setattr(recipe.data, key, str(uploads / value))

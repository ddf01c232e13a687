"""POST /api/uploads: a data file (a form's `file` field: `curl -F file=@data.csv`) into the caller's own uploads
folder, under a new id. Its answer's `path` is what a posted recipe's data.path takes. Larger than the caller's
limit (`studio users limit NAME --max-upload-mb N`; the studio's --max-upload-mb without accounts) is refused with
the number, before more than the limit is read."""
from __future__ import annotations

import asyncio
import re
import secrets
import shutil
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import UploadFile

from studio import audit
from studio.api.auth import Settings, address, caller, settings
from studio.api.errors import ApiError
from studio.run.ownership import Viewer

router = APIRouter()
FORM_SLACK = 64 * 1024  # a form's own bytes around the file: boundaries, headers


@router.post("/uploads", status_code=201, summary="Upload a data file (.csv, .jsonl, .zip, …)")
async def upload(request: Request, who: Viewer = Depends(caller), studio: Settings = Depends(settings)) -> dict:
    limit_mb = who.limits.max_upload_mb if who.accounts else studio.max_upload_mb
    limit = int(limit_mb * 2**20)
    too_large = ApiError(413, f"The file is larger than your upload limit of {limit_mb:g} MB.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_SLACK:
        raise too_large
    counted = Request(request.scope, _counting(request.receive, limit + FORM_SLACK, too_large))
    form = await counted.form(max_files=1, max_fields=4)
    try:
        sent = form.get("file")
        if not isinstance(sent, UploadFile):
            raise ApiError(422, "Send the data file as the form field 'file' (curl -F file=@data.csv …).")
        upload_id = secrets.token_hex(6)
        name = _safe_name(sent.filename or "")
        target = studio.workspace.user_uploads_dir(who.owner) / upload_id / name
        size = await asyncio.to_thread(_save, sent, target, limit)
        if size is None:
            raise too_large
    finally:
        await form.close()
    audit.record(studio.workspace.root, "upload", who.name, address(request), upload=upload_id, size=size)
    return {"id": upload_id, "name": name, "size": size, "path": f"{upload_id}/{name}"}


def _counting(receive, limit: int, error: ApiError):
    """A receive() that stops a body once it passes `limit` bytes (a body sent without a length, too)."""
    seen = [0]

    async def counted():
        message = await receive()
        seen[0] += len(message.get("body", b""))
        if seen[0] > limit:
            raise error
        return message
    return counted


def _safe_name(filename: str) -> str:
    """The file's own name (no folders), in letters, digits and . _ -, never hidden; its suffix kept."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename.replace("\\", "/")).name).strip(".-")[-100:]
    return name or "data"


def _save(sent: UploadFile, target: Path, limit: int) -> int | None:
    """Copies the upload to target; None (and nothing kept) if it is over the limit."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sent.file.seek(0)
    with open(target, "wb") as out:
        shutil.copyfileobj(sent.file, out, 1024 * 1024)
    size = target.stat().st_size
    if size > limit:
        shutil.rmtree(target.parent, ignore_errors=True)
        return None
    return size

"""Nothing of the workspace is served by its path: an ASGI middleware in front of gradio's file route.

gradio serves a file (GET /gradio_api/file=PATH) when PATH is in launch's allowed_paths or in gradio's own upload
folder. The studio's handlers hand the page files of the workspace (a run's export, its example images), so the
workspace stays in allowed_paths: gradio copies a file a handler returns into its upload folder, under a name
made from a hash of the file's content with a secret of this server, and the page fetches that copy. But
allowed_paths also opens the workspace itself to anyone logged in who guesses a path (run ids are dates and model
names). This wall refuses every path inside the workspace other than gradio's upload folder, whoever asks: a
user receives a run's file only from a handler, after the page's ownership check (ui/viewer.py, run/ownership.py).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

FILE_ROUTE = re.compile(r"(?:^|/)gradio_api/file[=/](.+)$")  # gradio's file route, and its older /file/… form


class FileWall:
    def __init__(self, app, root: str | Path, served: str | Path):
        """root: the workspace; served: gradio's upload folder (GRADIO_TEMP_DIR), the one part of it served."""
        self.app = app
        self.root, self.served = Path(root).resolve(), Path(served).resolve()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            found = FILE_ROUTE.search(scope["path"])
            if found and self.refused(found.group(1)):
                return await _refuse(send)
        return await self.app(scope, receive, send)

    def refused(self, asked: str) -> bool:
        """Whether a path asked for lies in the workspace outside gradio's folder (as written, or once its links
        and '..' are followed)."""
        raw = Path(os.path.abspath(os.path.expanduser(asked)))  # the server has decoded it, as for gradio
        for path in {raw, raw.resolve()}:
            if _inside(path, self.root) and not _inside(path, self.served):
                return True
        return False


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


async def _refuse(send) -> None:
    body = json.dumps({"detail": "This file is not served: the page hands out the files of your runs itself."})
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body.encode()})

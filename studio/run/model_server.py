"""Model servers started from the UI: `studio serve-model RUN` in a process of its own per run (a long generation
never holds up the page, and one served run never waits for another), on 127.0.0.1 with a key made for it. The key
lives in the workspace with mode 0600 and is passed by file (a key on a command line shows in `ps`)."""
from __future__ import annotations

import atexit
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from studio.run.worker import free_port
from studio.workspace import Workspace

HOST = "127.0.0.1"
READY_TIMEOUT_S = 180.0  # loading a chat model on a busy CPU


@dataclass
class Served:
    url: str  # the OpenAI-style base URL, ending in /v1
    key: str
    process: subprocess.Popen
    log: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def state(self) -> str:
        """"ready" once every model of the server has loaded, "loading" before (or while the server starts), or
        why a model could not be loaded."""
        request = urllib.request.Request(f"{self.url}/models", headers={"Authorization": f"Bearer {self.key}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                models = json.load(response)["data"]
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return "loading"
        failed = [m for m in models if m.get("status") == "failed"]
        if failed:
            return f"{failed[0]['id']} could not be loaded: {failed[0].get('error', '')}"
        return "ready" if models and all(m.get("status") == "ready" for m in models) else "loading"

    def failure(self) -> str:
        """The server's last words, when it stopped on its own."""
        lines = self.log.read_text(encoding="utf-8", errors="replace").strip().splitlines() if self.log.exists() else []
        return lines[-1].removeprefix("error: ") if lines else "the model server stopped without saying why"


class ModelServers:
    """The UI's model servers, one per run, stopped with the UI."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.served: dict[str, Served] = {}
        self.lock = threading.Lock()
        atexit.register(self.stop_all)

    def get(self, run_dir: Path) -> Served | None:
        with self.lock:
            found = self.served.get(str(run_dir))
        return found if found is not None and found.alive else None

    def start(self, run_dir: Path) -> Served:
        """A server for the run (the running one if there is one); returns at once: wait_ready() waits for its model."""
        running = self.get(run_dir)
        if running is not None:
            return running
        folder = self.workspace.serving_dir(Path(run_dir).name)
        folder.mkdir(parents=True, exist_ok=True)
        key, key_file = f"sk-studio-{secrets.token_urlsafe(24)}", folder / "api-key"
        key_file.unlink(missing_ok=True)
        with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(key)
        port, log = free_port(), folder / "server.log"
        command = [sys.executable, "-m", "studio.cli", "--workspace", str(self.workspace.root), "serve-model",
                   str(run_dir), "--host", HOST, "--port", str(port), "--api-key-file", str(key_file),
                   "--stop-with", str(os.getpid())]
        with open(log, "w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=self.workspace.root, start_new_session=True)
        served = Served(f"http://{HOST}:{port}/v1", key, process, log)
        with self.lock:
            self.served[str(run_dir)] = served
        return served

    def wait_ready(self, served: Served, timeout: float = READY_TIMEOUT_S) -> str | None:
        """None once the server answers with its model loaded; else why not, in words."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = served.state()
            if state != "loading":
                return None if state == "ready" else state
            if not served.alive:
                return served.failure()
            time.sleep(0.5)
        return f"the model server did not answer within {timeout:.0f} s; its log: {served.log}"

    def stop(self, run_dir: Path) -> None:
        with self.lock:
            served = self.served.pop(str(run_dir), None)
        if served is not None and served.alive:
            served.process.terminate()
            try:
                served.process.wait(10)
            except subprocess.TimeoutExpired:
                served.process.kill()

    def stop_all(self) -> None:
        for run_dir in list(self.served):
            self.stop(Path(run_dir))

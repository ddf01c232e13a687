"""The run's event stream: every event goes to events.jsonl, to an in-memory list, and to a live queue.

status.json holds the latest status and is rewritten atomically, so a reader never sees half a file.
"""
from __future__ import annotations

import json
import os
import queue
import threading
import time
from pathlib import Path

STATUS_FILE = "status.json"
EVENTS_FILE = "events.jsonl"


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_events(run_dir: Path) -> list[dict]:
    events = []
    try:
        lines = (run_dir / EVENTS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return events
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a crash
    return events


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def mark_interrupted(run_dirs: list[Path]) -> list[str]:
    """Runs left 'running' or 'queued' by a studio process that no longer exists (killed, crashed, machine
    restarted) become 'interrupted', so they can be resumed instead of showing 'running' forever."""
    marked = []
    for run_dir in run_dirs:
        status = read_json(run_dir / STATUS_FILE) or {}
        if status.get("status") in ("running", "queued") and not _alive(status.get("pid")):
            status.update(status="interrupted", updated=time.time(),
                          message="The studio stopped while this run was in progress. Resume it to continue "
                                  "from its last finished epoch.")
            write_json(run_dir / STATUS_FILE, status)
            marked.append(run_dir.name)
    return marked


class EventLog:
    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.events: list[dict] = []
        self.queue: queue.Queue[dict] = queue.Queue()
        self._lock = threading.Lock()
        self._file = open(run_dir / EVENTS_FILE, "a", encoding="utf-8")
        self._status: dict = read_json(run_dir / STATUS_FILE) or {}

    def emit(self, kind: str, **fields) -> dict:
        event = {"type": kind, "time": round(time.time(), 3), **fields}
        with self._lock:
            self.events.append(event)
            if not self._file.closed:
                self._file.write(json.dumps(event, default=str) + "\n")
                self._file.flush()
        self.queue.put(event)
        return event

    def set_status(self, status: str, **fields) -> None:
        self._status.update(fields, status=status, updated=time.time())
        write_json(self.run_dir / STATUS_FILE, self._status)
        self.emit("status", status=status, **{k: v for k, v in fields.items() if k in ("error", "message")})

    @property
    def status(self) -> dict:
        return dict(self._status)

    def close(self) -> None:
        with self._lock:
            self._file.close()

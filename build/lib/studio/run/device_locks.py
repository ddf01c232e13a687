"""One run at a time per device, across every studio process on this machine, in the order the runs were started.

Each run takes a numbered ticket when it is started (before its worker process exists, so start order is kept);
its worker waits until its ticket is the oldest live one and then takes an exclusive lock on the devices it needs
(fcntl locks: the kernel releases them when a process dies, so a killed worker never jams the queue). Tickets of
workers that died, or that never started within a minute, are cleared by whoever looks.

The folder is STUDIO_LOCK_DIR, or one per user under the system's temporary folder: it holds lock files and
tickets only, no data.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from studio.runfolder import alive, identity, write_json

STARTING_GRACE_S = 60  # a ticket whose worker has not started after this long is stale
POLL_S = 0.3


def lock_dir() -> Path:
    root = os.environ.get("STUDIO_LOCK_DIR") or Path(tempfile.gettempdir()) / f"studio-locks-{os.getuid()}"
    path = Path(root)
    (path / "queue").mkdir(parents=True, exist_ok=True)
    return path


def take_ticket(run_id: str) -> Path:
    """Called by whoever starts a run, in start order: the run's place in the queue."""
    ticket = lock_dir() / "queue" / f"{time.time_ns():020d}-{run_id}"
    ticket.write_text(json.dumps({"run": run_id, "taken": time.time()}))
    return ticket


def find_ticket(run_id: str) -> Path | None:
    return next((p for p in sorted((lock_dir() / "queue").iterdir()) if p.name.endswith(f"-{run_id}")), None)


def _claim(ticket: Path) -> None:
    """The worker writes its identity into its ticket, so others can tell when it dies."""
    write_json(ticket, {**json.loads(ticket.read_text()), **identity()})


def _live(ticket: Path) -> bool:
    try:
        info = json.loads(ticket.read_text())
    except (OSError, ValueError):
        return False
    if "pid" in info:
        return alive(info["pid"], info.get("pid_started"))
    return time.time() - info.get("taken", 0) < STARTING_GRACE_S


def waiting(clear: bool = True) -> list[Path]:
    """Live tickets, oldest first (dead ones are removed on the way)."""
    out = []
    for ticket in sorted((lock_dir() / "queue").iterdir()):
        if ticket.name.startswith("."):  # a ticket being rewritten (runfolder.atomic)
            continue
        if _live(ticket):
            out.append(ticket)
        elif clear:
            ticket.unlink(missing_ok=True)
    return out


class DeviceLock:
    """Holds the locks of the devices a run trains on, until released or the process ends."""

    def __init__(self, names: list[str]):
        self.names, self.files = names, []

    def try_take(self) -> bool:
        for name in self.names:
            handle = open(lock_dir() / f"device-{name}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                self.release()
                return False
            self.files.append(handle)
        return True

    def release(self) -> None:
        for handle in self.files:
            handle.close()  # closing drops the lock
        self.files = []


def device_names(kind: str, count: int, index: int) -> list[str]:
    """The lock names of `count` devices of this kind starting at `index` (CPU: one lock for the whole CPU)."""
    if kind != "cuda":
        return [kind]
    return [f"cuda{i}" for i in range(index, index + count)]


def wait_for_devices(run_id: str, kind: str, count: int, available: int, cancel: threading.Event,
                     on_position=None) -> tuple[DeviceLock, int] | None:
    """Waits in the queue until this run's ticket is the oldest and `count` devices are free; returns the lock and
    the first device's index (CUDA runs take a contiguous range), or None if cancelled while waiting.
    on_position(n): called when the number of runs ahead of this one (training or waiting) changes."""
    ticket = find_ticket(run_id) or take_ticket(run_id)
    _claim(ticket)
    last = None
    try:
        while not cancel.is_set():
            queue = waiting()
            ahead = next((i for i, t in enumerate(queue) if t.name == ticket.name), 0)
            if ahead == 0:
                starts = range(0, max(1, available - count + 1)) if kind == "cuda" else [0]
                for start in starts:
                    lock = DeviceLock(device_names(kind, count, start))
                    if lock.try_take():
                        return lock, start
            if ahead + 1 != last and on_position is not None:  # + 1: the run holding the device
                on_position(ahead + 1)
            last = ahead + 1
            time.sleep(POLL_S)
        return None
    finally:
        ticket.unlink(missing_ok=True)

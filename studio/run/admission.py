"""Admission: which run trains on which of this machine's devices, and when; the one place that says what a
waiting run waits for.

Runs queue per device kind (the CPU, the GPUs), across every studio process on this machine, in the order they were
started: a feature-extraction run on the CPU does not wait behind a fine-tune on a GPU. Each run takes a numbered
ticket when it is started (before its worker process exists, so start order is kept); its worker writes into the
ticket who it is and which device it needs, waits until no earlier ticket needs that device, then takes an
exclusive lock on the device (fcntl locks: the kernel releases them when a process dies, so a killed worker never
jams the queue) and leaves a note of who holds it. Tickets of workers that died, or that never started within a
minute, are cleared by whoever looks.

A run for a cluster (studio/run/backends) queues the same way, under the cluster's name instead of a device kind:
its placer waits for its turn and for the cluster to have the CPUs and GPUs it asks, then submits it (Ray starts
whatever it is given at once, so the waiting is the studio's).

The folder is STUDIO_LOCK_DIR, or one per user under the system's temporary folder: it holds lock files, tickets and
holder notes only, no data.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from studio.runfolder import EVENTS, EventReader, alive, identity, read_json, write_json

STARTING_GRACE_S = 60  # a ticket whose worker has not started after this long is stale
POLL_S = 0.3
SAY_EVERY_S = 10  # how often a waiting run's words are refreshed while nothing but the time left changes
PLACED_BY_CLUSTER = "STUDIO_PLACED_BY_CLUSTER"  # set in a worker's environment when a cluster placed it


def placed_by_cluster() -> bool:
    """True in a worker that a cluster started on the devices it reserved for it (no machine queue then)."""
    return bool(os.environ.get(PLACED_BY_CLUSTER))


def lock_dir() -> Path:
    root = os.environ.get("STUDIO_LOCK_DIR") or Path(tempfile.gettempdir()) / f"studio-locks-{os.getuid()}"
    path = Path(root)
    (path / "queue").mkdir(parents=True, exist_ok=True)
    return path


def take_ticket(run_dir: Path) -> Path:
    """Called by whoever starts a run, in start order: the run's place in the queue."""
    run_dir = Path(run_dir)
    ticket = lock_dir() / "queue" / f"{time.time_ns():020d}-{run_dir.name}"
    ticket.write_text(json.dumps({"run": run_dir.name, "run_dir": str(run_dir), "taken": time.time()}))
    return ticket


def find_ticket(run_id: str) -> Path | None:
    return next((p for p in sorted((lock_dir() / "queue").iterdir()) if p.name.endswith(f"-{run_id}")), None)


def _read_live(ticket: Path) -> dict | None:
    """A ticket's contents, or None when its worker died (or never started)."""
    info = read_json(ticket)
    if info is None:
        return None
    if "pid" in info:
        return info if alive(info["pid"], info.get("pid_started")) else None
    return info if time.time() - info.get("taken", 0) < STARTING_GRACE_S else None


def waiting(clear: bool = True) -> list[tuple[Path, dict]]:
    """Live tickets with their contents, oldest first (dead ones are removed on the way)."""
    out = []
    for ticket in sorted((lock_dir() / "queue").iterdir()):
        if ticket.name.startswith("."):  # a ticket being rewritten (runfolder.atomic)
            continue
        info = _read_live(ticket)
        if info is not None:
            out.append((ticket, info))
        elif clear:
            ticket.unlink(missing_ok=True)
    return out


class DeviceLock:
    """Holds the locks of the devices a run trains on, until released or the process ends; while held, a note
    beside each lock says which run holds it (for the words of the runs waiting for it)."""

    def __init__(self, names: list[str]):
        self.names, self.files = names, []

    def try_take(self, holder: dict) -> bool:
        for name in self.names:
            handle = open(lock_dir() / f"device-{name}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                self.release()
                return False
            self.files.append(handle)
        for name in self.names:
            write_json(_holder_note(name), {**holder, **identity()})
        return True

    def release(self) -> None:
        for name in self.names[:len(self.files)]:
            _holder_note(name).unlink(missing_ok=True)
        for handle in self.files:
            handle.close()  # closing drops the lock
        self.files = []


def _holder_note(name: str) -> Path:
    return lock_dir() / f"device-{name}.holder.json"


def device_names(kind: str, count: int, index: int) -> list[str]:
    """The lock names of `count` devices of this kind starting at `index` (CPU: one lock for the whole CPU)."""
    if kind != "cuda":
        return [kind]
    return [f"cuda{i}" for i in range(index, index + count)]


class Place:
    """What a waiting run waits for, as the run's status says it: the runs ahead of it on its device (from its own
    workspace and from others), and about how long the one training now has left."""

    def __init__(self, kind: str, workspace: str):
        self.kind, self.workspace = kind, workspace
        self._progress: dict[str, EventReader] = {}

    def of(self, ahead: list[dict]) -> dict:
        holders = [note for note in map(read_json, sorted(lock_dir().glob(f"device-{self.kind}*.holder.json")))
                   if note and alive(note.get("pid"), note.get("pid_started"))]
        runs = {info.get("run"): info for info in [*holders, *ahead]}  # a run holding two GPUs counts once
        here = sum(1 for info in runs.values() if info.get("workspace") == self.workspace)
        left = [self._left_s(note) for note in holders]
        return {"position": len(runs), "ahead_here": here, "ahead_elsewhere": len(runs) - here, "device": self.kind,
                "training_left_s": round(max(left)) if left and None not in left else None}

    def _left_s(self, holder: dict) -> float | None:
        """The holder's own estimate of its time left (its latest progress line), None before it has one."""
        run_dir = holder.get("run_dir")
        if not run_dir:
            return None
        reader = self._progress.setdefault(run_dir, EventReader(Path(run_dir) / EVENTS))
        return next((e["eta"] for e in reversed(reader.read()) if "eta" in e), None)


def wait_for_devices(run_dir: Path, kind: str, count: int, available: int, cancel: threading.Event,
                     on_wait=None, workspace: Path | None = None) -> tuple[DeviceLock, int] | None:
    """Waits until no earlier run needs this kind of device and `count` of them are free; returns the lock and the
    first device's index (CUDA runs take a contiguous range), or None if cancelled while waiting.
    on_wait(place): called with Place.of's dict when what the run waits for changes (and every SAY_EVERY_S).
    workspace: the run's workspace, when run_dir is not <workspace>/<output_dir>/<run-id> (a Data tab's check)."""
    def take(me: dict) -> tuple[DeviceLock, int] | None:
        starts = range(0, max(1, available - count + 1)) if kind == "cuda" else [0]
        for start in starts:
            lock = DeviceLock(device_names(kind, count, start))
            if lock.try_take(me):
                return lock, start
        return None
    return wait_turn(run_dir, kind, take, cancel, on_wait, workspace)


def wait_turn(run_dir: Path, kind: str, take: Callable[[dict], object], cancel: threading.Event,
              on_wait=None, workspace: Path | None = None):
    """Waits until no earlier run queues for `kind` (a device kind, or a cluster's name) and take(me) gives
    something other than None (a lock, a submitted job), and returns it; None if cancelled while waiting. `me`:
    what the run's ticket says of it. The ticket is held until take succeeds, so later runs keep waiting."""
    run_dir = Path(run_dir)
    ticket = find_ticket(run_dir.name) or take_ticket(run_dir)
    me = {**(read_json(ticket) or {}), "run": run_dir.name, "run_dir": str(run_dir), "device": kind,
          "workspace": str(workspace or run_dir.parent.parent)}  # <workspace>/<output_dir>/<run-id>
    write_json(ticket, {**me, **identity()})  # others can now tell which device it needs, and when it dies
    place, said, said_at = Place(kind, me["workspace"]), None, 0.0
    try:
        while not cancel.is_set():
            # An earlier ticket whose worker has not said its device yet may need this one: it keeps its turn.
            ahead = [info for t, info in waiting() if t.name < ticket.name and info.get("device", kind) == kind]
            if not ahead:
                got = take(me)
                if got is not None:
                    return got
            now = place.of(ahead)
            if on_wait is not None and (now != said or time.monotonic() - said_at > SAY_EVERY_S):
                on_wait(now)
                said, said_at = now, time.monotonic()
            time.sleep(POLL_S)
        return None
    finally:
        ticket.unlink(missing_ok=True)

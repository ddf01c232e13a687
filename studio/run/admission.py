"""Admission: which run trains on which of this machine's devices, and when; the one place that says what a
waiting run waits for.

Runs queue per device kind (the CPU, the GPUs), across every studio process on this machine, in the order they were
started: a feature-extraction run on the CPU does not wait behind a fine-tune on a GPU. Each run takes a numbered
ticket when it is started (before its worker process exists, so start order is kept); its worker writes into the
ticket who it is and which device it needs, waits until no earlier ticket needs that device, then takes an
exclusive lock on the device (fcntl locks: the kernel releases them when a process dies, so a killed worker never
jams the queue) and leaves a note of who holds it. Tickets of workers that died, or that never started within a
minute, are cleared by whoever looks.

A run with an owner (an account) also waits while its owner has as many runs training as their limit allows
(`studio users limit NAME --max-runs N`): OwnerLimit below. Such a run holds up no one: the runs queued behind it
pass it until its owner has room again.

A run for a cluster (studio/run/backends) queues the same way, under the cluster's name instead of a device kind:
its placer waits for its turn and for the cluster to have the CPUs and GPUs it asks, then submits it (Ray starts
whatever it is given at once, so the waiting is the studio's).

The folder is STUDIO_LOCK_DIR, or one per user under the system's temporary folder: it holds lock files, tickets and
holder notes only, no data.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from studio.runfolder import ACTIVE, EVENTS, STATUS, EventReader, alive, identity, read_json, write_json
from studio.users import AccountError, Limits, Users

STARTING_GRACE_S = 60  # a ticket whose worker has not started after this long is stale
POLL_S = 0.3
SAY_EVERY_S = 10  # how often a waiting run's words are refreshed while nothing but the time left changes
PLACED_BY_CLUSTER = "STUDIO_PLACED_BY_CLUSTER"  # set in a worker's environment when a cluster placed it


def cluster_wait(left: dict, ask: dict) -> dict:
    """What a run queued for a cluster waits for, as its status says it: the CPUs and GPUs the cluster has free
    ("cluster_free") and those the run asks ("cluster_asks"), and the same in words ("message")."""
    left = {key: max(left.get(key, 0.0), 0.0) for key in ("CPU", "GPU")}
    return {"cluster_free": left, "cluster_asks": ask, "message": (
        f"Waiting for the cluster: {left['CPU']:g} CPUs and {left['GPU']:g} GPUs free; this run asks for "
        f"{ask['CPU']:g} CPUs and {ask['GPU']:g} GPUs.")}


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
    owner = OwnerLimit(run_dir, me["workspace"])
    try:
        while not cancel.is_set():
            over = owner.over()
            if bool(over) != me.get("over_owner_limit", False):  # said in the ticket: later runs pass this one
                me["over_owner_limit"] = bool(over)
                write_json(ticket, {**me, **identity()})
            # An earlier ticket whose worker has not said its device yet may need this one: it keeps its turn.
            ahead = [info for t, info in waiting() if t.name < ticket.name and info.get("device", kind) == kind
                     and not info.get("over_owner_limit")]
            if not ahead and not over and owner.claim():
                got = take(me)
                if got is not None:
                    return got
                owner.unclaim()
            now = {**place.of(ahead), **owner.status(over)}
            if on_wait is not None and (now != said or time.monotonic() - said_at > SAY_EVERY_S):
                on_wait(now)
                said, said_at = now, time.monotonic()
            time.sleep(POLL_S)
        return None
    finally:
        ticket.unlink(missing_ok=True)


class OwnerLimit:
    """At most `max_runs` runs of one owner past the queue at once, on any backend. A run that passes leaves a
    claim (its process and run folder) in the owner's folder of the lock folder; a claim counts while its process
    lives and its run is queued or running, so a finished, killed or interrupted run frees its place by itself.
    Counting and claiming happen under the owner's lock: two runs of one owner on two devices cannot both take the
    last place. A run without an owner (a studio without accounts, a Data tab check) has no limit."""

    def __init__(self, run_dir: Path, workspace: str):
        self.run_dir, self.workspace = Path(run_dir), workspace
        self.owner = (read_json(self.run_dir / STATUS) or {}).get("owner")
        key = hashlib.sha256(workspace.encode("utf-8")).hexdigest()[:12]  # one bob per workspace
        self.folder = lock_dir() / "owners" / f"{key}-{self.owner}"

    def max_runs(self) -> int:
        try:
            user = Users(self.workspace).get(self.owner)
        except AccountError:  # users.json damaged meanwhile: the default limit, not no limit
            user = None
        return (user.limits if user else Limits()).max_runs

    def _others(self) -> int:
        """The owner's other runs past the queue (dead claims are removed on the way)."""
        count = 0
        for claim in self.folder.glob("*.json"):
            if claim.name.startswith(".") or claim.stem == self.run_dir.name:
                continue
            info = read_json(claim) or {}
            status = (read_json(Path(info.get("run_dir", "")) / STATUS) or {}).get("status")
            if info and alive(info.get("pid"), info.get("pid_started")) and status in ACTIVE:
                count += 1
            elif info:
                claim.unlink(missing_ok=True)
        return count

    def over(self) -> dict | None:
        """{"owner", "running", "max_runs"} while the owner has no room for this run; None when it may go."""
        if not self.owner:
            return None
        running, most = self._others(), self.max_runs()
        return {"owner": self.owner, "running": running, "max_runs": most} if running >= most else None

    def claim(self) -> bool:
        """Takes a place for this run if the owner has one free (True; always for a run without an owner)."""
        if not self.owner:
            return True
        with self._locked():
            if self._others() >= self.max_runs():
                return False
            write_json(self.folder / f"{self.run_dir.name}.json", {"run_dir": str(self.run_dir), **identity()})
            return True

    def unclaim(self) -> None:
        if self.owner:
            (self.folder / f"{self.run_dir.name}.json").unlink(missing_ok=True)

    def status(self, over: dict | None) -> dict:
        """What the run's status says of its owner's limit: {"owner_limit": over, "message": words} (both None
        once it has room, so words said earlier do not linger); nothing for a run without an owner."""
        if not self.owner:
            return {}
        if not over:
            return {"owner_limit": None, "message": None}
        runs = "1 run" if over["running"] == 1 else f"{over['running']} runs"
        return {"owner_limit": over, "message": f"Waiting: {over['owner']} has {runs} training, the most allowed "
                                                f"at once ({over['max_runs']}); this run starts when one of them ends."}

    @contextlib.contextmanager
    def _locked(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            yield

"""The audit trail: <workspace>/audit.jsonl, one JSON line per thing someone did (a login, ok or failed; a change to
an account; later: runs started, stopped, deleted, exported, downloaded), only ever appended.

Each line holds the time (UTC, ISO 8601), the user, the address it came from, what happened, and details. Callers
never pass a secret: a password or token never reaches this file (the keys that would hold one are refused)."""
from __future__ import annotations

import fcntl
import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from studio.errors import UserError

FILE = "audit.jsonl"
SECRET_KEYS = re.compile(r"password|secret|^token$", re.IGNORECASE)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class AuditError(UserError):
    """A filter the trail cannot apply; the message says why."""


def path(root: str | Path) -> Path:
    return Path(root).expanduser().resolve() / FILE


def record(root: str | Path, what: str, user: str | None = None, address: str | None = None, **details) -> dict:
    """Appends one line. One write of a whole line to a file opened for appending, under a lock: lines of several
    processes never interleave."""
    secret = [key for key in details if SECRET_KEYS.search(key)]
    if secret:
        raise ValueError(f"the audit trail keeps no secrets: {secret} given")  # a programming error, not a user's
    entry = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
             "user": user, "address": address, "what": what, **({"details": details} if details else {})}
    line = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    target = path(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.write(descriptor, line)
    finally:
        os.close(descriptor)  # closing releases the lock
    return entry


def parse_since(text: str) -> float:
    """'30m', '1h', '2d', '90s', '1w' → seconds. AuditError in words for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text or "")
    if not match:
        raise AuditError(f"--since {text!r} is not a span of time: write a number and a unit, like 30m, 1h, 2d "
                         "(s, m, h, d or w).")
    return float(match[1]) * UNITS[match[2]]


def read(root: str | Path, user: str | None = None, since: str | None = None,
         now: float | None = None) -> list[dict]:
    """The lines, oldest first: only `user`'s when given, only those of the last `since` ('1h') when given. A line
    cut short (a crash mid-write) is left out."""
    start = (now if now is not None else time.time()) - parse_since(since) if since else None
    try:
        text = path(root).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            when = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if (user is None or entry.get("user") == user) and (start is None or when >= start):
            out.append(entry)
    return out

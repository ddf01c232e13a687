"""Guessing passwords, slowed down: more than LIMIT failed logins for one name, or from one address, within WINDOW
seconds, and further attempts for that name (or from that address) are refused for LOCKOUT seconds, right or
wrong. Counting by name stops a slow spread of addresses guessing one password; counting by address stops one
machine trying many names. An attempt counts as a failure from the moment it is heard (begin) until it succeeds
(take_back): attempts sent all at once cannot all pass before the first of them has failed.

Pure bookkeeping in memory (a restarted studio forgets it), with the clock injectable for tests."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

LIMIT = 10
WINDOW = 300.0
LOCKOUT = 300.0
MAX_KEYS = 100_000  # names and addresses remembered at most: a spray of random names cannot grow it without end


class LoginGuard:
    def __init__(self, limit: int = LIMIT, window: float = WINDOW, lockout: float = LOCKOUT,
                 clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.lockout, self.clock = limit, window, lockout, clock
        self._failures: dict[tuple[str, str], deque] = {}
        self._locked_until: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(name: str | None, address: str | None) -> list[tuple[str, str]]:
        return [key for key in (("name", name), ("address", address)) if key[1]]

    def wait(self, name: str | None, address: str | None) -> float:
        """Seconds until a login for this name from this address is heard again; 0 when it may be tried now."""
        now = self.clock()
        with self._lock:
            return self._left(self._keys(name, address), now)

    def _left(self, keys: list[tuple[str, str]], now: float) -> float:
        return max([self._locked_until.get(key, 0.0) - now for key in keys] + [0.0])

    def begin(self, name: str | None, address: str | None) -> float:
        """Seconds to wait when this attempt is refused; 0 when it is heard, counted as a failure from now on (a
        successful one is taken back). The attempt that makes one too many is heard and locks the ones after it."""
        now = self.clock()
        with self._lock:
            keys = self._keys(name, address)
            wait = self._left(keys, now)
            if wait > 0:
                return wait
            if len(self._failures) > MAX_KEYS:
                self._forget(now)
            for key in keys:
                times = self._failures.setdefault(key, deque())
                times.append(now)
                while times and times[0] <= now - self.window:
                    times.popleft()
                if len(times) > self.limit:
                    self._locked_until[key] = now + self.lockout
                    times.clear()  # the lockout is the answer to these; counting starts afresh after it
            return 0.0

    def take_back(self, name: str | None, address: str | None) -> None:
        """An attempt begun was no failure (the right password, or no password checked at all)."""
        with self._lock:
            for key in self._keys(name, address):
                times = self._failures.get(key)
                if times:
                    times.pop()

    def message(self, seconds: float) -> str:
        minutes = max(1, round(seconds / 60))
        return (f"Too many failed logins for this name or from this address: try again in {minutes} minute"
                f"{'s' if minutes != 1 else ''}.")

    def _forget(self, now: float) -> None:
        for key in [k for k, times in self._failures.items() if not times or times[-1] <= now - self.window]:
            del self._failures[key]
        for key in [k for k, until in self._locked_until.items() if until <= now]:
            del self._locked_until[key]

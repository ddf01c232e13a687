"""A session's events run one after another, each on the session as the previous one left it.

The session lives in the browser (gr.BrowserState), which sends it with each event as it was when the event was
triggered. Two events in flight at once (a click while the previous answer is still on its way, which a loaded
machine makes common) would each start from the same copy and write back their own: the later would undo the
earlier (a chosen group column lost, a typed number reset). So the server keeps each session's latest copy, gives
it to the next event in place of the browser's, and lets one event of a session run at a time, in the order they
started: a lock per session id. Handlers are wrapped where they are attached (Context.on). The browser's copy still
matters: it is what a page brings back after the studio restarts."""
from __future__ import annotations

import copy
import functools
import inspect
import threading
from collections import OrderedDict
from typing import Callable

KEPT_SESSIONS = 1000  # latest copies (and their turns) held in memory; an older session falls back on its browser's


class SessionOrder:
    def __init__(self):
        self._latest: OrderedDict[str, dict] = OrderedDict()
        self._turns: OrderedDict[str, list[int]] = OrderedDict()  # id → [next ticket, ticket being served]
        self._guard = threading.Condition()

    def wrap(self, fn: Callable, position: int, session) -> Callable:
        """fn, run in its session's turn on the session's latest copy. position: where the session is among fn's
        arguments; session: the component, whose value in fn's result (a {component: update} dict) is kept as the
        latest copy. A generator (a streamed answer) reads the latest copy without holding the turn while it
        streams."""
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def streamed(*args, **kwargs):
                yield from fn(*self._with_latest(args, position), **kwargs)
            return streamed

        @functools.wraps(fn)
        def ordered(*args, **kwargs):
            sid = _id(args[position])
            if sid is None:
                return self._keep(fn(*args, **kwargs), session)
            with self._guard:
                turn = self._turns.setdefault(sid, [0, 0])
                self._turns.move_to_end(sid)
                ticket, turn[0] = turn[0], turn[0] + 1
                self._guard.wait_for(lambda: turn[1] == ticket)
            try:
                return self._keep(fn(*self._with_latest(args, position), **kwargs), session)
            finally:
                with self._guard:
                    turn[1] += 1
                    self._prune()
                    self._guard.notify_all()
        return ordered

    def _with_latest(self, args: tuple, position: int) -> tuple:
        sid = _id(args[position])
        with self._guard:
            latest = self._latest.get(sid) if sid else None
            if latest is None:
                return args
            return (*args[:position], copy.deepcopy(latest), *args[position + 1:])

    def _keep(self, result, session):
        state = result.get(session) if isinstance(result, dict) else None
        if _id(state):
            with self._guard:
                self._latest[state["id"]] = copy.deepcopy(state)
                self._latest.move_to_end(state["id"])
                self._prune()
        return result

    def _prune(self) -> None:
        """The oldest sessions go first; a session whose turn is taken or awaited stays."""
        while len(self._latest) > KEPT_SESSIONS:
            self._latest.popitem(last=False)
        idle = [sid for sid, (taken, served) in self._turns.items() if taken == served]
        for sid in idle[:max(0, len(self._turns) - KEPT_SESSIONS)]:
            del self._turns[sid]


def _id(value) -> str | None:
    return value.get("id") if isinstance(value, dict) and "recipe" in value else None

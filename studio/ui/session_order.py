"""A session's events run one after another, each on the session as the previous one left it.

The session lives in the browser (gr.BrowserState), which sends it with each event as it was when the event was
triggered. Two events in flight at once (a click while the previous answer is still on its way, which a loaded
machine makes common) would each start from the same copy and write back their own: the later would undo the
earlier (a chosen group column lost, a typed number reset). So the server keeps each session's latest copy, gives
it to the next event in place of the browser's, and lets one event of a session run at a time, in the order they
started. The browser's copy still matters: it is what a page brings back after the studio restarts."""
from __future__ import annotations

import copy
import functools
import inspect
import threading
from collections import OrderedDict

KEPT_SESSIONS = 1000  # latest copies held in memory; an older session falls back on its browser's copy


class SessionOrder:
    def __init__(self):
        self._latest: OrderedDict[str, dict] = OrderedDict()
        self._turns: dict[str, list[int]] = {}  # id → [next ticket, ticket being served]
        self._guard = threading.Condition()

    def run(self, fn, args: tuple, kwargs: dict, writes):
        """fn(*args) with the session argument replaced by its latest copy; writes(result) → the session it
        returns, or None."""
        position = next((i for i, a in enumerate(args) if _is_session(a)), None)
        sid = args[position]["id"] if position is not None else None
        if not sid:
            return self._keep(fn(*args, **kwargs), writes)
        with self._guard:
            turn = self._turns.setdefault(sid, [0, 0])
            ticket, turn[0] = turn[0], turn[0] + 1
            self._guard.wait_for(lambda: turn[1] == ticket)
            latest = self._latest.get(sid)
        try:
            if latest is not None:
                args = (*args[:position], copy.deepcopy(latest), *args[position + 1:])
            return self._keep(fn(*args, **kwargs), writes)
        finally:
            with self._guard:
                turn[1] += 1
                self._guard.notify_all()

    def latest(self, args: tuple) -> tuple:
        """args with the session replaced by its latest copy, without waiting for a turn."""
        with self._guard:
            return tuple(copy.deepcopy(self._latest.get(a["id"], a)) if _is_session(a) and a.get("id") else a
                         for a in args)

    def _keep(self, result, writes):
        session = writes(result)
        if _is_session(session) and session.get("id"):
            with self._guard:
                self._latest[session["id"]] = copy.deepcopy(session)
                self._latest.move_to_end(session["id"])
                while len(self._latest) > KEPT_SESSIONS:
                    self._latest.popitem(last=False)
        return result


def _is_session(value) -> bool:
    return isinstance(value, dict) and "recipe" in value and "id" in value


def order_sessions(app, session) -> SessionOrder:
    """Wraps every event of the app that reads the session (generators excepted: a streamed answer must not
    hold the session's turn while it streams; they read the latest copy)."""
    order = SessionOrder()
    for block_fn in app.fns.values():
        fn = block_fn.fn
        if fn is None or session not in block_fn.inputs or inspect.iscoroutinefunction(fn):
            continue
        writes = _reader(block_fn.outputs, session)
        if block_fn.types_generator:
            block_fn.fn = _latest_only(order, fn)
            continue
        block_fn.fn = functools.wraps(fn)(lambda *a, _fn=fn, _w=writes, **k: order.run(_fn, a, k, _w))
    return order


def _latest_only(order: SessionOrder, fn):
    @functools.wraps(fn)
    def generator(*args, **kwargs):
        yield from fn(*order.latest(args), **kwargs)
    return generator


def _reader(outputs: list, session):
    """result → the session value in it (an event's result is a dict by component, one value, or a tuple)."""
    if session not in outputs:
        return lambda result: None
    index = outputs.index(session)

    def read(result):
        if isinstance(result, dict) and not _is_session(result):
            return result.get(session)
        if len(outputs) == 1:
            return result
        return result[index] if isinstance(result, (tuple, list)) and len(result) > index else None
    return read

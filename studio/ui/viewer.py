"""Who is looking: the logged-in user of the event being handled (what they may see: run/ownership.py).

Every handler is attached through Context.on, which wraps it here once: gradio hands the wrapper the event's
gr.Request (its `username` is the login's, None in a studio without one), the wrapper makes that user the current
one for the handler's duration (Context reads it) and gives the handler a session that belongs to that login. The
session comes from the browser, which the user controls (a crafted gradio_client call sends any session it likes),
so the name in the session is never believed: a session of another login, or of none, is replaced by a fresh one.
"""
from __future__ import annotations

import contextvars
import functools
import inspect
import typing
from typing import Callable

import gradio as gr

from studio.run import ownership
from studio.run.ownership import Viewer
from studio.workspace import RunNotFound, Workspace

REQUEST = "studio_request"  # the wrapper's own parameter, named so that no handler's can clash with it
# (the user, the address their event came from) of the event being handled
_current: contextvars.ContextVar[tuple[Viewer | None, str | None]] = contextvars.ContextVar("studio_viewer",
                                                                                          default=(None, None))


class Hearing:
    """Wraps handlers so that they run as the event's user, on a session of that user's."""

    def __init__(self, workspace: Workspace, fresh: Callable[[dict, str | None], dict], logins: tuple[str, ...] = ()):
        """fresh(old session, user name) → a new session for that user (what is kept of the old: its language).
        logins: the names of the studio's `--auth` pairs (ownership.viewer)."""
        self.workspace, self.fresh, self.logins = workspace, fresh, logins

    def wrap(self, fn: Callable, position: int | None) -> tuple[Callable, int | None]:
        """(fn with a parameter for gradio's request after its own positional ones, where the session now is among
        the wrapper's arguments). position: where the session is among fn's arguments, None when fn does not read
        it. fn's parameters stay as they were, so gradio still fills in gr.Progress and gr.Request where fn asks;
        the request's parameter defaults to None, so fn is still called as before outside gradio (tests)."""
        signature = inspect.signature(fn)
        params = list(signature.parameters.values())
        at = next((i for i, p in enumerate(params) if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)),
                  len(params))
        asked = inspect.Parameter(REQUEST, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                  annotation=gr.Request)

        def heard_by(args, kwargs) -> tuple[tuple[Viewer, str | None], tuple]:
            request = args[at] if len(args) > at else kwargs.pop(REQUEST, None)
            args = (*args[:at], *args[at + 1:])
            name = getattr(request, "username", None)
            if position is not None and position < len(args):
                args = (*args[:position], self.owned(args[position], name), *args[position + 1:])
            client = getattr(request, "client", None)
            return (ownership.viewer(self.workspace, name, self.logins), getattr(client, "host", None)), args

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def heard(*args, **kwargs):
                user, args = heard_by(args, kwargs)
                answers = fn(*args, **kwargs)
                try:
                    while True:  # each step may run on another thread (another context): the user set for each
                        token = _current.set(user)
                        try:
                            answer = next(answers)
                        except StopIteration:
                            return
                        except RunNotFound as exc:
                            raise gr.Error(str(exc)) from None
                        finally:
                            _current.reset(token)
                        yield answer
                finally:
                    answers.close()  # a cancelled stream ends the handler's own generator too
        else:
            @functools.wraps(fn)
            def heard(*args, **kwargs):
                user, args = heard_by(args, kwargs)
                token = _current.set(user)
                try:
                    return fn(*args, **kwargs)
                except RunNotFound as exc:  # a run this user may not see (or none): said, whatever the handler
                    raise gr.Error(str(exc)) from None
                finally:
                    _current.reset(token)
        del heard.__wrapped__  # gradio reads the signature below, not fn's
        heard.__signature__ = signature.replace(parameters=[*params[:at], asked, *params[at:]])
        heard.__annotations__ = {**_hints(fn), REQUEST: gr.Request}
        return heard, (None if position is None else position + (position >= at))

    def owned(self, state, name: str | None):
        """The session as this login may use it: its own, or a fresh one (a blank first visit takes the name)."""
        if not isinstance(state, dict) or "recipe" not in state:
            return state
        if not state.get("id"):
            return {**state, "user": name}
        if state.get("user") != name:
            return self.fresh(state, name)
        return state


def _hints(fn) -> dict:
    """fn's annotations resolved in its own module (gradio finds gr.Request and gr.Progress parameters by them;
    left as text, they would be read in this module's namespace)."""
    try:
        return typing.get_type_hints(fn)
    except (NameError, TypeError):  # a partial, or a name its module lacks: gradio would find no hints either
        return {}


def current() -> Viewer | None:
    """Who the event being handled is from (None outside an event)."""
    return _current.get()[0]


def address() -> str | None:
    """The address the event being handled came from."""
    return _current.get()[1]


"""The studio's errors in words. Every error a user can cause or fix is a UserError (a ValueError): its message
says what is wrong and how to fix it, and callers show it as it is, never a traceback."""
from __future__ import annotations


class UserError(ValueError):
    """Bad input, a recipe, a model or data the studio cannot use; the message is for the user."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's first line (its type when it has no text): the gist for a message in words, while the
    traceback goes to a log."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__

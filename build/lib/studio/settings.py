"""Settings read from the environment, each time they are needed (a server's settings apply without a restart)."""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def env_number(name: str, default: float) -> float:
    """A positive number from the environment variable `name`, else `default` (with a warning when it is set but
    not a positive number)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if value <= 0:
        log.warning("Ignoring %s=%r: it must be a positive number; using %g.", name, raw, default)
        return default
    return value

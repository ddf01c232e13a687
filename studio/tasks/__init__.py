"""The tasks the studio trains, one module each. A task module defines a Task object named TASK; this registry
maps task names to modules and imports a module only when its task is used.

Plugins add tasks (and families) without touching the studio: STUDIO_PLUGINS names Python modules (comma-
separated) that are imported first; each calls `register()` (and `families.register()` / `catalog.add()`). The
variable reaches the worker process too, so a plugin task trains like a built-in one.
"""
from __future__ import annotations

import importlib
import os

from studio.errors import UserError

BUILTIN = {"image-classification": "studio.tasks.image_classification",
           "text-classification": "studio.tasks.text_classification",
           "audio-classification": "studio.tasks.audio_classification",
           "instruction-tuning": "studio.tasks.instruction_tuning"}
_registered: dict[str, object] = {}
_plugins_loaded = False


def load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for name in filter(None, (n.strip() for n in os.environ.get("STUDIO_PLUGINS", "").split(","))):
        importlib.import_module(name)


def register(task) -> None:
    _registered[task.name] = task


def names() -> list[str]:
    load_plugins()
    return list(dict.fromkeys([*BUILTIN, *_registered]))


def get(name: str):
    """The Task called `name`; UserError listing the known tasks otherwise."""
    load_plugins()
    if name not in _registered:
        if name not in BUILTIN:
            raise UserError(f"Unknown task '{name}'; choose one of: {', '.join(names())}.")
        importlib.import_module(BUILTIN[name])
    return _registered[name]

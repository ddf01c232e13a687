"""Backbone families: how each kind of pretrained model is built, rebuilt from a saved folder, and checked.

A family is a module with `build(ref, task, modality, pretrained, trust_remote_code)`, `rebuild(info, folder,
modality)` and `check(ref, task, modality, trust_remote_code)`; adding one is adding a module and naming it here
(or `register()` from a plugin) and in the catalog.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from studio import catalog
from studio.families.base import ModelError
from studio.families.packages import locate

FAMILIES = {"efficientnet-lite": "studio.families.efficientnet_lite", "torchvision": "studio.families.torchvision",
            "hf": "studio.families.hf"}


def register(name: str, module: str) -> None:
    FAMILIES[name] = module


def get(name: str) -> ModuleType:
    if name not in FAMILIES:
        raise ModelError(f"Unknown model family '{name}'; known: {', '.join(FAMILIES)}.")
    return importlib.import_module(FAMILIES[name])


def resolve(model: str, task: str) -> tuple[str, str]:
    """(family, what that family loads) for what a recipe names: a catalog name, a hub id or a folder."""
    entry = catalog.find(model)
    if entry is None:
        return "hf", model
    if entry.task != task:
        raise ModelError(f"'{model}' is made for {entry.task}, but the recipe's task is {task}. "
                         f"Pick one of: {', '.join(e.name for e in catalog.for_task(task))}.")
    if entry.source == "package" and entry.family == "hf":
        return entry.family, locate(entry)
    return entry.family, entry.ref

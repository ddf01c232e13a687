"""Taking a tuned chat model elsewhere: the adapter alone (model/adapter/, a peft folder), a merged transformers
folder (model/hf/, which `pipeline("text-generation")` loads with the chat template in its tokenizer), and the zip of
the model folder, and one GGUF file with an Ollama Modelfile (model/gguf/). What a strategy cannot be exported as, it
says (ChatStrategy.export_refused)."""
from __future__ import annotations

import time
from pathlib import Path

from studio import tasks
from studio.engine.export import ExportError, export_zip, model_folder
from studio.families.base import ModelError, ModelInfo
from studio.families.causal_lm import load_config, parameter_count
from studio.runfolder import ADAPTER_DIR, GGUF_CHECK, GGUF_DIR, HF_DIR, RunFolder, atomic, write_json, write_text
from studio.tasks.instruction import gguf_export, modelfile
from studio.tasks.instruction.card import write_card
from studio.tasks.instruction.model import base_path
from studio.tasks.instruction.strategies import STRATEGIES


def _strategy(folder: Path, fmt: str):
    """(the model's info, its strategy) when the strategy allows `fmt`; ExportError saying why otherwise."""
    info = ModelInfo.read(folder)
    strategy = STRATEGIES[info.preprocessing["strategy"]]
    refused = strategy.export_refused(fmt)
    if refused:
        raise ExportError(refused)
    return info, strategy


def adapter(run: RunFolder) -> Path:
    folder = model_folder(run)
    _strategy(folder, "adapter")
    return folder / ADAPTER_DIR


def hf(run: RunFolder) -> Path:
    """model/hf/: the base with the adapter folded in (or the fully tuned model), its tokenizer and chat template,
    and the end-of-turn token as the generation's stop token."""
    from transformers import AutoTokenizer, GenerationConfig
    folder = model_folder(run)
    info, strategy = _strategy(folder, "hf")
    merged = strategy.merged(folder, base_path(info))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    stop = sorted({tokenizer.convert_tokens_to_ids(info.preprocessing["eot"]), tokenizer.eos_token_id})
    merged.generation_config = GenerationConfig.from_model_config(merged.config)
    merged.generation_config.eos_token_id = stop
    merged.generation_config.pad_token_id = tokenizer.pad_token_id
    out = folder / HF_DIR
    with atomic(out) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out


def _base_config(info: ModelInfo):
    """The base model's config when it is on this machine (None otherwise: nothing is downloaded to say more)."""
    try:
        return load_config(info.preprocessing["base"], info.task, info.trust_remote_code)
    except (ModelError, OSError, KeyError):
        return None


def gguf_refused(info: ModelInfo) -> str | None:
    config = _base_config(info)
    return gguf_export.unsupported(config.model_type) if config is not None else None


def gguf_size(info: ModelInfo, gguf_type: str = gguf_export.DEFAULT_TYPE) -> int | None:
    """About how many bytes the GGUF file will take (parameters times bytes per weight), before writing it."""
    config = _base_config(info)
    return gguf_export.estimated_bytes(parameter_count(config), gguf_type) if config is not None else None


def _check_inputs(run: RunFolder, tokenizer, info: ModelInfo) -> list[list[int]]:
    """Token ids of a few of the run's held-out prompts as the model sees them (system prompt, chat template)."""
    prep = info.preprocessing
    prompts = tasks.get(info.task).example_inputs(run)[:4] or ["Hello! How do I reset my password?"]
    system = [{"role": "system", "content": prep["system_prompt"]}] if prep.get("system_prompt") else []
    texts = [tokenizer.apply_chat_template(system + [{"role": "user", "content": p}], tokenize=False,
                                           add_generation_prompt=True) for p in prompts]
    return [tokenizer(t, add_special_tokens=False)["input_ids"][-prep["max_length"]:] for t in texts]


def gguf(run: RunFolder, gguf_type: str = gguf_export.DEFAULT_TYPE) -> Path:
    """model/gguf/: the merged model as <run>-<type>.gguf (q8_0, f16 or f32) and an Ollama Modelfile beside it,
    kept only when the file reads back and answers like the merged model (gguf_export.check, its figures in
    gguf_check.json)."""
    from transformers import AutoTokenizer
    started = time.perf_counter()
    gguf_export.checked_type(gguf_type)
    folder = model_folder(run)
    info, strategy = _strategy(folder, "gguf")
    prep = info.preprocessing
    merged = strategy.merged(folder, base_path(info)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    name, out = f"{run.id}-{gguf_type}.gguf", folder / GGUF_DIR
    with atomic(out) as tmp:
        tmp.mkdir()
        written = gguf_export.write(merged, tokenizer, folder, tmp / name, gguf_type, run.id, prep["eot"])
        figures = gguf_export.check(merged, tmp / name, written, gguf_type, _check_inputs(run, tokenizer, info))
        write_text(tmp / modelfile.FILE, modelfile.text(name, tokenizer.chat_template, prep["eot"],
                                                        prep.get("system_prompt") or ""))
        write_json(tmp / GGUF_CHECK, {**figures, "file": name, "bytes": (tmp / name).stat().st_size,
                                      "seconds": round(time.perf_counter() - started, 2)})
    return out


def model_zip(run: RunFolder) -> Path:
    write_card(run)  # rewritten from the run folder, so the card matches the metrics on disk
    return export_zip(run)

"""Taking a tuned chat model elsewhere: the adapter alone (model/adapter/, a peft folder), a merged transformers
folder (model/hf/, which `pipeline("text-generation")` loads with the chat template in its tokenizer), and the zip of
the model folder. What a strategy cannot be exported as, it says (ChatStrategy.export_refused)."""
from __future__ import annotations

from pathlib import Path

from studio.engine.export import ExportError, export_zip, model_folder
from studio.families.base import ModelInfo
from studio.runfolder import ADAPTER_DIR, HF_DIR, RunFolder, atomic
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


def model_zip(run: RunFolder) -> Path:
    write_card(run)  # rewritten from the run folder, so the card matches the metrics on disk
    return export_zip(run)

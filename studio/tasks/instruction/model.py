"""A tuned chat model on disk and back: model/ holds the tokenizer (with its chat template), studio_model.json (the
base model, strategy, template settings, the training system prompt) and either the adapter alone (adapter/, a
peft folder `PeftModel.from_pretrained` loads on top of the base) or, after full fine-tuning, every weight."""
from __future__ import annotations

from pathlib import Path

from studio import catalog
from studio.engine.device import pick_device
from studio.families.base import ModelError, ModelInfo
from studio.tasks.instruction.chat import DEFAULT_MAX_NEW_TOKENS, Chat
from studio.tasks.instruction.strategies import STRATEGIES, ChatStrategy
from studio.tasks.instruction.tokens import ChatFormat
from studio.families.gguf import converted

FAMILY = "causal-lm"


def save(strategy: ChatStrategy, model, tokenizer, info: ModelInfo, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    strategy.save(model, folder)
    tokenizer.save_pretrained(folder)
    info.save(folder)


def base_path(info: ModelInfo) -> str:
    """Where the base model is: its folder (converted once into the workspace cache for packaged models, and
    converted again if that cache was emptied), a hub id, or a local folder."""
    path = info.preprocessing["base"]
    entry = catalog.find(info.model)
    if entry is not None and entry.family == "gguf" and not Path(path).exists():
        return str(converted(entry, Path(path).parent))
    return path


def load(folder: Path, device: str = "auto", with_base: bool = True) -> Chat:
    """A saved model ready to answer; with_base: after full fine-tuning, also the base model beside it (the
    Playground's side-by-side answers)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    folder = Path(folder)
    info = ModelInfo.read(folder)
    prep = info.preprocessing
    strategy = STRATEGIES[prep["strategy"]]
    where = pick_device(device)
    dtype = strategy.weights_dtype(where)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    fmt = ChatFormat(tokenizer, prep["max_length"], prep.get("train_on_prompt", False))
    base_ref, base = base_path(info), None
    try:
        model = strategy.load(folder, base_ref, dtype)
        # an adapter answers as its base with the adapter switched off; a fully tuned model needs its base beside it
        if with_base and not strategy.adapter and (Path(base_ref).exists() or "/" in base_ref):
            base = AutoModelForCausalLM.from_pretrained(base_ref, dtype=dtype).to(where).eval()
    except OSError as exc:
        raise ModelError(f"The base model of this run ({info.model}) cannot be loaded here ({exc}). The adapter "
                         "needs its base model: download it once, or export the merged model (hf).") from None
    return Chat(model.to(where).eval(), fmt, where, prep.get("system_prompt", ""), base)


class Predictor:
    """`studio predict`: one answer per message, greedy, with the training system prompt."""

    def __init__(self, folder: Path):
        self.chat = load(folder, with_base=False)

    def predict(self, inputs: list, top_k: int = 3, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> list[dict]:
        return [{"answer": self.chat.answer(self.chat.messages(str(text)), max_new_tokens=max_new_tokens)}
                for text in inputs]

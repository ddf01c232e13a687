"""General knowledge kept: tuning a chat model on a narrow data set can make it lose what it learnt in
pre-training. Measured as the mean per-token loss of the model on a bundled sample of general text (plain text, no
chat template), for the tuned model and for the base (start) model. The base figure is measured once per base model
and kept in the workspace's cache, so a second run on the same model (the chat demo) does not pay for it again."""
from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import torch

from studio.assets import GENERAL_TEXT
from studio.runfolder import read_json, write_json
from studio.words import said

MAX_TOKENS = 128  # per passage: the sample's passages are shorter; a cap keeps a bigger tokenizer's cost bounded
BATCH = 16
# A warning above a 10% rise. A short LoRA run on the bundled help-desk chat example (the demo's) moves the loss on
# general text by a few percent (the tiny random Llama of the tests: well under 1%); a rise of more than 10% is well
# outside that, and is the size at which tuned models start to answer general questions visibly worse.
RISE_WARNING = 0.10


def passages(path: Path = GENERAL_TEXT) -> list[str]:
    """The sample's passages: one a line, comments (#) and blank lines left out."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def sample_hash(path: Path = GENERAL_TEXT) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@contextlib.contextmanager
def base_of(model):
    """The base model: with an adapter, the same weights with it switched off (a prompt-learning adapter's base
    model without its virtual tokens); any other model as it is."""
    if not hasattr(model, "disable_adapter"):
        yield model
    elif model.peft_config[model.active_adapter].is_prompt_learning:
        yield model.get_base_model()
    else:
        with model.disable_adapter():
            yield model


def mean_loss(model, tokenizer, device, texts: list[str] | None = None) -> float:
    """The mean loss over every predicted token of the texts (each cut at MAX_TOKENS), batched by length (little
    padding), padded on the right (positions as unpadded); the model's training mode is put back after."""
    texts = passages() if texts is None else texts
    rows = sorted((ids[:MAX_TOKENS] for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]), key=len)
    total, count, was_training = 0.0, 0, model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(rows), BATCH):
                batch = [torch.tensor(r) for r in rows[start:start + BATCH] if len(r) > 1]
                if not batch:
                    continue
                ids = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True).to(device)
                mask = torch.nn.utils.rnn.pad_sequence([torch.ones_like(r) for r in batch], batch_first=True).to(device)
                # the text's own positions: a prompt-learning adapter puts its virtual tokens before them
                logits = model(input_ids=ids, attention_mask=mask).logits[:, -ids.shape[1]:-1].float()
                labels = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
                total += torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100,
                                                           reduction="sum").item()
                count += int((labels != -100).sum())
    finally:
        model.train(was_training)
    return total / max(count, 1)


def base_loss(model, tokenizer, device, base_name: str, cache: Path, write: bool = True) -> float:
    """The base model's loss on the sample, from the cache when this base model (its path, the weights' dtype) was
    measured on this sample before; else measured (adapter off) and kept. `write`: this process keeps it (the
    main one of a distributed run)."""
    dtype = next(model.parameters()).dtype
    key = f"{base_name}|{dtype}|{sample_hash()}"
    known = read_json(cache) or {}
    if key in known:
        return known[key]
    with base_of(model) as base:
        loss = mean_loss(base, tokenizer, device)
    if write:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_json(cache, {**(read_json(cache) or {}), key: loss})
    return loss


def add_to(report: dict, model, tokenizer, device, base: float) -> None:
    """eval.json's general_loss and base_general_loss, the sentence the Evaluate tab shows (general_knowledge), and
    a warning among the report's when the tuned model's loss rose more than RISE_WARNING."""
    loss = mean_loss(model, tokenizer, device)
    change = (loss - base) / max(base, 1e-9)
    values = dict(change=f"{abs(change):.1%}")  # a tenth of a percent: a small change is not said as 0%
    sentence = (said("General knowledge kept: the tuned model's loss on general text rose {change}.", **values)
                if change >= 0 else
                said("General knowledge kept: the tuned model's loss on general text fell {change}.", **values))
    report.update(general_loss=loss, base_general_loss=base, general_knowledge=sentence)
    if change > RISE_WARNING:
        report.setdefault("warnings", []).append(
            said("The tuned model's loss on general text rose {change}, more than {limit}: it may have lost some of "
                 "what it knew before tuning. Fewer epochs, a lower learning rate or more varied data help it keep "
                 "more.", change=f"{change:.0%}", limit=f"{RISE_WARNING:.0%}"))

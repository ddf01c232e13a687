"""Conversations as the model sees them: the tokenizer's own chat template, the part that is learnt (the answers,
each ending in the template's end-of-turn token, so the tuned model stops), truncation from the prompt's side,
tokenisation through `datasets` with its cache in the workspace, packing, and batches.

Each rendered conversation is cut into segments (prompt text, answer text) and each segment is tokenised on its
own, exactly as at inference time: there the prompt is tokenised whole and the answer is generated token by token.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

IGNORE = -100  # the label of a token that is not learnt
PROBE = [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "Q7xZ answer"}]


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    status: str  # ok | truncated (prompt cut from its start) | too_long (the answer alone does not fit)


class ChatFormat:
    """How this tokenizer turns conversations (or texts) into tokens and labels."""

    def __init__(self, tokenizer, max_length: int, train_on_prompt: bool = False):
        self.tokenizer, self.max_length, self.train_on_prompt = tokenizer, max_length, train_on_prompt
        self.eot = self._end_of_turn()

    def _end_of_turn(self) -> str:
        """The special token the template writes right after an answer (<|im_end|>, <|eot_id|>, </s>, …); the
        end-of-text token when the template writes none (the studio then adds it)."""
        text = self.render(PROBE)
        after = text[text.index("Q7xZ answer") + len("Q7xZ answer"):]
        special = {t for t in self.tokenizer.all_special_tokens if t}
        special |= {t.content for t in self.tokenizer.added_tokens_decoder.values() if t.special}
        found = sorted((after.find(t), t) for t in special if t in after)
        return found[0][1] if found and not after[:found[0][0]].strip() else self.tokenizer.eos_token

    def render(self, messages: list[dict], add_generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def segments(self, messages: list[dict]) -> list[tuple[str, bool]]:
        """The rendered conversation as (text, learnt) pieces: every answer with its end-of-turn token is learnt
        (with train_on_prompt, everything is)."""
        text, pieces, cursor = self.render(messages), [], 0
        for message in messages:
            if message["role"] != "assistant":
                continue
            start = text.find(message["content"], cursor)
            if start < 0:
                raise ValueError("the chat template changed an answer's text")
            end = start + len(message["content"])
            closing = re.match(r"\s*" + re.escape(self.eot), text[end:])
            pieces.append((text[cursor:start], self.train_on_prompt))
            if closing:
                pieces.append((text[start:end + closing.end()], True))
                cursor = end + closing.end()
            else:  # the template ends answers with nothing the model could stop on: the studio adds one
                pieces.append((text[start:end] + self.eot, True))
                cursor = end
        pieces.append((text[cursor:], self.train_on_prompt))
        return [(t, learnt) for t, learnt in pieces if t]

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode(self, messages: list[dict]) -> Encoded:
        ids, labels = [], []
        for text, learnt in self.segments(messages):
            piece = self._ids(text)
            ids += piece
            labels += piece if learnt else [IGNORE] * len(piece)
        status = "ok"
        if len(ids) > self.max_length:
            start = max((i for i, label in enumerate(labels) if label != IGNORE), default=0)
            while start > 0 and labels[start - 1] != IGNORE:
                start -= 1
            if len(ids) - start >= self.max_length - 1:  # the last answer (and what follows it) alone
                return Encoded([], [], "too_long")
            # Cut from the start (system prompt, earlier turns, the start of the question): the answer survives.
            ids, labels, status = ids[-self.max_length:], labels[-self.max_length:], "truncated"
        return Encoded(ids, [IGNORE] + labels[1:], status)  # the first token has nothing before it to predict

    def encode_text(self, text: str) -> list[Encoded]:
        """Continued pretraining: every token is learnt; a long text becomes several pieces of max_length."""
        ids = self._ids(text) + [self.tokenizer.eos_token_id]
        pieces = [ids[i:i + self.max_length] for i in range(0, len(ids), self.max_length)]
        return [Encoded(p, [IGNORE] + p[1:], "split" if len(pieces) > 1 else "ok") for p in pieces if len(p) > 1]

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        """The tokens that ask for the next answer (generation)."""
        return self._ids(self.render(messages, add_generation_prompt=True))

    def key(self) -> str:
        t = self.tokenizer
        return json.dumps([t.name_or_path, len(t), t.chat_template, self.eot, self.max_length, self.train_on_prompt])


def tokenize(items: list, form: str, fmt: ChatFormat, cache_dir: Path):
    """(a datasets.Dataset of input_ids/labels, counts of {truncated, too_long, split}). Cached in cache_dir by
    the examples and everything that shapes their tokens, so a second run on the same data starts at once."""
    import datasets
    datasets.disable_progress_bars()
    key = hashlib.sha256((fmt.key() + form + json.dumps(items)).encode()).hexdigest()[:24]
    cache_dir.mkdir(parents=True, exist_ok=True)

    def encode(batch):
        out = {"input_ids": [], "labels": [], "status": []}
        for raw in batch["item"]:
            item = json.loads(raw)
            for enc in (fmt.encode_text(item) if form == "text" else [fmt.encode(item)]):
                out["input_ids"].append(enc.input_ids)
                out["labels"].append(enc.labels)
                out["status"].append(enc.status)
        return out
    source = datasets.Dataset.from_dict({"item": [json.dumps(x) for x in items]})
    encoded = source.map(encode, batched=True, remove_columns=["item"], new_fingerprint=key,
                         cache_file_name=str(cache_dir / f"tokens-{key}.arrow"), load_from_cache_file=True)
    named = dict(Counter(encoded["status"]))
    kept = encoded.filter(lambda status: status != "too_long", input_columns="status",
                          cache_file_name=str(cache_dir / f"kept-{key}.arrow"), load_from_cache_file=True)
    return kept.remove_columns("status"), named


def pack(lengths: list[int], capacity: int) -> list[list[int]]:
    """Examples grouped into rows of at most `capacity` tokens, longest first into the first row with room."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        slot = next((r for r, free in enumerate(room) if free >= lengths[index]), None)
        if slot is None:
            rows.append([index])
            room.append(capacity - lengths[index])
        else:
            rows[slot].append(index)
            room[slot] -= lengths[index]
    return rows


class Examples(torch.utils.data.Dataset):
    """Tokenised examples, one per item; packed: several per item, their position ids restarting at each."""

    def __init__(self, encoded, packed_capacity: int | None = None):
        self.ids, self.labels = encoded["input_ids"], encoded["labels"]
        self.rows = pack([len(x) for x in self.ids], packed_capacity) if packed_capacity else None

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else len(self.ids)

    def __getitem__(self, index: int) -> dict:
        members = self.rows[index] if self.rows is not None else [index]
        ids = [t for m in members for t in self.ids[m]]
        labels = [t for m in members for t in self.labels[m]]
        positions = [p for m in members for p in range(len(self.ids[m]))]
        return {"input_ids": ids, "labels": labels, "position_ids": positions, "packed": self.rows is not None}


class Collate:
    """Pads a batch to its longest row. Unpacked rows get an attention mask; packed rows get position ids instead
    (transformers then lets each example attend only to itself), padding forming a segment of its own."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]):
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for n, row in enumerate(rows):
            ids[n, :len(row["input_ids"])] = torch.tensor(row["input_ids"])
            labels[n, :len(row["labels"])] = torch.tensor(row["labels"])
        if rows[0]["packed"]:
            positions = torch.zeros((len(rows), width), dtype=torch.long)
            for n, row in enumerate(rows):
                used = len(row["position_ids"])
                positions[n, :used] = torch.tensor(row["position_ids"])
                positions[n, used:] = torch.arange(width - used)
            return {"input_ids": ids, "position_ids": positions}, labels
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for n, row in enumerate(rows):
            mask[n, :len(row["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": mask}, labels


def learnt_tokens(inputs: dict, labels: torch.Tensor) -> int:
    """Tokens of a batch that are learnt (the loop's tokens/s: what packing speeds up)."""
    return int((labels != IGNORE).sum())


def preview(items: list, form: str, fmt: ChatFormat, shown: int = 3) -> dict:
    """What the Data tab shows: the first examples as (text, learnt) pieces exactly as the model sees them, every
    example's length in tokens, and how many exceed max_length."""
    def pieces(item):
        return [(item + fmt.tokenizer.eos_token, True)] if form == "text" else fmt.segments(item)
    lengths = [sum(len(fmt._ids(text)) for text, _ in pieces(item)) for item in items]
    return {"examples": [pieces(item) for item in items[:shown]], "lengths": lengths,
            "over_max_length": sum(n > fmt.max_length for n in lengths), "max_length": fmt.max_length,
            "end_of_turn": fmt.eot}

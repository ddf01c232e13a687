"""Instruction-tuning data: conversations read from a table and checked, with a report in words.

Three shapes: prompt/response columns (and an optional system column) in a CSV or JSONL; a JSONL column of chat
messages (`messages`: role/content, several turns; ShareGPT's `conversations`: from/value); or one text column
(continued pretraining). A recipe that names no column gets them detected from the file's columns, and the
report says which were used. Rows that cannot be used are skipped with their row or line number and the reason;
nothing is dropped silently."""
from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from studio.engine.data.errors import DataError, existing
from studio.engine.data.tables import TABLE_SUFFIXES, cell, missing_column, read_table
from studio.engine.data.words import listing
from studio.recipe import DataSpec
from studio.words import said

ROLES = {"system": "system", "user": "user", "assistant": "assistant",
         "human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant"}  # ShareGPT's words too
PROMPT_GUESSES = ("prompt", "instruction", "question", "input", "query", "user")
RESPONSE_GUESSES = ("response", "output", "answer", "completion", "assistant", "reply")
SYSTEM_GUESSES = ("system", "system_prompt")
MESSAGES_GUESSES = ("messages", "conversations", "conversation", "chat")


@dataclass
class ChatReport:
    form: str  # "chat" (conversations) or "text" (continued pretraining)
    columns: dict  # the data.* keys used, e.g. {"prompt_column": "question", "response_column": "answer"}
    train_counts: dict
    validation_counts: dict
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"item": "row 7", "reason": ...}
    warnings: list[str] = field(default_factory=list)
    empty_responses: int = 0
    duplicates: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChatData:
    """Conversations (lists of {"role", "content"}) or texts, split into training and validation."""
    form: str
    train_items: list
    val_items: list
    report: ChatReport
    system_prompt: str = ""  # the most common system message in training: the playground's default

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps([self.form, self.train_items, self.val_items]).encode()).hexdigest()[:24]


def columns_for(spec: DataSpec, found: list[str]) -> tuple[str, dict]:
    """(form, {data key: column}) the data is read with: the recipe's keys, else detected from the columns."""
    if spec.messages_column:
        return "chat", {"messages_column": spec.messages_column}
    if spec.prompt_column or spec.response_column:
        chosen = {"prompt_column": spec.prompt_column or "prompt", "response_column": spec.response_column or
                  "response"}
        return "chat", {**chosen, **({"system_column": spec.system_column} if spec.system_column else {})}
    if spec.text_column != DataSpec.text_column or spec.text_column in found:
        return "text", {"text_column": spec.text_column}
    lower = {c.lower(): c for c in found}

    def guess(names):
        return next((lower[n] for n in names if n in lower), None)
    if guess(MESSAGES_GUESSES):
        return "chat", {"messages_column": guess(MESSAGES_GUESSES)}
    prompt, response = guess(PROMPT_GUESSES), guess(RESPONSE_GUESSES)
    if prompt and response:
        system = guess(SYSTEM_GUESSES)
        return "chat", {"prompt_column": prompt, "response_column": response,
                        **({"system_column": system} if system else {})}
    raise DataError(f"The studio cannot tell which columns hold the prompts and the answers. Columns found: "
                    f"{', '.join(found[:20]) or 'none'}. Set data.prompt_column and data.response_column, "
                    "data.messages_column (chat JSONL), or data.text_column (plain text for continued pretraining).")


def _messages(value, row: str) -> tuple[list[dict] | None, str | None]:
    """A cell of chat messages as [{"role", "content"}], or why it cannot be used."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None, "the messages are not a JSON list"
    if not isinstance(value, list) or not value:
        return None, "the messages are not a list of turns"
    out = []
    for turn in value:
        if not isinstance(turn, dict):
            return None, "a turn is not an object like {\"role\": ..., \"content\": ...}"
        role = turn.get("role", turn.get("from"))
        content = turn.get("content", turn.get("value"))
        if role not in ROLES:
            return None, (f"unknown role '{role}' (roles: system, user, assistant; ShareGPT: system, human, gpt)")
        out.append({"role": ROLES[role], "content": cell(content).strip()})
    while out and out[-1]["role"] != "assistant":
        out.pop()  # a last question without an answer teaches nothing
    if not any(m["role"] == "assistant" for m in out):
        return None, "no answer (no assistant turn)"
    if any(m["role"] == "assistant" and not m["content"] for m in out):
        return None, "empty response"
    return out, None


def read_checked(path: Path, expected: str, pick: Callable[[list[str]], tuple]):
    """(the table, (its form, {data key: column}), skipped, notes) of a .csv or .jsonl file whose columns
    `pick(found columns)` names and which has rows; DataError in words otherwise (`expected`: what to give)."""
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(f"{path.name} is not a .csv or .jsonl file. {expected}")
    frame, skipped, notes = read_table(path)
    found = [str(c) for c in frame.columns]
    form, columns = pick(found)
    for key, column in columns.items():
        if column not in found:
            raise missing_column(column, key, found, path.name)
    if frame.empty:
        raise DataError(f"{path.name} has a header but no rows of data.")
    return frame, (form, columns), skipped, notes


def held_out(items: list, spec: DataSpec, seed: int, read_validation: Callable[[Path], tuple]):
    """(training, validation, skipped, notes): validation from data.validation_path (read_validation(path) gives
    its (items, skipped, notes), each skipped row named with its file) or a seeded share of the items."""
    if spec.validation_path:
        val, skipped, notes = read_validation(existing(spec.validation_path))
        name = Path(spec.validation_path).name
        return items, val, [{**s, "item": f"{name} {s['item']}"} for s in skipped], notes
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    cut = max(1, round(len(items) * spec.validation_split))
    return [items[i] for i in order[cut:]], [items[i] for i in order[:cut]], [], []


def _read(path: Path, spec: DataSpec, form_columns: tuple[str, dict] | None = None):
    """(form, columns, items, skipped, notes) of one file."""
    frame, (form, columns), skipped, notes = read_checked(
        path, "For instruction tuning give a table with prompt and response columns, or JSON Lines with a "
        "'messages' list per line.", lambda found: form_columns or columns_for(spec, found))
    items = []
    for row, values in frame.iterrows():
        if form == "text":
            text = cell(values[columns["text_column"]]).strip()
            if text:
                items.append(text)
            else:
                skipped.append({"item": str(row), "reason": "empty text"})
            continue
        if "messages_column" in columns:
            messages, why = _messages(values[columns["messages_column"]], str(row))
        else:
            prompt = cell(values[columns["prompt_column"]]).strip()
            answer = cell(values[columns["response_column"]]).strip()
            system = cell(values[columns["system_column"]]).strip() if "system_column" in columns else ""
            why = "empty response" if not answer else "empty prompt" if not prompt else None
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        if why:
            skipped.append({"item": str(row), "reason": why})
        else:
            items.append(messages)
    return form, columns, items, skipped, notes


def load(spec: DataSpec, seed: int) -> ChatData:
    """The data checked and split; DataError in words when it cannot be used."""
    path = existing(spec.path)
    if path.is_dir():
        raise DataError(f"{path.name} is a folder. For instruction tuning give a .csv or .jsonl file.")
    form, columns, items, skipped, notes = _read(path, spec)
    items, duplicates = _unique(items)
    train, val, val_skipped, val_notes = held_out(items, spec, seed, lambda p: _read(p, spec, (form, columns))[2:])
    skipped, notes = skipped + val_skipped, notes + val_notes
    if len(train) < 2 or not val:
        reasons = Counter(s["reason"] for s in skipped)
        why = f" ({'; '.join(f'{n} × {r}' for r, n in reasons.most_common(3))} skipped)" if reasons else ""
        raise DataError(f"{path.name} has only {len(items)} usable example(s){why}; instruction tuning needs at "
                        "least a few, and a few dozen to show an effect.")
    warnings = list(notes)
    empty = sum(s["reason"] == "empty response" for s in skipped)
    if skipped:
        shown = listing([f"{s['item']} ({s['reason']})" for s in skipped])
        warnings.append(said("{n} row(s) were skipped: {which}, {empty} of them with an empty response.",
                             n=len(skipped), which=shown, empty=empty) if empty else
                        said("{n} row(s) were skipped: {which}.", n=len(skipped), which=shown))
    if duplicates:
        warnings.append(said("{n} exact duplicate(s) were left out: a copy in the validation set would make the "
                             "results look better than they are.", n=duplicates))
    if "prompt_column" in columns or "messages_column" in columns:
        if spec.prompt_column is None and spec.messages_column is None:
            warnings.append(said("Columns detected: {columns}.",
                                 columns=", ".join(f"data.{k} = '{v}'" for k, v in columns.items())))
    report = ChatReport(form, columns, {"examples": len(train)}, {"examples": len(val)}, skipped=skipped,
                        warnings=warnings, empty_responses=empty, duplicates=duplicates)
    return ChatData(form, train, val, report, _system_prompt(train) if form == "chat" else "")


def _unique(items: list) -> tuple[list, int]:
    seen, out = set(), []
    for item in items:
        key = json.dumps(item, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out, len(items) - len(out)


def _system_prompt(conversations: list[list[dict]]) -> str:
    systems = Counter(c[0]["content"] for c in conversations if c and c[0]["role"] == "system")
    return systems.most_common(1)[0][0] if systems else ""


def prompt_and_reference(conversation: list[dict]) -> tuple[list[dict], str]:
    """(the turns before the last answer, the last answer): what evaluation asks and what it compares with."""
    return conversation[:-1], conversation[-1]["content"]

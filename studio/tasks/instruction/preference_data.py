"""Preference data: a prompt with a better and a worse answer (pairs), or answers marked good or bad one by one (KTO's
unpaired form), read from a CSV or JSONL table and checked, with a report in words.

Cells are texts or chat messages (trl's forms: {"prompt", "chosen", "rejected"} as strings or message lists; a
chosen/rejected conversation without a prompt column shares its prompt turns). A recipe that names no column gets
them detected from the file's columns, as the chat task does. Rows that cannot be used are skipped with their row
or line number and the reason; nothing is dropped silently."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from studio.engine.data.errors import DataError, existing
from studio.engine.data.tables import cell
from studio.engine.data.words import listing
from studio.recipe import DataSpec
from studio.tasks.instruction.data import (PROMPT_GUESSES, RESPONSE_GUESSES, ROLES, SYSTEM_GUESSES, ChatReport,
                                           _system_prompt, _unique, held_out, read_checked)
from studio.words import said

CHOSEN_GUESSES = ("chosen", "better", "good", "preferred", "accepted", "winner", "chosen_response")
REJECTED_GUESSES = ("rejected", "worse", "bad", "dispreferred", "loser", "rejected_response")
LABEL_GUESSES = ("label", "good", "liked", "thumbs_up", "rating", "desirable")
GOOD = {"good", "1", "true", "yes", "up", "thumbs up", "👍", "positive", "desirable", "liked", "chosen", "better"}
BAD = {"bad", "0", "false", "no", "down", "thumbs down", "👎", "negative", "undesirable", "disliked", "rejected",
       "worse"}
PAIRED_KEYS = ("prompt_column", "chosen_column", "rejected_column", "system_column")
UNPAIRED_KEYS = ("prompt_column", "response_column", "label_column", "system_column")


@dataclass
class PreferenceData:
    """Examples split into training and validation: pairs {"prompt": turns, "chosen": text, "rejected": text}, or
    (unpaired) {"prompt": turns, "completion": text, "label": bool}."""
    paired: bool
    train_items: list[dict]
    val_items: list[dict]
    report: ChatReport
    system_prompt: str = ""
    form = "chat"  # what the chat task's evaluation and playground read

    def conversations(self, items: list[dict]) -> list[list[dict]]:
        """Each prompt with its better answer (pairs) or its good answers (unpaired): what sample answers are
        compared with."""
        return [item["prompt"] + [{"role": "assistant", "content": item["chosen"] if self.paired
                                   else item["completion"]}]
                for item in items if self.paired or item["label"]]

    def worse_answers(self, items: list[dict]) -> list[str]:
        """Each pair's worse answer, beside conversations(items) (none for answers marked one by one)."""
        return [item["rejected"] for item in items] if self.paired else []


def columns_for(spec: DataSpec, found: list[str]) -> tuple[bool, dict]:
    """(paired, {data key: column}) the data is read with: the recipe's keys, else detected from the columns."""
    lower = {c.lower(): c for c in found}

    def guess(names, taken=()):
        return next((lower[n] for n in names if n in lower and lower[n] not in taken), None)
    prompt = spec.prompt_column or guess(PROMPT_GUESSES)
    system = spec.system_column or (guess(SYSTEM_GUESSES) if prompt else None)
    common = {**({"prompt_column": prompt} if prompt else {}), **({"system_column": system} if system else {})}
    if spec.response_column:
        return False, {**common, "response_column": spec.response_column, "label_column": spec.label_column}
    chosen = spec.chosen_column or guess(CHOSEN_GUESSES)
    rejected = spec.rejected_column or guess(REJECTED_GUESSES, (chosen,))
    if chosen and rejected:
        return True, {**common, "chosen_column": chosen, "rejected_column": rejected}
    response, label = guess(RESPONSE_GUESSES), guess(LABEL_GUESSES)
    if prompt and response and label and not (spec.chosen_column or spec.rejected_column):
        return False, {**common, "response_column": response, "label_column": label}
    raise DataError(f"The studio cannot tell which columns hold the prompts and the better and worse answers. "
                    f"Columns found: {', '.join(found[:20]) or 'none'}. Set data.prompt_column, "
                    "data.chosen_column and data.rejected_column (pairs), or data.response_column and "
                    "data.label_column (answers marked good or bad, for KTO).")


def _turns(value) -> list[dict] | None:
    """A cell as chat turns: a text is one turn, JSON (or a JSON list) of role/content messages is several."""
    if isinstance(value, str) and value.lstrip().startswith("[{"):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, list):
        turns = []
        for turn in value:
            role = turn.get("role", turn.get("from")) if isinstance(turn, dict) else None
            if role not in ROLES:
                return None
            turns.append({"role": ROLES[role], "content": cell(turn.get("content", turn.get("value"))).strip()})
        return turns
    return [{"role": "", "content": cell(value).strip()}]


def _answer(value) -> tuple[list[dict], str] | None:
    """(the turns before the answer, the answer) of a chosen/rejected/response cell; None: not chat messages."""
    turns = _turns(value)
    if turns is None:
        return None
    if turns[-1]["role"] in ("", "assistant"):
        return [t for t in turns[:-1]], turns[-1]["content"]
    return turns, ""


def _prompt(value, system: str) -> list[dict] | None:
    turns = _turns(value)
    if turns is None:
        return None
    turns = [{"role": t["role"] or "user", "content": t["content"]} for t in turns if t["content"]]
    return ([{"role": "system", "content": system}] if system else []) + turns


def _label(value) -> bool | None:
    text = cell(value).strip().lower()
    return True if text in GOOD else False if text in BAD else None


def _row(values, columns: dict, paired: bool) -> tuple[dict | None, str | None]:
    """One example from a table row, or why it cannot be used."""
    system = cell(values[columns["system_column"]]).strip() if "system_column" in columns else ""
    answers = {}
    keys = ("chosen", "rejected") if paired else ("completion",)
    for key in keys:
        column = columns["chosen_column" if key == "chosen" else "rejected_column" if key == "rejected"
                         else "response_column"]
        parsed = _answer(values[column])
        if parsed is None:
            return None, f"the {key} cell is not a text or a list of chat messages"
        before, answers[key] = parsed
        if not answers[key]:
            return None, f"empty {'answer' if key == 'completion' else key + ' answer'}"
        answers[key + "_before"] = before
    if "prompt_column" in columns:
        prompt = _prompt(values[columns["prompt_column"]], system)
    else:  # trl's implicit prompt: the turns the answers share
        prompt = _prompt([t for t in answers[keys[0] + "_before"] if t["role"]], system)
    if prompt is None:
        return None, "the prompt is not a text or a list of chat messages"
    if not any(t["role"] == "user" for t in prompt):
        return None, "empty prompt"
    if paired:
        if answers["chosen"] == answers["rejected"]:
            return None, "the chosen and rejected answers are the same"
        return {"prompt": prompt, "chosen": answers["chosen"], "rejected": answers["rejected"]}, None
    label = _label(values[columns["label_column"]])
    if label is None:
        return None, f"the label '{cell(values[columns['label_column']])}' is not good/bad, 1/0 or true/false"
    return {"prompt": prompt, "completion": answers["completion"], "label": label}, None


def _read(path: Path, spec: DataSpec, read_as: tuple[bool, dict] | None = None):
    """(paired, columns, examples, skipped, notes) of one file."""
    frame, (paired, columns), skipped, notes = read_checked(
        path, "For preference tuning give a table with prompt, chosen and rejected columns (or JSON Lines in the "
        "form trl reads).", lambda found: read_as or columns_for(spec, found))
    for key in ("chosen_column", "rejected_column", "response_column"):
        column = columns.get(key)
        if column and not any(cell(v).strip() for v in frame[column]):
            raise DataError(f"Column '{column}' (data.{key}) of {path.name} is empty in every row. Preference "
                            "tuning needs the answers there; check that the column holds them.")
    examples = []
    for row, values in frame.iterrows():
        example, why = _row(values, columns, paired)
        if why:
            skipped.append({"item": str(row), "reason": why})
        else:
            examples.append(example)
    return paired, columns, examples, skipped, notes


def _refuse_unusable(name: str, examples: list, skipped: list, paired: bool, columns: dict) -> None:
    """DataError in words for data that leaves nothing to prefer."""
    reasons = Counter(s["reason"] for s in skipped)
    if paired and not examples and reasons["the chosen and rejected answers are the same"]:
        raise DataError(f"In every row of {name} the chosen and the rejected answer are the same, so there is "
                        "nothing to prefer. Put the better answer in the chosen column and a worse one in the "
                        "rejected column.")
    if not paired and examples and len({e["label"] for e in examples}) == 1:
        kind = "good" if examples[0]["label"] else "bad"
        raise DataError(f"Every answer in {name} is marked {kind} (column '{columns['label_column']}'). KTO learns "
                        "from both good and bad answers; add some of the other kind.")
    if len(examples) < 3:
        why = f" ({'; '.join(f'{n} × {r}' for r, n in reasons.most_common(3))} skipped)" if reasons else ""
        raise DataError(f"{name} has only {len(examples)} usable example(s){why}; preference tuning needs at least "
                        "a few, and a few dozen pairs to show an effect.")


def load(spec: DataSpec, seed: int) -> PreferenceData:
    """The data checked and split; DataError in words when it cannot be used."""
    path = existing(spec.path)
    if path.is_dir():
        raise DataError(f"{path.name} is a folder. For preference tuning give a .csv or .jsonl file.")
    paired, columns, examples, skipped, notes = _read(path, spec)
    _refuse_unusable(path.name, examples, skipped, paired, columns)
    examples, duplicates = _unique(examples)
    train, val, val_skipped, val_notes = held_out(examples, spec, seed,
                                                  lambda p: _read(p, spec, (paired, columns))[2:])
    skipped, notes = skipped + val_skipped, notes + val_notes
    if not val:
        raise DataError(f"{path.name} leaves no example for validation; give more rows or data.validation_path.")
    report = ChatReport("chat", columns, _counts(train, paired), _counts(val, paired), skipped=skipped,
                        warnings=_warnings(notes, skipped, duplicates, spec, columns),
                        empty_responses=sum(s["reason"].startswith("empty") and "answer" in s["reason"]
                                            for s in skipped),
                        duplicates=duplicates)
    return PreferenceData(paired, train, val, report, _system_prompt([e["prompt"] for e in train]))


def _counts(examples: list[dict], paired: bool) -> dict:
    if paired:
        return {"examples": len(examples), "pairs": len(examples)}
    good = sum(e["label"] for e in examples)
    return {"examples": len(examples), "good": good, "bad": len(examples) - good}


def _warnings(notes: list, skipped: list, duplicates: int, spec: DataSpec, columns: dict) -> list[str]:
    warnings = list(notes)
    if skipped:
        warnings.append(said("{n} row(s) were skipped: {which}.", n=len(skipped),
                             which=listing([f"{s['item']} ({s['reason']})" for s in skipped])))
    if duplicates:
        warnings.append(said("{n} exact duplicate(s) were left out: a copy in the validation set would make the "
                             "results look better than they are.", n=duplicates))
    named = (spec.chosen_column, spec.rejected_column, spec.response_column, spec.prompt_column)
    if not any(named):
        warnings.append(said("Columns detected: {columns}.",
                             columns=", ".join(f"data.{k} = '{v}'" for k, v in columns.items())))
    return warnings

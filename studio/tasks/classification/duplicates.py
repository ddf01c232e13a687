"""Duplicates and leakage in a classifier's data. Exact copies (the same file content; the same text once case,
spacing and Unicode forms are set aside) are found when the data loads; near copies (a re-encoded or resized photo,
a text with one word changed) need the frozen backbone's features, so they are found where a run has them (after
they are cached) and shown on the Data tab only when a run already cached that model's features for this data.
A validation example with a copy in training inflates the validation score; the same example under two labels is
worth a look. data.drop_duplicates: none (report only) | validation (leave out validation examples that copy a
training example) | all (keep one of each group: its training member when it has one)."""
from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.engine.data.archive import file_digest
from studio.engine.data.errors import DataError
from studio.runfolder import atomic
from studio.tasks.classification.data import LabelledData
from studio.words import said

# Cosine similarity of the backbone's features above which two examples are near copies, measured 2026-12-07 on
# the bundled examples and copies of them (bench/near_duplicates.py). Shapes (120 images, 96 px, EfficientNet-Lite0):
# distinct pairs reach 0.929 (same shape, other colour and place: a hard case); at 0.94 none of the 7,140 is flagged
# and copies are caught at 87 % (JPEG quality 70), 79 % (resized to 75 %), 60 % (3 px cropped). Help-desk texts
# (120, all-MiniLM-L6-v2): distinct pairs reach 0.852; at 0.94, 93 % of upper-cased copies, 60 % with one word
# dropped and 11 % with one word swapped for a random one are caught (such a swap often changes the meaning).
# Exact copies (the same bytes; the same text whatever its case and spacing) are found by hashing instead.
NEAR_THRESHOLD = 0.94
PAIRS_KEPT = 50  # pairs eval.json and the Data tab list (leaks first)
BLOCK = 256  # rows of the similarity matrix computed at once (256 × 100,000 examples: 100 MB)


@dataclass
class Pair:
    first: int  # indices into the training examples followed by the validation ones
    second: int
    kind: str  # exact | near
    similarity: float


def normalised(text: str) -> str:
    """A text as a person reads it: Unicode compatibility forms folded (NFKC), case and spacing set aside."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _everything(data: LabelledData) -> tuple[list[str], list[int], int]:
    return data.train_items + data.val_items, data.train_labels + data.val_labels, len(data.train_items)


def exact_pairs(data: LabelledData) -> list[Pair]:
    """Each example that copies an earlier one (training first), paired with the first of its group."""
    items, _, _ = _everything(data)
    first: dict[str, int] = {}
    pairs = []
    for index, item in enumerate(items):
        key = file_digest(item) if data.items_are_files else normalised(item)
        if key in first:
            pairs.append(Pair(first[key], index, "exact", 1.0))
        else:
            first[key] = index
    return pairs


def near_pairs(features: np.ndarray, exact: list[Pair], n_train: int,
               threshold: float = NEAR_THRESHOLD) -> list[Pair]:
    """Each example (not already an exact copy) paired with its most similar earlier example above the threshold:
    for a validation example, its most similar training example when one is above it (the leak counts most)."""
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    copies = np.zeros(len(x), dtype=bool)
    copies[[p.second for p in exact]] = True  # compared with the first of an exact group only
    pairs = []
    for start in range(0, len(x), BLOCK):
        sims = x[start:start + BLOCK] @ x.T
        for row, sim in enumerate(sims):
            index = start + row
            if copies[index] or index == 0:
                continue
            earlier = np.where(copies[:index], -1.0, sim[:index])
            best = int(earlier[:n_train].argmax()) if index >= n_train else -1
            if best < 0 or earlier[best] < threshold:
                best = int(earlier.argmax())
            if earlier[best] >= threshold:
                pairs.append(Pair(best, index, "near", round(float(earlier[best]), 4)))
    return pairs


def leaked(data: LabelledData, pairs: list[Pair]) -> set[int]:
    """Indices (into the combined list) of validation examples with a copy in training."""
    n_train = len(data.train_items)
    return {p.second for p in pairs if p.first < n_train <= p.second}


def where(data: LabelledData, index: int) -> dict:
    """An example as a person finds it (its path in the data folder, or its table row: LabelledData's keys), its
    split and label; `item`: the file or text itself, for the page to show."""
    n_train = len(data.train_items)
    split, local = ("training", index) if index < n_train else ("validation", index - n_train)
    names = data.train_keys if split == "training" else data.val_keys
    items = data.train_items if split == "training" else data.val_items
    labels = data.train_labels if split == "training" else data.val_labels
    name = names[local] if local < len(names) else items[local]
    return {"example": name, "split": split, "label": data.classes[labels[local]], "item": items[local]}


def summary(data: LabelledData, pairs: list[Pair], near_found: bool) -> dict:
    """eval.json's `duplicates` (and the data report's): counts, then the pairs, leaks and label conflicts first.
    `near` is None when no features were at hand to compare."""
    leaks = leaked(data, pairs)
    rows = []
    for p in pairs:
        a, b = where(data, p.first), where(data, p.second)
        rows.append({"a": a, "b": b, "kind": p.kind, "similarity": p.similarity,
                     "across_split": p.first < len(data.train_items) <= p.second,
                     "same_label": a["label"] == b["label"]})
    rows.sort(key=lambda r: (not r["across_split"], r["same_label"], -r["similarity"]))
    why = {} if near_found else {"near_reason": "near copies are found on the pretrained model's cached features, "
                                                "which feature extraction and the fine-tuning strategies read; "
                                                "training from scratch reads none"}
    return {**why, "exact": sum(p.kind == "exact" for p in pairs),
            "near": sum(p.kind == "near" for p in pairs) if near_found else None,
            "across_split": len(leaks), "different_labels": sum(not r["same_label"] for r in rows),
            "threshold": NEAR_THRESHOLD, "examples": rows[:PAIRS_KEPT]}


def warning(found: dict) -> str | None:
    """The plain-language warning of validation examples copied from training (none once they were dropped)."""
    if not found.get("across_split") or found.get("dropped"):
        return None
    return said("{n} validation examples have a copy in training: the validation score is higher than it would be "
                "on new data. data.drop_duplicates: validation leaves them out.", n=found["across_split"])


def _dropped(data: LabelledData, pairs: list[Pair], mode: str) -> set[int]:
    if mode == "validation":
        return leaked(data, pairs)
    return {p.second for p in pairs}  # "all": each pair's later member (the first of a group is kept)


def drop(data: LabelledData, pairs: list[Pair], mode: str) -> int:
    """Leaves the duplicates out of `data` (in place) as data.drop_duplicates asks; returns how many."""
    gone = _dropped(data, pairs, mode) if mode != "none" else set()
    if not gone:
        return 0
    n_train = len(data.train_items)
    keep_train = [i for i in range(n_train) if i not in gone]
    keep_val = [i for i in range(len(data.val_items)) if i + n_train not in gone]
    if not keep_val:
        raise DataError("Every validation example is a copy of a training example: nothing would be left to "
                        "measure the model. Use data.drop_duplicates: none, or give other validation data.")
    def pick(values, kept):
        return [values[i] for i in kept] if values else values
    data.train_items, data.train_labels = pick(data.train_items, keep_train), pick(data.train_labels, keep_train)
    data.train_keys = pick(data.train_keys, keep_train)
    data.val_items, data.val_labels = pick(data.val_items, keep_val), pick(data.val_labels, keep_val)
    data.val_keys, data.val_groups = pick(data.val_keys, keep_val), pick(data.val_groups, keep_val)
    report = data.report
    report.train_counts = {c: data.train_labels.count(i) for i, c in enumerate(data.classes)}
    report.validation_counts = {c: data.val_labels.count(i) for i, c in enumerate(data.classes)}
    report.warnings.append(said("{n} duplicate example(s) were left out (data.drop_duplicates: {mode}).",
                                n=len(gone), mode=mode))
    return len(gone)


def at_load(data: LabelledData, mode: str) -> LabelledData:
    """Exact duplicates, found as the data loads: reported in the data report, left out as asked."""
    pairs = exact_pairs(data)
    data.report.duplicates = summary(data, pairs, near_found=False)
    data.report.duplicates["dropped"] = drop(data, pairs, mode)
    _warn(data, data.report.duplicates)
    return data


def _warn(data: LabelledData, found: dict, before: dict | None = None) -> None:
    """The leak's warning in the data report, in place of the one `before` gave."""
    old = warning(before) if before else None
    data.report.warnings = [w for w in data.report.warnings if w != old] + ([warning(found)] if warning(found) else [])


def merged(exact: dict, near: dict) -> dict:
    """The load's exact duplicates (counted before any was dropped) with the near ones found on the features."""
    return {"exact": exact["exact"], "near": near["near"], "across_split": exact["across_split"] + near["across_split"],
            "different_labels": exact["different_labels"] + near["different_labels"], "threshold": NEAR_THRESHOLD,
            "dropped": exact.get("dropped", 0) + near.get("dropped", 0),
            "examples": sorted(exact["examples"] + near["examples"], key=lambda r: (
                not r["across_split"], r["same_label"], -r["similarity"]))[:PAIRS_KEPT]}


def _near_file(cache_dir: Path, model: str, fingerprint: str) -> Path:
    return cache_dir / f"near-{hashlib.sha256((model + fingerprint).encode()).hexdigest()[:24]}.json"


def in_run(data: LabelledData, train: np.ndarray, val: np.ndarray, mode: str, model: str,
           cache_dir: Path | None) -> tuple[list[int], list[int]]:
    """Near duplicates of the loaded data, found on its cached features (exact copies were found as it loaded):
    the data report's `duplicates` completed, near copies left out as asked, the pairs kept beside the feature
    cache (cache_dir; None: not kept) for the Data tab. Returns the rows of the features (training, validation)
    that remain: the cache keeps the features of the data as loaded, a run leaves rows out after reading them."""
    near = near_pairs(np.concatenate([train, val]), exact_pairs(data), len(train))
    if cache_dir is not None:
        with atomic(_near_file(cache_dir, model, data.fingerprint())) as tmp:
            tmp.write_text(json.dumps([[p.first, p.second, p.similarity] for p in near]))
    n_train = len(data.train_items)
    gone = _dropped(data, near, mode) if mode != "none" else set()
    found = summary(data, near, near_found=True)
    found["dropped"] = drop(data, near, mode)
    before = data.report.duplicates or summary(data, [], near_found=False)
    data.report.duplicates = merged(before, found)
    _warn(data, data.report.duplicates, before)
    return ([i for i in range(n_train) if i not in gone],
            [i for i in range(len(val)) if i + n_train not in gone])


def cached_near(data: LabelledData, model: str, cache_dir: Path) -> dict | None:
    """The data report's duplicates with the near copies a run found for this model and this data, when one did
    (the Data tab never runs a model); None otherwise."""
    if not model or not data.report.duplicates:
        return None
    try:
        found = json.loads(_near_file(cache_dir, model, data.fingerprint()).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet (or unreadable: the next run writes it again)
        return None
    near = [Pair(int(a), int(b), "near", float(s)) for a, b, s in found]
    return merged(data.report.duplicates, summary(data, near, near_found=True))

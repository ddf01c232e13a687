"""Labelled examples for classification, whatever they are (file paths or texts): the classes checked, a
stratified split with a fixed seed, and a report in plain words (counts, skipped items, warnings)."""
from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from studio.engine.data.archive import file_digest
from studio.engine.data.errors import DataError, existing
from studio.engine.data.folders import MIN_PER_CLASS, Loaded
from studio.engine.data.tables import MISSING_VALUES, TABLE_SUFFIXES, cell, missing_column, read_table
from studio.engine.data.words import listing
from studio.recipe import DataSpec
from studio.tasks.classification import corrections
from studio.words import said

IMBALANCE_RATIO = 3.0
FEW_PER_CLASS = 20
MAX_CLASSES = 1000


@dataclass
class DataReport:
    modality: str  # the task's modality: image, text, audio, …
    classes: list[str]
    train_counts: dict[str, int]
    validation_counts: dict[str, int]
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"item": ..., "reason": ...}
    warnings: list[str] = field(default_factory=list)
    class_weighted: bool = False  # the training loss weights the classes (set by the task that trains)
    duplicates: dict | None = None  # exact (and, in a run, near) copies: duplicates.summary

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LabelledData:
    """Examples (file paths or texts) with labels as indices into `classes`, split into training and validation."""
    classes: list[str]
    train_items: list[str]
    train_labels: list[int]
    val_items: list[str]
    val_labels: list[int]
    report: DataReport
    items_are_files: bool
    val_groups: list[str] | None = None  # data.group_column's value per validation example, for per-group results
    # how each example is named to people (eval.json's label_issues, data.corrections): see Loaded.keys
    train_keys: list[str | int] = field(default_factory=list)
    val_keys: list[str | int] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Identifies the exact examples (file contents for files), for the feature cache."""
        digest = hashlib.sha256()
        for items in (self.train_items, self.val_items):
            for item in items:
                digest.update(file_digest(item).encode() if self.items_are_files else item.encode("utf-8"))
        digest.update(json.dumps([self.train_labels, self.val_labels]).encode())
        return digest.hexdigest()[:24]


# An item reader for tables: (the cell's value, the row's name) → (example, why it is skipped, conversion note).
ItemReader = Callable[[str, str], tuple[str | None, str | None, str | None]]


def load_table(path: Path, spec: DataSpec, item_key: str, read_item: ItemReader) -> Loaded:
    """Examples from a .csv/.jsonl: the column named by data.<item_key> and data.label_column (and
    data.group_column); rows without a label or with an unusable example are skipped with the reason."""
    if not path.is_file():
        raise DataError(f"{path.name} is not a file. Give a .csv or .jsonl file.")
    frame, skipped, notes = read_table(path)
    item_column = getattr(spec, item_key)
    if item_column == spec.label_column:
        raise DataError(f"data.{item_key} and data.label_column are both '{item_column}'. Choose the column "
                        "with the examples and a different column with the labels.")
    columns = [str(c) for c in frame.columns]
    wanted = [(item_key, item_column), ("label_column", spec.label_column)]
    if spec.group_column:
        wanted.append(("group_column", spec.group_column))
    for key, column in wanted:
        if column not in columns:
            raise missing_column(column, key, columns, path.name)
    if frame.empty:
        raise DataError(f"{path.name} has a header but no rows of data.")
    loaded = Loaded(path.name, [], [], skipped, list(notes), [] if spec.group_column else None)
    groups = frame[spec.group_column] if spec.group_column else [None] * len(frame)
    converted = []
    for number, (row, value, label, group) in enumerate(zip(frame.index, frame[item_column],
                                                            frame[spec.label_column], groups), start=1):
        value, label = cell(value), cell(label).strip()
        if value.strip() == item_column and label == spec.label_column:
            loaded.skipped.append({"item": row, "reason": "a repeated header line"})
            continue
        if label.lower() in MISSING_VALUES:
            loaded.skipped.append({"item": row, "reason": "no label"})
            continue
        item, reason, note = read_item(value, row)
        if reason:
            loaded.skipped.append({"item": row, "reason": reason})
            continue
        if note:
            converted.append(f"{row} ({note})")
        loaded.items.append(item)
        loaded.names.append(label)
        loaded.keys.append(number)
        if loaded.groups is not None:
            loaded.groups.append(cell(group).strip() or "(none)")
    if converted:
        loaded.notes.append(f"{len(converted)} example(s) were converted: {listing(converted)}.")
    return loaded


def _stratified_split(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, val): each class keeps at least one example on each side."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    train, val = [], []
    for indices in by_class.values():
        rng.shuffle(indices)
        n_val = min(len(indices) - 1, max(1, round(len(indices) * fraction)))
        val.extend(indices[:n_val])
        train.extend(indices[n_val:])
    return sorted(train), sorted(val)


def _check_classes(loaded: Loaded, spec: DataSpec, from_table: bool) -> pd.Series:
    """Counts per class; DataError when the classes cannot make a classifier."""
    if not loaded.items:
        reasons = Counter(s["reason"] for s in loaded.skipped)
        what = "rows" if from_table else "files"
        raise DataError(f"No usable examples in {loaded.source}: all {len(loaded.skipped)} {what} were skipped "
                        f"({listing([f'{n} × {r}' for r, n in reasons.most_common()])}).")
    counts = pd.Series(loaded.names, dtype=str).value_counts()
    mostly_unique = from_table and len(counts) > 10 and (counts == 1).mean() > 0.5
    column_hint = (f" Most labels occur only once: is '{spec.label_column}' (data.label_column) really the column "
                   "with the labels?") if mostly_unique else ""
    if len(counts) > MAX_CLASSES:
        raise DataError(f"{loaded.source} has {len(counts):,} different labels; the studio trains at most "
                        f"{MAX_CLASSES:,} classes.{column_hint}")
    if len(loaded.items) < 2 or (len(counts) > 1 and len(loaded.items) < 2 * MIN_PER_CLASS):
        raise DataError(f"{loaded.source} has only {len(loaded.items)} usable example(s). A classifier needs at least "
                        f"two classes with at least {MIN_PER_CLASS} examples each.")
    if len(counts) < 2:
        raise DataError(f"The data has only one class ('{counts.index[0]}'). A classifier needs at least two "
                        "classes, each with examples.")
    too_few = sorted(counts[counts < MIN_PER_CLASS].index)
    if too_few:
        others = f" ({len(too_few) - 1} other class(es) too)" if len(too_few) > 1 else ""
        raise DataError(f"Class '{too_few[0]}' has fewer than {MIN_PER_CLASS} usable examples (it has "
                        f"{counts[too_few[0]]}){others}{' after skipping unusable ones' if loaded.skipped else ''}. "
                        f"Add more examples of it or remove that class.{column_hint}")
    return counts


# Reads one data source (data.path or data.validation_path) into Loaded; the task supplies it.
SourceReader = Callable[[Path], Loaded]


def assemble(spec: DataSpec, modality: str, seed: int, read: SourceReader, items_are_files: bool) -> LabelledData:
    """Reads data.path (and data.validation_path) with the task's reader, checks the classes, splits, reports."""
    def read_source(spec_path: str) -> Loaded:
        path = existing(spec_path)
        try:
            return read(path)
        except PermissionError:
            raise DataError(f"The studio may not read {path.name} (permission denied).") from None

    loaded = read_source(spec.path)
    val = read_source(spec.validation_path) if spec.validation_path else None
    if val is not None:
        val.keys = [f"{corrections.VALIDATION}{key}" for key in val.keys]
    if spec.corrections:
        loaded.notes.append(corrections.apply(spec.corrections, loaded, *([val] if val else [])))
    from_table = Path(spec.path).suffix.lower() in TABLE_SUFFIXES
    counts = _check_classes(loaded, spec, from_table)
    items, names, skipped, notes = loaded.items, loaded.names, list(loaded.skipped), list(loaded.notes)
    classes = sorted(counts.index)
    index = {name: i for i, name in enumerate(classes)}
    labels = [index[name] for name in names]
    if val is not None:
        unknown = sorted(set(val.names) - set(classes))
        if unknown:
            raise DataError(f"The validation data has class '{unknown[0]}', which the training data lacks. "
                            "Use the same class names in both.")
        skipped += [{"item": f"validation: {s['item']}", "reason": s["reason"]} for s in val.skipped]
        notes += val.notes
        train_items, train_labels = items, labels
        val_items, val_labels = val.items, [index[name] for name in val.names]
        val_groups, train_keys, val_keys = val.groups, loaded.keys, val.keys
        if not val_items:
            raise DataError("The validation data has no usable examples.")
    else:
        train_idx, val_idx = _stratified_split(labels, spec.validation_split, seed)
        train_items, train_labels = [items[i] for i in train_idx], [labels[i] for i in train_idx]
        val_items, val_labels = [items[i] for i in val_idx], [labels[i] for i in val_idx]
        val_groups = [loaded.groups[i] for i in val_idx] if loaded.groups is not None else None
        train_keys, val_keys = [loaded.keys[i] for i in train_idx], [loaded.keys[i] for i in val_idx]
    report = DataReport(
        modality=modality, classes=classes,
        train_counts={c: train_labels.count(i) for i, c in enumerate(classes)},
        validation_counts={c: val_labels.count(i) for i, c in enumerate(classes)},
        skipped=skipped)
    report.warnings = notes + _warnings(report, counts)
    return LabelledData(classes, train_items, train_labels, val_items, val_labels, report, items_are_files,
                        val_groups, train_keys, val_keys)


def _warnings(report: DataReport, counts: pd.Series) -> list[str]:
    out = []
    if report.skipped:
        named = [f"{s['item']}: {s['reason']}" for s in report.skipped]
        out.append(said("{n} file(s) or row(s) were skipped because they could not be used ({which}). See the "
                        "list of skipped items.", n=len(report.skipped), which=listing(named)))
    most, least = counts.idxmax(), counts.idxmin()
    if counts[most] >= IMBALANCE_RATIO * counts[least]:
        out.append(said("The classes are imbalanced: '{most}' has {many} examples but '{least}' has only {few}. "
                        "The model may favour '{most}'; add examples of the smaller classes if you can.",
                        most=most, many=counts[most], least=least, few=counts[least]))
    if counts.min() < FEW_PER_CLASS:
        out.append(said("Some classes have fewer than {n} examples. Feature extraction works best with so few; "
                        "expect the accuracy to vary from run to run.", n=FEW_PER_CLASS))
    return out

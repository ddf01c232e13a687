"""data.corrections: a .csv with columns example,label that relabels examples or leaves them out ("exclude") as
the data loads. Examples are named as eval.json's label_issues names them: a file's path relative to the class
folders' folder, or a table's 1-based row number (examples of data.validation_path: "validation: " before it).
The user's own files are never touched: the corrections apply to the examples in memory."""
from __future__ import annotations

from pathlib import Path

from studio.engine.data.errors import DataError, existing
from studio.engine.data.folders import Loaded
from studio.engine.data.tables import cell, read_table
from studio.engine.data.words import listing
from studio.words import said

EXCLUDE = "exclude"
COLUMNS = ("example", "label")
VALIDATION = "validation: "  # before the names of data.validation_path's examples


def read(spec_path: str) -> dict[str, str]:
    """{example's name: new label or "exclude"} from the file; DataError in words when it cannot be used."""
    path = existing(spec_path)
    if path.suffix.lower() != ".csv" or not path.is_file():
        raise DataError(f"The corrections file {path.name} must be a .csv file with the columns example,label.")
    frame, _, _ = read_table(path)
    columns = [str(c).strip().lower() for c in frame.columns]
    if columns[:2] != list(COLUMNS) or len(columns) != 2:
        raise DataError(f"The corrections file {path.name} has the columns {', '.join(columns) or 'none'}; it must "
                        "have exactly two: example,label (label: a class name, or 'exclude' to leave it out).")
    out: dict[str, str] = {}
    for row, (example, label) in enumerate(zip(frame.iloc[:, 0], frame.iloc[:, 1]), start=2):
        example, label = cell(example).strip(), cell(label).strip()
        if not example or not label:
            raise DataError(f"Row {row} of {path.name} has an empty example or label; every row needs both.")
        if example in out and out[example] != label:
            raise DataError(f"{path.name} names example '{example}' twice, with different labels "
                            f"('{out[example]}' and '{label}'); keep one row for it.")
        out[example] = label
    return out


def apply(spec_path: str, *sources: Loaded) -> str:
    """Relabels or drops, in place, the examples of each source that the corrections file names;
    returns what it did, in words, for the data report. DataError when it names an example the data lacks or a
    label that is not one of the data's classes."""
    fixes = read(spec_path)
    name = Path(spec_path).name
    classes = {label for loaded in sources for label in loaded.names}
    unknown = sorted({label for label in fixes.values() if label != EXCLUDE and label not in classes})
    if unknown:
        raise DataError(f"{name} relabels examples as {listing([repr(u) for u in unknown])}, which is not one of "
                        f"the data's classes ({listing(sorted(classes))}); use one of them, or 'exclude'.")
    seen: set[str] = set()
    relabelled = 0
    for loaded in sources:
        kept = []
        for i, key in enumerate(loaded.keys):
            label = fixes.get(str(key))
            if label is None:
                kept.append(i)
                continue
            seen.add(str(key))
            if label != EXCLUDE:
                relabelled += loaded.names[i] != label
                loaded.names[i] = label
                kept.append(i)
        for column in ("items", "names", "keys", "groups"):
            values = getattr(loaded, column)
            if values is not None:
                setattr(loaded, column, [values[i] for i in kept])
    missing = sorted(set(fixes) - seen)
    if missing:
        raise DataError(f"{name} names {len(missing)} example(s) the data does not have "
                        f"({listing(missing)}). Name examples as the list of label issues does: a file's path "
                        "relative to the data folder (e.g. cats/001.jpg), or a table's row number (1 = first row).")
    excluded = sum(label == EXCLUDE for label in fixes.values())
    return said("Corrections from {name}: {relabelled} example(s) relabelled and {excluded} left out; your data "
                "files are unchanged.", name=name, relabelled=relabelled, excluded=excluded)

"""A folder of class sub-folders (or a .zip of one), whatever files it holds: each file is checked by the task's
inspector, unusable ones are skipped with the reason, and a wrapper folder around the classes is stepped into."""
from __future__ import annotations

import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from studio.engine.data.archive import extract_zip
from studio.engine.data.errors import DataError
from studio.engine.data.tables import read_table
from studio.engine.data.words import listing


MIN_PER_CLASS = 2  # a class needs at least this many examples to be learnt and measured


@dataclass
class Loaded:
    """What one data source gave: examples, their class names, what was skipped, and notes for the report."""
    source: str  # the name the user knows (file or folder name)
    items: list[str]
    names: list[str]
    skipped: list[dict[str, str]]
    notes: list[str] = field(default_factory=list)
    groups: list[str] | None = None  # data.group_column's value per example
    # how each example is named to people and in corrections files: its path relative to the class folders'
    # folder, or its 1-based row number among a table's rows of data
    keys: list[str | int] = field(default_factory=list)


@dataclass(frozen=True)
class FileKind:
    """What a task's class folders hold."""
    noun: str  # "image", "clip": for messages
    extensions: frozenset[str]
    inspect: Callable[[Path], tuple[str | None, str | None]]  # (why it cannot be used, how it is converted)
    converted: str  # what the report says of converted files, e.g. "were converted to ordinary RGB colour images"
    advice: str  # how to add usable files, e.g. "Add readable .jpg or .png images"
    unreadable: str = "this is not a file we can read"  # said of one file refused on its own


def visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX")))


def visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def class_root(folder: Path) -> Path:
    """A zip of 'pets/cat/…, pets/dog/…' has one wrapper folder: step into it."""
    while True:
        dirs = visible_dirs(folder)
        if len(dirs) == 1 and not visible_files(folder) and visible_dirs(dirs[0]):
            folder = dirs[0]
        else:
            return folder


def _no_classes(root: Path, source: str, kind: FileKind) -> DataError:
    files = visible_files(root)
    archives = [p.name for p in files if p.suffix.lower() == ".zip"]
    if archives:
        return DataError(f"{source} holds another .zip ({archives[0]}) instead of class folders; archives inside "
                         f"archives are not opened. Unzip {archives[0]} and upload a .zip of the folder inside.")
    usable = sum(p.suffix.lower() in kind.extensions for p in files)
    found = f" (it has {usable} {kind.noun}(s) directly inside, but no sub-folders)" if usable else ""
    return DataError(f"No class folders found in {source}{found}. Put the {kind.noun}s of each class in its own "
                     "sub-folder (for example cats/ and dogs/), then upload that folder or a .zip of it.")


def scan(folder: Path, kind: FileKind, source: str | None = None) -> Loaded:
    """The files of a folder of class sub-folders, by class; unusable files skipped with the reason."""
    source = source or folder.name
    root = class_root(folder)
    class_dirs = visible_dirs(root)
    if not class_dirs:
        raise _no_classes(root, source, kind)
    loaded = Loaded(source, [], [], [])
    converted = []
    for class_dir in class_dirs:
        files = [p for p in sorted(class_dir.rglob("*"))
                 if p.is_file() and not any(part.startswith(".") for part in p.relative_to(class_dir).parts)]
        if not files:
            raise DataError(f"The class folder '{class_dir.name}' in {source} is empty. Add at least "
                            f"{MIN_PER_CLASS} {kind.noun}s to it, or delete the folder.")
        usable = 0
        for path in files:
            relative = str(path.relative_to(root))
            if path.suffix.lower() == ".zip":
                reason, note = "a .zip inside the data (archives inside archives are not opened)", None
            elif path.suffix.lower() not in kind.extensions:
                reason, note = f"not {'an' if kind.noun[0] in 'aeiou' else 'a'} {kind.noun} file type", None
            else:
                reason, note = kind.inspect(path)
            if reason:
                loaded.skipped.append({"item": relative, "reason": reason})
                continue
            if note:
                converted.append(f"{relative} ({note})")
            loaded.items.append(str(path))
            loaded.names.append(class_dir.name)
            loaded.keys.append(relative)
            usable += 1
        if not usable:
            reasons = Counter(s["reason"] for s in loaded.skipped if s["item"].startswith(class_dir.name + os.sep))
            raise DataError(f"Class '{class_dir.name}' in {source} has no usable {kind.noun}s: all {len(files)} "
                            f"file(s) in it were skipped ({listing([f'{n} × {r}' for r, n in reasons.most_common()])})"
                            f". {kind.advice} to it, or delete the folder.")
    if converted:
        loaded.notes.append(f"{len(converted)} {kind.noun}(s) {kind.converted}: {listing(converted)}.")
    return loaded


def load(path: Path, kind: FileKind, uploads_dir: Path) -> Loaded:
    """A folder of class folders, or a .zip of one (unpacked into the workspace's uploads)."""
    if path.suffix.lower() == ".zip" and path.is_file():
        return scan(extract_zip(path, uploads_dir), kind, source=path.name)
    if not path.is_dir():
        raise DataError(f"{path.name} is not a folder or a .zip. Give a folder of class sub-folders of "
                        f"{kind.noun}s, a .zip of one, or a .csv / .jsonl table that lists them.")
    return scan(path, kind)


def holds(path: Path, extensions) -> bool:
    """Whether a folder or a .zip holds mostly files of these types (a .zip is read from its list of names, never
    unpacked): the Data tab sends an upload to the task whose files it holds."""
    try:
        if path.suffix.lower() == ".zip" and path.is_file():
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
        elif path.is_dir():
            names = [str(p) for p in path.rglob("*") if p.is_file()]
        else:
            return False
    except (OSError, zipfile.BadZipFile):
        return False
    names = [n for n in names if not any(part.startswith((".", "__MACOSX")) for part in Path(n).parts)]
    return bool(names) and sum(Path(n).suffix.lower() in extensions for n in names) > len(names) / 2


def file_reader(table: Path, kind: FileKind):
    """Reads a table's path cell: the file, relative to the table's folder, checked like a class folder's."""
    def read(value: str, row: str):
        value = value.strip()
        if not value:
            return None, "no file named", None
        path = Path(value).expanduser()
        path = path if path.is_absolute() else table.parent / path
        if not path.is_file():
            return None, f"file not found: {value}", None
        if path.suffix.lower() not in kind.extensions:
            return None, f"not {'an' if kind.noun[0] in 'aeiou' else 'a'} {kind.noun} file type: {value}", None
        reason, note = kind.inspect(path)
        return str(path), reason, note
    return read


def lists_files(path: Path, extensions) -> bool:
    """Whether a table has a column whose first values name files of these types."""
    try:
        frame = read_table(path)[0].head(20)
    except Exception:  # unreadable: not ours to explain here (the check that follows does)
        return False
    for column in frame.columns:
        values = [str(v) for v in frame[column].dropna()]
        if values and sum(Path(v).suffix.lower() in extensions for v in values) > len(values) / 2:
            return True
    return False

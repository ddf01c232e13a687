"""Loading, validating and splitting the user's data, with a plain-language report.

Images come as a folder of class sub-folders or a .zip of one; text as .csv or .jsonl. Unreadable files are
skipped and listed; problems the user must fix raise DataError with a message that says how.
"""
from __future__ import annotations

import hashlib
import json
import random
import zipfile
from io import StringIO
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image

from studio.recipe import DataSpec

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
TEXT_EXTENSIONS = {".csv", ".jsonl"}
MIN_PER_CLASS = 2
IMBALANCE_RATIO = 3.0
FEW_PER_CLASS = 20
ZIP_MAX_BYTES = 4 * 1024**3  # uncompressed, guards against zip bombs
ZIP_MAX_FILES = 200_000


class DataError(ValueError):
    """Data the studio cannot train on; the message says what is wrong and how to fix it."""


@dataclass
class DataReport:
    kind: str  # "image" | "text"
    classes: list[str]
    train_counts: dict[str, int]
    validation_counts: dict[str, int]
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"item": ..., "reason": ...}
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Dataset:
    """Examples as image paths or texts, labels as indices into `classes`."""
    kind: str
    classes: list[str]
    train_items: list[str]
    train_labels: list[int]
    val_items: list[str]
    val_labels: list[int]
    report: DataReport
    val_groups: list[str] | None = None  # data.group_column's value per validation example, for per-group results

    def fingerprint(self) -> str:
        """Identifies the exact examples (file contents for images), for the feature cache."""
        digest = hashlib.sha256()
        for items in (self.train_items, self.val_items):
            for item in items:
                digest.update(file_digest(item).encode() if self.kind == "image" else item.encode("utf-8"))
        digest.update(json.dumps([self.train_labels, self.val_labels]).encode())
        return digest.hexdigest()[:24]


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's content, read in chunks so a large upload never sits in memory whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- images -------------------------------------------------------------------------------------------------------

def open_rgb(path: str | Path) -> Image.Image:
    """Opens any readable image as 8-bit RGB (CMYK, palette, alpha and 16-bit images included)."""
    with Image.open(path) as image:
        image.load()
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            # 16-bit and float images: stretch to 8 bits instead of clipping everything to white.
            array = np.asarray(image, dtype=np.float32)
            peak = float(array.max()) or 1.0
            image = Image.fromarray((array * (255.0 / peak)).clip(0, 255).astype(np.uint8))
        if image.mode in ("P", "PA", "LA", "RGBA") or "transparency" in image.info:
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        return image.convert("RGB")


def _check_image(path: Path) -> str | None:
    """None if the file decodes as an image, else the reason in words."""
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    try:
        open_rgb(path)
    except Image.DecompressionBombError:
        return "image is too large (dimensions over Pillow's safety limit)"
    except Exception:  # PIL raises many types for broken files; each one just means "unreadable"
        return "not a readable image (damaged, cut short, or not really an image)"
    return None


def extract_zip(archive: Path, dest_root: Path) -> Path:
    """Unpacks a .zip into a folder named by its content hash under dest_root; refuses unsafe entries."""
    dest = dest_root / file_digest(archive)[:16]
    if (dest / ".complete").exists():
        return dest
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise DataError(f"{archive.name} is not a valid .zip file. Re-create it with your system's "
                        "'compress' command and upload it again.") from None
    with zf:
        members = zf.infolist()
        if len(members) > ZIP_MAX_FILES or sum(m.file_size for m in members) > ZIP_MAX_BYTES:
            raise DataError(f"{archive.name} unpacks to more than {ZIP_MAX_FILES} files or "
                            f"{ZIP_MAX_BYTES // 1024**3} GB; upload a smaller archive.")
        dest.mkdir(parents=True, exist_ok=True)
        for member in members:
            name = PurePosixPath(member.filename.replace("\\", "/"))
            is_link = (member.external_attr >> 16) & 0o170000 == 0o120000
            if name.is_absolute() or ".." in name.parts or is_link:
                raise DataError(f"{archive.name} contains an unsafe entry '{member.filename}' (absolute path, "
                                "'..' or a link). Re-create the archive from a plain folder.")
            if member.is_dir():
                continue
            target = dest.joinpath(*name.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as out:
                out.write(src.read())
    (dest / ".complete").touch()
    return dest


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX")))


def _class_root(folder: Path) -> Path:
    """A zip of 'pets/cat/…, pets/dog/…' has one wrapper folder: step into it."""
    while True:
        dirs = _visible_dirs(folder)
        files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
        if len(dirs) == 1 and not files and _visible_dirs(dirs[0]):
            folder = dirs[0]
        else:
            return folder


def scan_image_folder(folder: Path) -> tuple[list[str], list[str], list[dict[str, str]]]:
    """Returns (paths, class names per path, skipped) for a folder of class sub-folders."""
    root = _class_root(folder)
    class_dirs = _visible_dirs(root)
    if not class_dirs:
        raise DataError(f"No class folders found in {folder.name}. Put the images of each class in its own "
                        "sub-folder (for example cats/ and dogs/), then upload that folder or a .zip of it.")
    paths, names, skipped = [], [], []
    for class_dir in class_dirs:
        for path in sorted(class_dir.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            relative = str(path.relative_to(root))
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append({"item": relative, "reason": "not an image file type"})
                continue
            reason = _check_image(path)
            if reason:
                skipped.append({"item": relative, "reason": reason})
                continue
            paths.append(str(path))
            names.append(class_dir.name)
    return paths, names, skipped


def _load_images(path: Path, uploads_dir: Path) -> tuple[list[str], list[str], list[dict[str, str]]]:
    if path.suffix.lower() == ".zip":
        path = extract_zip(path, uploads_dir)
    elif not path.is_dir():
        raise DataError(f"{path.name} is not a folder or a .zip. For images, give a folder of class sub-folders "
                        "or a .zip of one.")
    return scan_image_folder(path)


# -- text ---------------------------------------------------------------------------------------------------------

def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in TEXT_EXTENSIONS:
        raise DataError(f"{path.name} is not a .csv or .jsonl file. Save your table as CSV (UTF-8) or JSON Lines.")
    try:
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path.name} is not UTF-8 text (byte {exc.start} cannot be read). Save it as "
                            "'CSV UTF-8' from your spreadsheet program and upload it again.") from None
        if suffix == ".csv":
            return pd.read_csv(StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
        return pd.read_json(StringIO(text), lines=True, dtype=False)
    except DataError:
        raise
    except (ValueError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"Could not read {path.name} as {suffix[1:].upper()}: {first}") from None


def table_columns(path: str | Path) -> list[str]:
    """The column names of a .csv or .jsonl file (DataError if it cannot be read)."""
    return [str(c) for c in _read_table(Path(path)).columns]


def _load_text(path: Path, spec: DataSpec):
    """(texts, labels, skipped, groups): groups is None without data.group_column."""
    if not path.is_file():
        raise DataError(f"{path.name} is not a file. For text, give a .csv or .jsonl file.")
    frame = _read_table(path)
    columns = [("text_column", spec.text_column), ("label_column", spec.label_column)]
    if spec.group_column:
        columns.append(("group_column", spec.group_column))
    for key, column in columns:
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns)) or "none"
            raise DataError(f"Column '{column}' (data.{key}) is not in {path.name}. Columns found: {found}. "
                            f"Choose the right column in data.{key}.")
    texts, labels, skipped, kept = [], [], [], []
    for row, (text, label) in enumerate(zip(frame[spec.text_column], frame[spec.label_column]), start=2):
        if pd.isna(label) or not str(label).strip():
            skipped.append({"item": f"row {row}", "reason": "no label"})
        elif pd.isna(text) or not str(text).strip():
            skipped.append({"item": f"row {row}", "reason": "empty text"})
        else:
            texts.append(str(text))
            labels.append(str(label).strip())
            kept.append(row - 2)
    groups = None
    if spec.group_column:
        groups = ["(none)" if pd.isna(g) else str(g) for g in frame[spec.group_column].iloc[kept]]
    return texts, labels, skipped, groups


# -- assembling a dataset -------------------------------------------------------------------------------------------

def _load_items(spec_path: str, task: str, spec: DataSpec, uploads_dir: Path):
    path = Path(spec_path).expanduser()
    if not path.exists():
        raise DataError(f"Data not found: {spec_path}. Check data.path (relative paths start from the folder "
                        "you run the studio in).")
    if task == "image-classification":
        return (*_load_images(path, uploads_dir), None)
    return _load_text(path, spec)


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


def load_dataset(spec: DataSpec, task: str, seed: int, uploads_dir: Path) -> Dataset:
    kind = "image" if task == "image-classification" else "text"
    items, names, skipped, groups = _load_items(spec.path, task, spec, uploads_dir)
    counts = pd.Series(names, dtype=str).value_counts()
    too_few = sorted(counts[counts < MIN_PER_CLASS].index)
    if too_few:
        raise DataError(f"Class '{too_few[0]}' has fewer than {MIN_PER_CLASS} usable examples"
                        f"{' (after skipping unreadable files)' if skipped else ''}. Add more examples of it "
                        "or remove that class.")
    classes = sorted(counts.index)
    if len(classes) < 2:
        what = f"only one class ('{classes[0]}')" if classes else "no usable examples"
        raise DataError(f"The data has {what}. A classifier needs at least two classes, each with examples.")
    index = {name: i for i, name in enumerate(classes)}
    labels = [index[name] for name in names]
    if spec.validation_path:
        val_items, val_names, val_skipped, val_groups = _load_items(spec.validation_path, task, spec, uploads_dir)
        unknown = sorted(set(val_names) - set(classes))
        if unknown:
            raise DataError(f"The validation data has class '{unknown[0]}', which the training data lacks. "
                            "Use the same class names in both.")
        skipped += [{"item": f"validation: {s['item']}", "reason": s["reason"]} for s in val_skipped]
        train_items, train_labels = items, labels
        val_labels = [index[name] for name in val_names]
        if not val_items:
            raise DataError("The validation data has no usable examples.")
    else:
        train_idx, val_idx = _stratified_split(labels, spec.validation_split, seed)
        train_items, train_labels = [items[i] for i in train_idx], [labels[i] for i in train_idx]
        val_items, val_labels = [items[i] for i in val_idx], [labels[i] for i in val_idx]
        val_groups = [groups[i] for i in val_idx] if groups else None
    report = DataReport(
        kind=kind, classes=classes,
        train_counts={c: train_labels.count(i) for i, c in enumerate(classes)},
        validation_counts={c: val_labels.count(i) for i, c in enumerate(classes)},
        skipped=skipped)
    report.warnings = _warnings(report, counts)
    return Dataset(kind, classes, train_items, train_labels, val_items, val_labels, report, val_groups)


def _warnings(report: DataReport, counts: pd.Series) -> list[str]:
    out = []
    if report.skipped:
        out.append(f"{len(report.skipped)} file(s) or row(s) were skipped because they could not be used; "
                   "see the list of skipped items.")
    most, least = counts.idxmax(), counts.idxmin()
    if counts[most] >= IMBALANCE_RATIO * counts[least]:
        out.append(f"The classes are imbalanced: '{most}' has {counts[most]} examples but '{least}' has only "
                   f"{counts[least]}. The model may favour '{most}'; add examples of the smaller classes if you can.")
    if counts.min() < FEW_PER_CLASS:
        out.append(f"Some classes have fewer than {FEW_PER_CLASS} examples. Feature extraction works best with "
                   "so few; expect the accuracy to vary from run to run.")
    return out

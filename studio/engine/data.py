"""Loading, validating and splitting the user's data, with a plain-language report.

Images come as a folder of class sub-folders or a .zip of one; text as .csv or .jsonl. Unreadable files are
skipped and listed; problems the user must fix raise DataError with a message that says how.

Limits that protect a shared machine are read from the environment each time (so a server's settings apply
without a restart of the engine): STUDIO_ZIP_MAX_MB and STUDIO_ZIP_MAX_FILES cap what one .zip may unpack to,
STUDIO_MAX_IMAGE_PIXELS caps one image's width × height.
"""
from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import json
import logging
import os
import random
import re
import shutil
import zipfile
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from io import StringIO
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image

from studio.recipe import DataSpec

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
TEXT_EXTENSIONS = {".csv", ".jsonl"}
MIN_PER_CLASS = 2
IMBALANCE_RATIO = 3.0
FEW_PER_CLASS = 20
MAX_CLASSES = 1000
MAX_TEXT_CHARS = 20_000  # longer texts are cut: the model reads at most data.max_length tokens anyway
MISSING_LABELS = {"", "nan", "na", "n/a", "#n/a", "null", "none"}  # what spreadsheets write for "no value"
DEFAULT_ZIP_MAX_MB = 4096  # uncompressed, guards against zip bombs
DEFAULT_ZIP_MAX_FILES = 200_000
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # Pillow's own warning threshold (about 9459 × 9459)
SHOWN = 5  # items named in one message before "and N more"


class DataError(ValueError):
    """Data the studio cannot train on; the message says what is wrong and how to fix it."""


class ImageTooLarge(Image.DecompressionBombError, ValueError):
    """An image over the pixel limit: refused before it is decoded. Also a ValueError, so that code catching
    "bad input" errors (OSError, ValueError) catches it too."""


@dataclass(frozen=True)
class Limits:
    zip_max_bytes: int
    zip_max_files: int
    max_image_pixels: int


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if value <= 0:
        log.warning("Ignoring %s=%r: it must be a positive number; using %g.", name, raw, default)
        return default
    return value


def limits() -> Limits:
    """The current limits (environment variables, else the defaults)."""
    return Limits(zip_max_bytes=int(_env_number("STUDIO_ZIP_MAX_MB", DEFAULT_ZIP_MAX_MB) * 1024**2),
                  zip_max_files=int(_env_number("STUDIO_ZIP_MAX_FILES", DEFAULT_ZIP_MAX_FILES)),
                  max_image_pixels=int(_env_number("STUDIO_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS)))


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


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


@dataclass
class _Loaded:
    """What one data source gave: examples, their class names, what was skipped, and notes for the report."""
    source: str  # the name the user knows (file or folder name)
    items: list[str]
    names: list[str]
    skipped: list[dict[str, str]]
    notes: list[str] = field(default_factory=list)
    groups: list[str] | None = None  # data.group_column's value per example (text data only)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's content, read in chunks so a large upload never sits in memory whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- images -------------------------------------------------------------------------------------------------------

def _check_pixels(image: Image.Image) -> None:
    cap = min(limits().max_image_pixels, 2 * (Image.MAX_IMAGE_PIXELS or 2**62))
    width, height = image.size
    if width * height > cap:
        raise ImageTooLarge(f"image is too large ({width} × {height} pixels; the limit is {cap:,} pixels, "
                            "set by STUDIO_MAX_IMAGE_PIXELS)")


def _open(path: str | Path) -> Image.Image:
    """Image.open, with Pillow's own refusal of the very largest images (over twice its limit, before ours can
    look) turned into ImageTooLarge in the same words."""
    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(pixels.group(1)):,} pixels; " if pixels else ""
        raise ImageTooLarge(f"image is too large ({size}the limit is {limits().max_image_pixels:,} pixels, set by "
                            "STUDIO_MAX_IMAGE_PIXELS)") from None


def open_rgb(path: str | Path) -> Image.Image:
    """Opens any readable image as 8-bit RGB (CMYK, palette, alpha and 16-bit images included). Images over the
    pixel limit raise ImageTooLarge before anything is decoded."""
    with _open(path) as image:
        _check_pixels(image)
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


def _conversion_note(image: Image.Image) -> str | None:
    """How an image differs from plain RGB, in words (None when it does not)."""
    mode = image.mode
    if mode == "CMYK":
        return "CMYK colours"
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return "16-bit"
    if mode in ("PA", "LA", "RGBA", "La", "RGBa") or "transparency" in image.info:
        return "palette with transparency" if mode in ("P", "PA") else "transparency, shown on white"
    if getattr(image, "n_frames", 1) > 1:
        return "animated: only the first frame is used"
    return None


def inspect_image(path: Path) -> tuple[str | None, str | None]:
    """(reason it cannot be used or None, how it is converted or None)."""
    if path.stat().st_size == 0:
        return "empty file (0 bytes)", None
    try:
        with _open(path) as image:
            note = _conversion_note(image)
        open_rgb(path)
    except ImageTooLarge as exc:
        return str(exc), None
    except Exception:  # PIL raises many types for broken files; each one just means "unreadable"
        return "not a readable image (damaged, cut short, or not really an image)", None
    return None, note


def _safe_member_name(member: zipfile.ZipInfo) -> PurePosixPath | None:
    """The entry's path inside the archive, or None when it is absolute, climbs out ('..') or is a link."""
    raw = member.filename.replace("\\", "/")
    name = PurePosixPath(raw)
    is_link = (member.external_attr >> 16) & 0o170000 == 0o120000
    if not raw or name.is_absolute() or ".." in name.parts or re.match(r"^[A-Za-z]:", raw) or is_link:
        return None
    return name


def extract_zip(archive: Path, dest_root: Path, display: str | None = None) -> Path:
    """Unpacks a .zip into a folder named by its content hash under dest_root. Refuses unsafe entries (absolute
    paths, '..', links), password-protected entries, and archives over the size and file-count limits, before
    anything is written; a damaged archive leaves nothing behind."""
    name = display or archive.name
    dest = dest_root / file_digest(archive)[:16]
    if (dest / ".complete").exists():
        return dest
    cap = limits()
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, NotImplementedError, EOFError,
            RuntimeError, zlib.error):
        raise DataError(f"{name} is not a valid .zip file (it may be damaged or cut short). Re-create it with "
                        "your system's 'compress' command and upload it again.") from None
    with zf:
        members = zf.infolist()
        if not members:
            raise DataError(f"{name} is an empty .zip: it holds no files. Zip the folder of class sub-folders.")
        if len(members) > cap.zip_max_files:
            raise DataError(f"{name} holds {len(members):,} files; the studio unpacks at most "
                            f"{cap.zip_max_files:,} files from one archive (STUDIO_ZIP_MAX_FILES). "
                            "Upload a smaller archive.")
        total = sum(m.file_size for m in members)
        if total > cap.zip_max_bytes:
            raise DataError(f"{name} would unpack to {_size(total)}, over the {_size(cap.zip_max_bytes)} limit for "
                            "one archive (STUDIO_ZIP_MAX_MB). Upload a smaller archive.")
        for member in members:
            if _safe_member_name(member) is None:
                raise DataError(f"{name} contains an unsafe entry '{member.filename}' (absolute path, '..' or a "
                                "link). Re-create the archive from a plain folder.")
            if member.flag_bits & 0x1:
                raise DataError(f"{name} is password-protected ('{member.filename}' is encrypted). Zip the folder "
                                "again without a password.")
        dest.mkdir(parents=True, exist_ok=True)
        budget = cap.zip_max_bytes
        member = members[0]
        try:
            for member in members:
                target = dest.joinpath(*_safe_member_name(member).parts)
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)  # an empty class folder is news the user needs
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as out:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        budget -= len(chunk)
                        if budget < 0:
                            raise DataError(f"{name} unpacks to more than {_size(cap.zip_max_bytes)} "
                                            "(STUDIO_ZIP_MAX_MB). Upload a smaller archive.")
                        out.write(chunk)
        except DataError:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as exc:
            shutil.rmtree(dest, ignore_errors=True)
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"{name} is damaged: the entry '{member.filename}' could not be unpacked ({detail}). "
                            "Re-create the archive and upload it again.") from None
    (dest / ".complete").touch()
    return dest


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX")))


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _class_root(folder: Path) -> Path:
    """A zip of 'pets/cat/…, pets/dog/…' has one wrapper folder: step into it."""
    while True:
        dirs = _visible_dirs(folder)
        if len(dirs) == 1 and not _visible_files(folder) and _visible_dirs(dirs[0]):
            folder = dirs[0]
        else:
            return folder


def scan_image_folder(folder: Path, source: str | None = None) -> _Loaded:
    """The images of a folder of class sub-folders, by class; unreadable files skipped with the reason."""
    source = source or folder.name
    root = _class_root(folder)
    class_dirs = _visible_dirs(root)
    if not class_dirs:
        files = _visible_files(root)
        archives = [p.name for p in files if p.suffix.lower() == ".zip"]
        if archives:
            raise DataError(f"{source} holds another .zip ({archives[0]}) instead of class folders; archives inside "
                            f"archives are not opened. Unzip {archives[0]} and upload a .zip of the folder inside.")
        images = sum(p.suffix.lower() in IMAGE_EXTENSIONS for p in files)
        found = f" (it has {images} image(s) directly inside, but no sub-folders)" if images else ""
        raise DataError(f"No class folders found in {source}{found}. Put the images of each class in its own "
                        "sub-folder (for example cats/ and dogs/), then upload that folder or a .zip of it.")
    loaded = _Loaded(source, [], [], [])
    converted = []
    for class_dir in class_dirs:
        files = [p for p in sorted(class_dir.rglob("*"))
                 if p.is_file() and not any(part.startswith(".") for part in p.relative_to(class_dir).parts)]
        if not files:
            raise DataError(f"The class folder '{class_dir.name}' in {source} is empty. Add at least "
                            f"{MIN_PER_CLASS} images to it, or delete the folder.")
        usable = 0
        for path in files:
            relative = str(path.relative_to(root))
            if path.suffix.lower() == ".zip":
                loaded.skipped.append({"item": relative, "reason": "a .zip inside the data (archives inside "
                                                                   "archives are not opened)"})
                continue
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                loaded.skipped.append({"item": relative, "reason": "not an image file type"})
                continue
            reason, note = inspect_image(path)
            if reason:
                loaded.skipped.append({"item": relative, "reason": reason})
                continue
            if note:
                converted.append(f"{relative} ({note})")
            loaded.items.append(str(path))
            loaded.names.append(class_dir.name)
            usable += 1
        if not usable:
            reasons = Counter(s["reason"] for s in loaded.skipped if s["item"].startswith(class_dir.name + os.sep))
            raise DataError(f"Class '{class_dir.name}' in {source} has no usable images: all {len(files)} file(s) in "
                            f"it were skipped ({_listing([f'{n} × {r}' for r, n in reasons.most_common()])}). "
                            "Add readable .jpg or .png images to it, or delete the folder.")
    if converted:
        loaded.notes.append(f"{len(converted)} image(s) were converted to ordinary RGB colour images: "
                            f"{_listing(converted)}. The thumbnails show them as the model will see them.")
    return loaded


def _load_images(path: Path, uploads_dir: Path) -> _Loaded:
    if path.suffix.lower() == ".zip" and path.is_file():
        return scan_image_folder(extract_zip(path, uploads_dir), source=path.name)
    if not path.is_dir():
        raise DataError(f"{path.name} is not a folder or a .zip. For images, give a folder of class sub-folders "
                        "or a .zip of one.")
    return scan_image_folder(path)


# -- text ---------------------------------------------------------------------------------------------------------

def _decode(raw: bytes, name: str) -> tuple[str, str | None]:
    """The file's text and, when it was not UTF-8, a note saying which encoding was used."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16"), None
        except UnicodeDecodeError:
            raise DataError(f"{name} starts like UTF-16 text but cannot be read as such. Save it as "
                            "'CSV UTF-8' and upload it again.") from None
    head = raw[:65536]
    if head.startswith(b"PK\x03\x04"):
        raise DataError(f"{name} is a zip archive or an Excel workbook (.xlsx), not a text table. In your "
                        "spreadsheet program use 'Save as' → 'CSV UTF-8' and upload that file.")
    if b"\x00" in head:
        raise DataError(f"{name} is not a text file: it contains binary data. Save your table as 'CSV UTF-8' "
                        "(or JSON Lines) and upload it again.")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        bad = exc.start
    for encoding, words in (("cp1252", "Windows-1252 (Western European)"), ("latin-1", "Latin-1")):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        return text, (f"{name} is not UTF-8 text (byte {bad} is not valid UTF-8), so it was read as {words}. If "
                      "accented letters look wrong in the sample rows, save it as 'CSV UTF-8' and upload it again.")
    raise AssertionError("latin-1 decodes any bytes")


def _read_csv(text: str, name: str) -> tuple[pd.DataFrame, list[str]]:
    notes = []
    first = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    sep = ","
    if "," not in first:
        for candidate, words in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|' characters")):
            if candidate in first:
                sep = candidate
                notes.append(f"{name} separates its columns with {words}; it was read that way.")
                break
    try:
        header = [h.strip() for h in next(csv.reader([first], delimiter=sep), [])]
    except csv.Error:  # odd characters in the header: pandas' own parser has the last word
        header = [h.strip() for h in first.split(sep)]
    repeated = [h for h, n in Counter(header).items() if n > 1 and h]
    if repeated:
        raise DataError(f"The header of {name} names the column '{repeated[0]}' more than once. Give each column "
                        "its own name and upload the file again.")
    try:
        frame = pd.read_csv(StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty: it has no header row and no data.") from None
    except (ValueError, pd.errors.ParserError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
        if fields:
            expected, line, saw = fields.groups()
            raise DataError(f"Could not read {name} as CSV: line {line} has {saw} columns but the header has "
                            f"{expected}. Put quotes around texts that contain a '{sep}', or fix that line.") from None
        if "EOF inside string" in message:
            raise DataError(f"Could not read {name} as CSV: a quotation mark (\") is opened but never closed "
                            f"({message.split('C error: ')[-1]}). Fix the quotes and upload it again.") from None
        raise DataError(f"Could not read {name} as CSV: {message}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = [f"row {i + 2}" for i in range(len(frame))]  # row numbers as a spreadsheet shows them
    return frame, notes


def _read_jsonl(text: str, name: str) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    if text.lstrip().startswith("["):
        raise DataError(f"{name} is a JSON array, not JSON Lines. Put one JSON object per line, like "
                        "{\"text\": \"...\", \"label\": \"...\"}, or save the table as CSV.")
    rows, lines, skipped = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            where = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            detail = getattr(exc, "msg", str(exc)).removesuffix(" starting at")
            skipped.append({"item": f"line {number}", "reason": f"not valid JSON: {detail}{where}"})
            continue
        if not isinstance(value, dict):
            skipped.append({"item": f"line {number}", "reason": "not a JSON object ({...})"})
            continue
        rows.append(value)
        lines.append(f"line {number}")
    if not rows:
        why = f" ({skipped[0]['item']}: {skipped[0]['reason']})" if skipped else ""
        raise DataError(f"No line of {name} is a JSON object{why}. JSON Lines has one object per line, like "
                        "{\"text\": \"...\", \"label\": \"...\"}.")
    return pd.DataFrame(rows, index=lines), skipped


def _read_table(path: Path) -> tuple[pd.DataFrame, list[dict[str, str]], list[str]]:
    """(table with one row per example, lines skipped while reading, notes for the report)."""
    suffix = path.suffix.lower()
    if suffix not in TEXT_EXTENSIONS:
        raise DataError(f"{path.name} is not a .csv or .jsonl file. Save your table as CSV (UTF-8) or JSON Lines.")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path.name} is empty: it has no header row and no data.")
    text, note = _decode(raw, path.name)
    notes = [note] if note else []
    if suffix == ".csv":
        frame, csv_notes = _read_csv(text, path.name)
        return frame, [], notes + csv_notes
    frame, skipped = _read_jsonl(text, path.name)
    return frame, skipped, notes


def table_columns(path: str | Path) -> list[str]:
    """The column names of a .csv or .jsonl file (DataError if it cannot be read)."""
    return [str(c) for c in _read_table(Path(path))[0].columns]


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def _missing_column(column: str, key: str, columns: list[str], name: str) -> DataError:
    found = (", ".join(columns[:20]) + (f" and {len(columns) - 20} more" if len(columns) > 20 else "")) or "none"
    lower = {c.lower().strip(): c for c in columns}
    guess = lower.get(column.lower().strip()) or next(iter(difflib.get_close_matches(column, columns, 1, 0.6)), None)
    hint = f" Did you mean '{guess}'?" if guess else ""
    return DataError(f"Column '{column}' (data.{key}) is not in {name}.{hint} Columns found: {found}. "
                     f"Choose the right column in data.{key}.")


def _load_text(path: Path, spec: DataSpec) -> _Loaded:
    if not path.is_file():
        raise DataError(f"{path.name} is not a file. For text, give a .csv or .jsonl file.")
    frame, skipped, notes = _read_table(path)
    if spec.text_column == spec.label_column:
        raise DataError(f"data.text_column and data.label_column are both '{spec.text_column}'. Choose the column "
                        "with the texts and a different column with the labels.")
    columns = [str(c) for c in frame.columns]
    wanted = [("text_column", spec.text_column), ("label_column", spec.label_column)]
    if spec.group_column:
        wanted.append(("group_column", spec.group_column))
    for key, column in wanted:
        if column not in columns:
            raise _missing_column(column, key, columns, path.name)
    if frame.empty:
        raise DataError(f"{path.name} has a header but no rows of data.")
    loaded = _Loaded(path.name, [], [], skipped, notes, [] if spec.group_column else None)
    groups = frame[spec.group_column] if spec.group_column else [None] * len(frame)
    cut = []
    for item, text, label, group in zip(frame.index, frame[spec.text_column], frame[spec.label_column], groups):
        text, label = _cell(text), _cell(label).strip()
        if text.strip() == spec.text_column and label == spec.label_column:
            loaded.skipped.append({"item": item, "reason": "a repeated header line"})
        elif label.lower() in MISSING_LABELS:
            loaded.skipped.append({"item": item, "reason": "no label"})
        elif not text.strip():
            loaded.skipped.append({"item": item, "reason": "empty text"})
        else:
            if len(text) > MAX_TEXT_CHARS:
                cut.append(item)
                text = text[:MAX_TEXT_CHARS]
            loaded.items.append(text)
            loaded.names.append(label)
            if loaded.groups is not None:
                loaded.groups.append(_cell(group).strip() or "(none)")
    if cut:
        notes.append(f"{len(cut)} text(s) longer than {MAX_TEXT_CHARS:,} characters were cut to that length "
                     f"({_listing(cut)}); the model reads only the first {spec.max_length} tokens of each text.")
    return loaded


# -- assembling a dataset -------------------------------------------------------------------------------------------

def _load_items(spec_path: str, task: str, spec: DataSpec, uploads_dir: Path) -> _Loaded:
    path = Path(spec_path).expanduser()
    if not path.exists():
        raise DataError(f"Data not found: {spec_path}. Check data.path (relative paths start from the folder "
                        "you run the studio in).")
    try:
        if task == "image-classification":
            return _load_images(path, uploads_dir)
        return _load_text(path, spec)
    except PermissionError:
        raise DataError(f"The studio may not read {path.name} (permission denied).") from None


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


def _check_classes(loaded: _Loaded, kind: str, spec: DataSpec) -> pd.Series:
    """Counts per class; DataError when the classes cannot make a classifier."""
    if not loaded.items:
        reasons = Counter(s["reason"] for s in loaded.skipped)
        what = "rows" if kind == "text" else "files"
        raise DataError(f"No usable examples in {loaded.source}: all {len(loaded.skipped)} {what} were skipped "
                        f"({_listing([f'{n} × {r}' for r, n in reasons.most_common()])}).")
    counts = pd.Series(loaded.names, dtype=str).value_counts()
    mostly_unique = kind == "text" and len(counts) > 10 and (counts == 1).mean() > 0.5
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


def load_dataset(spec: DataSpec, task: str, seed: int, uploads_dir: Path) -> Dataset:
    kind = "image" if task == "image-classification" else "text"
    loaded = _load_items(spec.path, task, spec, uploads_dir)
    counts = _check_classes(loaded, kind, spec)
    items, names, skipped = loaded.items, loaded.names, list(loaded.skipped)
    notes = list(loaded.notes)
    classes = sorted(counts.index)
    index = {name: i for i, name in enumerate(classes)}
    labels = [index[name] for name in names]
    if spec.validation_path:
        val = _load_items(spec.validation_path, task, spec, uploads_dir)
        unknown = sorted(set(val.names) - set(classes))
        if unknown:
            raise DataError(f"The validation data has class '{unknown[0]}', which the training data lacks. "
                            "Use the same class names in both.")
        skipped += [{"item": f"validation: {s['item']}", "reason": s["reason"]} for s in val.skipped]
        notes += val.notes
        train_items, train_labels = items, labels
        val_items, val_labels = val.items, [index[name] for name in val.names]
        val_groups = val.groups
        if not val_items:
            raise DataError("The validation data has no usable examples.")
    else:
        train_idx, val_idx = _stratified_split(labels, spec.validation_split, seed)
        train_items, train_labels = [items[i] for i in train_idx], [labels[i] for i in train_idx]
        val_items, val_labels = [items[i] for i in val_idx], [labels[i] for i in val_idx]
        val_groups = [loaded.groups[i] for i in val_idx] if loaded.groups is not None else None
    report = DataReport(
        kind=kind, classes=classes,
        train_counts={c: train_labels.count(i) for i, c in enumerate(classes)},
        validation_counts={c: val_labels.count(i) for i, c in enumerate(classes)},
        skipped=skipped)
    report.warnings = notes + _warnings(report, counts)
    return Dataset(kind, classes, train_items, train_labels, val_items, val_labels, report, val_groups)


def _warnings(report: DataReport, counts: pd.Series) -> list[str]:
    out = []
    if report.skipped:
        named = [f"{s['item']}: {s['reason']}" for s in report.skipped]
        out.append(f"{len(report.skipped)} file(s) or row(s) were skipped because they could not be used ("
                   f"{_listing(named)}). See the list of skipped items.")
    most, least = counts.idxmax(), counts.idxmin()
    if counts[most] >= IMBALANCE_RATIO * counts[least]:
        out.append(f"The classes are imbalanced: '{most}' has {counts[most]} examples but '{least}' has only "
                   f"{counts[least]}. The model may favour '{most}'; add examples of the smaller classes if you can.")
    if counts.min() < FEW_PER_CLASS:
        out.append(f"Some classes have fewer than {FEW_PER_CLASS} examples. Feature extraction works best with "
                   "so few; expect the accuracy to vary from run to run.")
    return out

"""Reading tables (.csv, .jsonl) into pandas, with the problems users' files have explained in words: encodings,
separators, repeated headers, broken quotes, JSON lines that are not objects, and columns that are missing."""
from __future__ import annotations

import codecs
import csv
import difflib
import json
import re
from collections import Counter
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd

from studio.engine.data.errors import DataError
from studio.errors import first_line

TABLE_SUFFIXES = (".csv", ".jsonl")  # the tables the studio reads
MISSING_VALUES = {"", "nan", "na", "n/a", "#n/a", "null", "none"}  # what spreadsheets write for "no value"


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
        message = first_line(exc, 1000)
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


def read_table(path: Path) -> tuple[pd.DataFrame, list[dict[str, str]], list[str]]:
    """(table with one row per example, lines skipped while reading, notes for the report)."""
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
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
    return [str(c) for c in read_table(Path(path))[0].columns]


def cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def missing_column(column: str, key: str, columns: list[str], name: str) -> DataError:
    found = (", ".join(columns[:20]) + (f" and {len(columns) - 20} more" if len(columns) > 20 else "")) or "none"
    lower = {c.lower().strip(): c for c in columns}
    guess = lower.get(column.lower().strip()) or next(iter(difflib.get_close_matches(column, columns, 1, 0.6)), None)
    hint = f" Did you mean '{guess}'?" if guess else ""
    return DataError(f"Column '{column}' (data.{key}) is not in {name}.{hint} Columns found: {found}. "
                     f"Choose the right column in data.{key}.")


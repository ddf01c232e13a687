"""/v1/classify on a studio classifier: {"model", "input": [...], "top_k"} where an input is a text, or a file sent
as {"filename", "data": base64} — written into a private temporary folder (never a path on the server's disk) —
answered with the scores `studio predict` gives (the run's Predictor)."""
from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from studio.serve.errors import bad_request

MAX_INPUTS = 256


def _suffix(filename: str) -> str:
    """The file's extension (what the readers go by), nothing else of the client's name."""
    suffix = Path(filename).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def top_k(body: dict) -> int:
    value = body.get("top_k", 3)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request("'top_k' must be a whole number, at least 1", "top_k")
    return value


def inputs(body: dict, task, folder: Path) -> list[str]:
    """What the run's Predictor takes: the texts, or the files' paths in `folder`; 400 in words for an input of
    the wrong kind or a file that cannot be read."""
    given = body.get("input")
    given = [given] if isinstance(given, (str, dict)) else given
    if not isinstance(given, list) or not 1 <= len(given) <= MAX_INPUTS:
        raise bad_request(f"'input' must be a list of 1 to {MAX_INPUTS} texts or files", "input")
    kind = f"{task.modality} files" if task.inputs_are_files else "texts"
    items = []
    for index, item in enumerate(given):
        where = f"input[{index}]"
        if isinstance(item, str):
            if task.inputs_are_files:
                raise bad_request(f"{where} is a text, and this run classifies {kind}: send each file as "
                                  "{\"filename\": \"name.ext\", \"data\": \"<base64>\"}", where)
            items.append(item)
            continue
        if not (isinstance(item, dict) and isinstance(item.get("filename"), str) and isinstance(item.get("data"), str)):
            raise bad_request(f"{where} must be a text or {{\"filename\", \"data\": base64}}", where)
        name = item["filename"]
        if not task.inputs_are_files:
            raise bad_request(f"{where} is a file ({name}), and this run classifies {kind}: send the text itself",
                              where)
        try:
            raw = base64.b64decode(item["data"], validate=True)
        except (binascii.Error, ValueError):
            raise bad_request(f"{where}.data is not base64 ({name})", f"{where}.data") from None
        path = folder / f"{index}{_suffix(name)}"
        path.write_bytes(raw)
        reason = task.check_input(str(path))
        if reason:
            raise bad_request(f"{where}: {reason.replace(str(path), name)}", where)
        items.append(str(path))
    return items


def reply(model_id: str, answers: list[dict]) -> dict:
    return {"object": "list", "model": model_id,
            "data": [{"index": i, "label": a["label"], "score": a["score"], "top_k": a["top_k"]}
                     for i, a in enumerate(answers)]}

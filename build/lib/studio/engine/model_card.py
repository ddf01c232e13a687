"""What every model card (README.md in a run's model folder) shares: the front matter, tables, and writing the
file. Each task writes its own sections from the run folder's files (recipe, data report, evaluation)."""
from __future__ import annotations

from pathlib import Path

import yaml

from studio.runfolder import CARD, RECIPE, RunFolder, write_text


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def recipe_of(run: RunFolder) -> dict:
    return yaml.safe_load((run.path / RECIPE).read_text(encoding="utf-8"))


def front_matter(pipeline_tag: str, strategy: str) -> str:
    return f"---\npipeline_tag: {pipeline_tag}\nlibrary_name: studio\ntags: [studio, {strategy}]\n---"


def write(run: RunFolder, text: str) -> Path:
    path = run.model_dir / CARD
    write_text(path, text)
    return path

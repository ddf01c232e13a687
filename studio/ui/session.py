"""One browser session's wizard state: a recipe being written, plus what the wizard learned on the way.

The recipe part has exactly the recipe's keys, so what the user sees in "Show recipe" is what runs.
"""
from __future__ import annotations

import copy

from studio import catalog
from studio import recipe as recipes

STRATEGY_WORDS = {
    "feature-extraction": "Feature extraction",
    "full": "Full fine-tuning",
    "partial": "Fine-tune the last blocks",
    "layerwise": "Layer-wise learning rates",
    "lora": "LoRA adapters",
    "scratch": "From scratch (baseline)",
}


def new_session() -> dict:
    return {
        "recipe": {"task": catalog.IMAGE, "model": "efficientnet-lite0", "data": {"path": ""},
                   "strategy": "feature-extraction", "strategy_options": {}, "train": {},
                   "trust_remote_code": False},
        "data_note": "",  # e.g. "shapes: 120 examples, 3 classes"
        "data_kind": None,  # the task the checked data fits, or None
        "train_counts": {},
        "run_id": None,
    }


def set_task(session: dict, task: str) -> None:
    draft = session["recipe"]
    if draft["task"] != task:
        draft["task"] = task
        draft["model"] = catalog.for_task(task)[0].name
        draft["trust_remote_code"] = False
        draft["data"] = {"path": ""}
        session.update(data_note="", data_kind=None, train_counts={})


def build_recipe(session: dict) -> recipes.Recipe:
    """The recipe the session describes; RecipeError says what is missing or wrong."""
    draft = copy.deepcopy(session["recipe"])
    if not draft["data"].get("path"):
        raise recipes.RecipeError("No data yet: go to the Data tab and upload a file or try an example.")
    if session["data_kind"] != draft["task"]:
        raise recipes.RecipeError("The data has not been checked for this task yet: open the Data tab.")
    return recipes.from_dict(draft)


def summary(session: dict) -> str:
    draft = session["recipe"]
    task = "Images" if draft["task"] == catalog.IMAGE else "Text"
    data = session["data_note"] or "not chosen yet"
    run = session["run_id"] or "none yet"
    return (f"**Task** {task} &nbsp;·&nbsp; **Model** {draft['model']} &nbsp;·&nbsp; **Data** {data} "
            f"&nbsp;·&nbsp; **Strategy** {STRATEGY_WORDS[draft['strategy']]} &nbsp;·&nbsp; **Run** {run}")

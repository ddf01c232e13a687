"""One browser session's wizard state: a recipe being written, plus what the wizard learned on the way.

The recipe part has exactly the recipe's keys, so what the user sees in "Show recipe" is what runs.
"""
from __future__ import annotations

import copy
import uuid

from studio import catalog, tasks
from studio import recipe as recipes

DEFAULT_TASK = "image-classification"


def first_model(task: str) -> str:
    entries = catalog.for_task(task)
    offline = [e for e in entries if e.offline]
    return (offline or entries)[0].name if entries else ""


def new_session() -> dict:
    task = tasks.get(DEFAULT_TASK)
    return {
        "id": uuid.uuid4().hex[:12],  # this session's own folders (uploads, recipes): never shared with another
        "recipe": {"task": task.name, "model": first_model(task.name), "data": {"path": ""},
                   "strategy": task.default_strategy, "strategy_options": {}, "train": {},
                   "trust_remote_code": False},
        "data_note": "",  # e.g. "shapes: 120 examples, 3 classes"
        "data_kind": None,  # the task the checked data fits, or None
        "train_counts": {},
        "run_id": None,
    }


def set_task(session: dict, task: str) -> None:
    draft = session["recipe"]
    if draft["task"] != task:
        spec = tasks.get(task)
        draft.update(task=task, model=first_model(task), trust_remote_code=False, data={"path": ""},
                     strategy=spec.default_strategy, strategy_options={}, train={})
        session.update(data_note="", data_kind=None, train_counts={})


def strategy_words(task: str, strategy: str) -> str:
    spec = tasks.get(task).strategies.get(strategy)
    return spec.words if spec else strategy


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
    task = tasks.get(draft["task"]).title.split(" (")[0]
    data = session["data_note"] or "not chosen yet"
    run = session["run_id"] or "none yet"
    return (f"**Task** {task} &nbsp;·&nbsp; **Model** {draft['model']} &nbsp;·&nbsp; **Data** {data} "
            f"&nbsp;·&nbsp; **Strategy** {strategy_words(draft['task'], draft['strategy'])} &nbsp;·&nbsp; "
            f"**Run** {run}")

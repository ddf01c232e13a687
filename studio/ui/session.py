"""One browser session's wizard state: a recipe being written, plus what the wizard learned on the way, the run
it started, and the page's language. It lives in the browser (gr.BrowserState), so a reload brings it back.

The recipe part has exactly the recipe's keys, so what the user sees in "Show recipe" is what runs.
"""
from __future__ import annotations

import copy
import time
import uuid
from pathlib import Path

from studio import catalog, tasks
from studio import recipe as recipes
from studio.ui.i18n import tr

DEFAULT_TASK = "image-classification"


def first_model(task: str) -> str:
    entries = catalog.for_task(task)
    offline = [e for e in entries if e.offline]
    return (offline or entries)[0].name if entries else ""


def blank_session() -> dict:
    """What a browser holds before its first visit: no id yet (ensure() gives it one)."""
    session = new_session()
    session.update(id=None, lang=None)
    return session


def new_session(previous: dict | None = None, user: str | None = None) -> dict:
    """A fresh wizard with an id of its own; the language is kept (Start over does not switch it), and the login
    it belongs to (user: another login's, when a page is loaded by someone else)."""
    task = tasks.get(DEFAULT_TASK)
    return {
        "id": uuid.uuid4().hex[:12],  # this session's own folders (uploads, recipes): never shared with another
        "lang": (previous or {}).get("lang"),
        "user": user if user is not None else (previous or {}).get("user"),  # the login it belongs to (ui/viewer)
        "recipe": {"task": task.name, "model": first_model(task.name), "data": {"path": ""},
                   "strategy": task.default_strategy, "strategy_options": {}, "train": {},
                   "trust_remote_code": False},
        "data_note": "",  # e.g. "shapes: 120 examples, 3 classes"
        "data_kind": None,  # the task the checked data fits, or None
        "data_error": None,  # why the last data was refused, repeated if Start is pressed anyway
        "train_counts": {},
        "run_id": None,
        "run_strategy": None,  # the latest run's [task, strategy]: it may differ from the draft's (a comparison)
        "runs": [],  # every run this session started, oldest first
        "sweep_id": None,  # the latest sweep this session started (the Runs tab shows it first)
        "answered": None,  # what the Playground's answer was computed for (playground_tab.answered_key)
    }


def ensure(state: dict | None, browser_lang: str) -> dict:
    """The session a page loads with: the one its browser kept (completed with any key added since), or new."""
    fresh = new_session(user=(state or {}).get("user"))
    if not state or not state.get("id"):
        state = fresh
    state = {**fresh, **state}
    state["lang"] = state.get("lang") or browser_lang
    if state["recipe"].get("task") not in tasks.names():
        state.update(recipe=fresh["recipe"], data_kind=None, data_note="")
    return state


def set_task(session: dict, task: str) -> None:
    draft = session["recipe"]
    if draft["task"] != task:
        spec = tasks.get(task)
        draft.update(task=task, model=first_model(task), trust_remote_code=False, data={"path": ""},
                     strategy=spec.default_strategy, strategy_options={}, train={})
        session.update(data_note="", data_kind=None, data_error=None, train_counts={})


def strategy_words(task: str, strategy: str, lang: str = "en") -> str:
    spec = tasks.get(task).strategies.get(strategy) if task in tasks.names() else None
    return tr(spec.words, lang) if spec else strategy


def model_words(model: str) -> str:
    entry = catalog.find(model)
    return entry.title if entry else Path(str(model).rstrip("/")).name


def run_name(run: dict, lang: str = "en") -> str:
    """A run as a person names it: 'shapes · EfficientNet-Lite0 · Feature extraction · 14:02 · completed'."""
    when = time.strftime("%H:%M", time.localtime(run["created"])) if run.get("created") else ""
    data = Path(run.get("data_name") or "").stem
    parts = [data, model_words(run.get("model") or ""), strategy_words(run.get("task") or "", run.get("strategy") or "",
                                                                        lang), when, tr(run.get("status") or "", lang)]
    return " · ".join(p for p in parts if p)


def add_run(session: dict, run_id: str, recipe: recipes.Recipe) -> None:
    session["run_id"] = run_id
    session["run_strategy"] = [recipe.task, recipe.strategy]
    session["runs"] = [*session.get("runs", []), run_id]


def build_recipe(session: dict) -> recipes.Recipe:
    """The recipe the session describes; RecipeError says what is missing or wrong (in the page's language)."""
    lang = session.get("lang", "en")
    draft = copy.deepcopy(session["recipe"])
    if session.get("data_error"):
        raise recipes.RecipeError(tr("The data was refused: {reason} Fix it on the Data tab.", lang,
                                     reason=session["data_error"]))
    if not draft["data"].get("path"):
        raise recipes.RecipeError(tr("No data yet: go to the Data tab and upload a file or try an example.", lang))
    if session["data_kind"] != draft["task"]:
        raise recipes.RecipeError(tr("The data has not been checked for this task yet: open the Data tab.", lang))
    return tasks.from_dict(draft)


def summary(session: dict) -> str:
    lang = session.get("lang") or "en"
    draft = session["recipe"]
    task = tr(tasks.get(draft["task"]).title, lang).split(" (")[0]
    data = session["data_note"] or tr("not chosen yet", lang)
    # The latest run is set apart from the draft: it may have another strategy (a comparison) or an older recipe.
    run = session["run_id"] or tr("none yet", lang)
    if session["run_id"] and session.get("run_strategy"):
        run += f" ({strategy_words(*session['run_strategy'], lang)})"
    return (f"**{tr('Task', lang)}** {task} &nbsp;·&nbsp; **{tr('Model', lang)}** {model_words(draft['model'])} "
            f"&nbsp;·&nbsp; **{tr('Data', lang)}** {data} &nbsp;·&nbsp; **{tr('Strategy', lang)}** "
            f"{strategy_words(draft['task'], draft['strategy'], lang)} &nbsp;&nbsp;|&nbsp;&nbsp; "
            f"**{tr('Latest run', lang)}** {run}")

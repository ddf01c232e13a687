"""Sweeps: one recipe tried with several settings, each setting a normal run. A recipe file with a `sweep:` block

    sweep:
      grid: {strategy: [feature-extraction, lora], train.learning_rate: [1.0e-4, 1.0e-3]}   # every combination
      # or search: {trials: 12, metric: accuracy, params: {train.learning_rate: {low: 1.0e-5, high: 1.0e-2,
      #             log: true}, strategy_options.lora_r: [4, 8, 16]}}                    # optuna's TPE, pruned

is checked whole before anything runs (every grid combination, every search value, as the recipe it makes), then
lives in `<workspace>/sweeps/<id>/`: sweep.json (each run's settings, status and score, and the best run) and, for
a search, optuna's study. This module owns that folder; studio/run/sweep_driver.py runs the sweep.

A setting that changes the strategy drops the recipe's learning rate and strategy options (they belong to the
strategy they were set for: the new one brings its own unless the sweep sets them); epochs and batch size stay, so
every run gets the same budget."""
from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from studio import recipe as recipes
from studio import tasks
from studio.recipe import DataSpec, RecipeError, TrainSpec
from studio.runfolder import ACTIVE, RECIPE, Folder, RunFolder, alive, read_json, write_json
from studio.workspace import Workspace, new_dir
from studio.words import said

SWEEP_FILE = "sweep.json"
STOP_FILE = "stop"  # present: the sweep was asked to stop (by `studio stop`, the UI, Ctrl-C)
STUDY_FILE = "optuna.db"  # a search's optuna study (SQLite), so an interrupted search resumes
DRIVER_LOG = "driver.log"  # what the sweep's driver process printed
MAX_RUNS = 64  # a sweep runs at most this many runs: more is refused before any starts, with the count
DONE = ("completed", "failed", "pruned")  # a sweep run in one of these is not started again on resume
FIXED_KEYS = ("task", "output_dir")  # one sweep is one task, its runs in one place
DRIVER_START_S = 120  # a sweep still 'created' after this long lost its driver before it began


class SweepError(RecipeError):
    """A sweep that cannot run; the message names the key (and the combination) and says what to change."""


class SweepNotFound(LookupError):
    pass


# -- the sweep block -------------------------------------------------------------------------------------------------

def split(raw) -> tuple[dict, dict]:
    """(the recipe without its sweep block, the sweep block) of a recipe file's contents."""
    if not isinstance(raw, dict):
        raise SweepError(f"The recipe must be a mapping of keys to values, not {type(raw).__name__}.")
    base = {k: v for k, v in raw.items() if k != "sweep"}
    block = raw.get("sweep")
    if not isinstance(block, dict) or len({"grid", "search"} & set(block)) != 1 or set(block) - {"grid", "search"}:
        raise SweepError("Recipe key 'sweep' must be a mapping with either 'grid' (every combination of the values "
                         "listed) or 'search' (optuna tries `trials` settings), e.g. sweep: {grid: "
                         "{train.learning_rate: [1.0e-4, 1.0e-3]}}.")
    return base, block


def check_key(key, where: str) -> str:
    """A recipe key as a sweep names it (`strategy`, `train.learning_rate`, `strategy_options.lora_r`)."""
    key = str(key)
    parts = key.split(".")
    top = {f.name for f in dataclasses.fields(recipes.Recipe)}
    sections = {"data": DataSpec, "train": TrainSpec}
    if parts[0] in FIXED_KEYS:
        raise SweepError(f"Recipe key '{where}.{key}': a sweep cannot change '{parts[0]}'; start another sweep.")
    known = (len(parts) == 1 and parts[0] in top - set(sections) - {"strategy_options"}) or (
        len(parts) == 2 and (parts[0] == "strategy_options" or (
            parts[0] in sections and parts[1] in {f.name for f in dataclasses.fields(sections[parts[0]])})))
    if not known:
        raise SweepError(f"Unknown recipe key '{key}' in {where}. Name recipe keys as the recipe writes them: "
                         "strategy, model, train.learning_rate, train.epochs, strategy_options.lora_r, …")
    return key


def grid_settings(grid) -> list[dict]:
    """Every combination of a grid, checked for shape and size (not yet against the recipe)."""
    if not isinstance(grid, dict) or not grid:
        raise SweepError("Recipe key 'sweep.grid' must map recipe keys to lists of values, e.g. "
                         "{train.learning_rate: [1.0e-4, 1.0e-3]}.")
    for key, values in grid.items():
        check_key(key, "sweep.grid")
        if not isinstance(values, list) or not values:
            raise SweepError(f"Recipe key 'sweep.grid.{key}' must be a non-empty list of values, got {values!r}.")
    count = math.prod(len(v) for v in grid.values())
    if count < 2:
        raise SweepError("sweep.grid makes 1 combination; list two or more values of a key to compare them.")
    if count > MAX_RUNS:
        raise SweepError(f"sweep.grid makes {count} combinations; a sweep runs at most {MAX_RUNS}. List fewer "
                         "values, or use sweep.search with a number of trials.")
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def search_space(search) -> dict:
    """A search block checked for shape: {"trials", "metric" (None: the task's headline), "params"}."""
    if not isinstance(search, dict) or set(search) - {"trials", "metric", "params"}:
        raise SweepError("Recipe key 'sweep.search' must be a mapping with trials, params and (optionally) metric.")
    trials = search.get("trials", 10)
    if not isinstance(trials, int) or isinstance(trials, bool) or not 2 <= trials <= MAX_RUNS:
        raise SweepError(f"Recipe key 'sweep.search.trials' is {trials!r}; give a whole number from 2 to {MAX_RUNS}.")
    params = search.get("params")
    if not isinstance(params, dict) or not params:
        raise SweepError("Recipe key 'sweep.search.params' must map recipe keys to a list of choices or a range, "
                         "e.g. {train.learning_rate: {low: 1.0e-5, high: 1.0e-2, log: true}}.")
    for key, space in params.items():
        check_key(key, "sweep.search.params")
        where = f"sweep.search.params.{key}"
        if isinstance(space, list):
            if not space:
                raise SweepError(f"Recipe key '{where}' is an empty list; give at least one value.")
            continue
        numbers = isinstance(space, dict) and all(isinstance(space.get(k), (int, float)) and not
                                                  isinstance(space.get(k), bool) for k in ("low", "high"))
        if not numbers or set(space) - {"low", "high", "log"} or not space["low"] < space["high"] or (
                space.get("log") and space["low"] <= 0):
            raise SweepError(f"Recipe key '{where}' must be a list of choices or {{low: …, high: …, log: "
                             f"true|false}} with low < high (and low > 0 for log), got {space!r}.")
    metric = search.get("metric")
    if metric is not None and not isinstance(metric, str):
        raise SweepError(f"Recipe key 'sweep.search.metric' is {metric!r}; give a figure's name, e.g. accuracy.")
    return {"trials": trials, "metric": metric, "params": params}


def search_values(params: dict) -> list[dict]:
    """One setting per value a search can reach at its edges (each choice, each range's ends), for checking."""
    return [{key: value} for key, space in params.items()
            for value in (space if isinstance(space, list) else (space["low"], space["high"]))]


def metric_of(task_name: str, name: str | None) -> dict:
    """{"key", "words", "higher_is_better"}: the figure a sweep ranks by (the task's headline unless named)."""
    task = tasks.get(task_name)
    figures = {m.key: m for m in (task.headline, *task.curves)}
    if name is None or name == task.headline.key:
        metric = task.headline
    elif name == "val_loss":
        return {"key": "val_loss", "words": "validation loss", "higher_is_better": False}
    elif name in figures:
        metric = figures[name]
    else:
        raise SweepError(f"Recipe key 'sweep.search.metric' is '{name}'; {task_name} reports: "
                         f"{', '.join([*figures, 'val_loss'])}.")
    return {"key": metric.key, "words": metric.words, "higher_is_better": metric.higher_is_better}


def recipe_for(base: dict, settings: dict) -> recipes.Recipe:
    """The recipe one run of the sweep trains: the base with these settings, checked and resolved."""
    raw = copy.deepcopy(base)
    if "strategy" in settings and settings["strategy"] != raw.get("strategy"):
        raw["strategy_options"] = {}
        raw.setdefault("train", {})["learning_rate"] = None
    for key, value in settings.items():
        section, _, name = key.partition(".")
        if name:
            holder = raw.setdefault(section, {})
            if not isinstance(holder, dict):
                raise SweepError(f"Recipe key '{section}' must be a mapping for the sweep to set '{key}'.")
            holder[name] = value
        else:
            raw[key] = value
    return tasks.resolved(recipes.from_dict(raw))


def words(settings: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def check(raw, may_run: Callable[[recipes.Recipe], None] = lambda recipe: None) -> dict:
    """A whole recipe-with-sweep checked: {"base", "kind", "settings" (grid) or "search", "metric"}. SweepError
    names the key, and the combination, of the first thing that cannot run. may_run(recipe): RecipeError when the
    one starting the sweep may not run that recipe (ownership.check_recipe), asked of every grid combination and of
    every search choice and range end: a sweep can change what a run reads, so its base alone says too little."""
    base, block = split(raw)
    try:
        recipe = tasks.from_dict(base)
    except RecipeError as exc:
        raise SweepError(f"The recipe beside the sweep: {exc}") from None
    if "grid" in block:
        plan = {"kind": "grid", "settings": grid_settings(block["grid"]), "metric": metric_of(recipe.task, None)}
        tried = plan["settings"]
    else:
        space = search_space(block["search"])
        plan = {"kind": "search", "search": space, "metric": metric_of(recipe.task, space["metric"])}
        tried = search_values(space["params"])
    for n, settings in enumerate(tried, 1):
        try:
            may_run(recipe_for(base, settings))
        except RecipeError as exc:
            which = f"combination {n} of {len(tried)}" if plan["kind"] == "grid" else "the value"
            raise SweepError(f"Sweep {which} ({words(settings)}) cannot run: {exc}") from None
    return {"base": base, **plan}


def parse(text: str) -> dict:
    """A recipe file's text with its sweep block, checked (see `check`)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SweepError(f"The recipe is not valid YAML: {str(exc).splitlines()[0]}") from None
    return check(raw)


# -- the sweep folder ------------------------------------------------------------------------------------------------

class Sweep(Folder):
    """A handle on one sweep folder: everything comes from sweep.json, so any process can hold one."""

    def read(self) -> dict:
        data = read_json(self.file(SWEEP_FILE))
        if data is None:
            raise SweepNotFound(f"Sweep folder {self.path} has no readable {SWEEP_FILE}.")
        return data

    def write(self, data: dict) -> None:
        data["updated"] = time.time()
        write_json(self.file(SWEEP_FILE), data)

    def stop_requested(self) -> bool:
        return self.file(STOP_FILE).exists()

    def state(self) -> dict:
        """sweep.json as it stands, 'interrupted' when it says running but its driver process is gone (or its driver
        never started)."""
        data = self.read()
        driver = data.get("driver") or {}
        if (data.get("status") == "running" and not alive(driver.get("pid"), driver.get("pid_started"))) or (
                data.get("status") == "created" and time.time() - data.get("created", 0) > DRIVER_START_S):
            data["status"] = "interrupted"
        return data


def create(workspace: Workspace, plan: dict, owner: str | None = None) -> Sweep:
    """A new sweep folder for a checked plan (status 'created': its driver has not started). owner: the account
    the sweep and its runs belong to (None: a studio without accounts), kept in sweep.json for its driver."""
    sweep = Sweep(new_dir(workspace.sweeps_dir, time.strftime("sweep-%Y%m%d-%H%M%S")))
    planned = plan["settings"] if plan["kind"] == "grid" else []
    sweep.write({"id": sweep.id, "created": time.time(), "owner": owner, "status": "created", "kind": plan["kind"],
                 "recipe": plan["base"], "search": plan.get("search"), "metric": plan["metric"],
                 "total": len(planned) or plan["search"]["trials"],
                 "runs": [{"index": i, "settings": s, "run_id": None, "status": "pending", "score": None,
                           "wall_time_s": None} for i, s in enumerate(planned)],
                 "best": None})
    return sweep


def find(workspace: Workspace, ref: str) -> Sweep:
    path = workspace.sweeps_dir / Path(ref).name
    if not (path / SWEEP_FILE).exists():
        raise SweepNotFound(f"No sweep called '{ref}' in {workspace.root}.")
    return Sweep(path)


def all_sweeps(workspace: Workspace) -> list[dict]:
    """Every sweep's state, newest first."""
    found = sorted(workspace.sweeps_dir.glob(f"*/{SWEEP_FILE}"), reverse=True) if workspace.sweeps_dir.exists() \
        else []
    return [Sweep(p.parent).state() for p in found]


def best(data: dict) -> dict | None:
    """The completed run with the best score in the metric's own direction; ties go to the shorter run."""
    done = [r for r in data["runs"] if r["status"] == "completed" and r["score"] is not None]
    if not done:
        return None
    sign = 1 if data["metric"]["higher_is_better"] else -1
    return min(done, key=lambda r: (-sign * r["score"], r["wall_time_s"] or 0.0))


def estimate_s(workspace: Workspace, planned: list[recipes.Recipe]) -> tuple[float, int]:
    """(seconds the planned runs should take, how many of them could not be timed): each timed by the earlier
    completed runs of the same task, model and strategy in the workspace, per epoch, times its own epochs."""
    kinds = {(r.task, r.model, r.strategy) for r in planned}
    per_epoch: dict[tuple, list[float]] = {}
    for run in workspace.runs():
        kind = (run["task"], run["model"], run["strategy"])
        if kind not in kinds or run["status"] != "completed" or not run.get("wall_time_s"):
            continue
        try:
            epochs = recipes.load(Path(run["path"]) / RECIPE).train.epochs or 1
        except RecipeError:
            continue
        per_epoch.setdefault(kind, []).append(run["wall_time_s"] / epochs)
    seconds, unknown = 0.0, 0
    for recipe in planned:
        known = per_epoch.get((recipe.task, recipe.model, recipe.strategy))
        if known:
            seconds += statistics.median(known) * recipe.train.epochs
        else:
            unknown += 1
    return seconds, unknown


def active_runs(data: dict) -> list[str]:
    return [r["run_id"] for r in data["runs"] if r["run_id"] and r["status"] in ACTIVE]


def planned_recipes(plan: dict) -> list[recipes.Recipe]:
    """The recipes a checked plan will run (a search: its trials, each timed as its first setting)."""
    if plan["kind"] == "grid":
        return [recipe_for(plan["base"], s) for s in plan["settings"]]
    first = {key: space[0] if isinstance(space, list) else space["low"]
             for key, space in plan["search"]["params"].items()}
    return [recipe_for(plan["base"], first)] * plan["search"]["trials"]


def duration_words(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min" if seconds >= 90 else f"{max(1, round(seconds))} s"


def plan_words(workspace: Workspace, plan: dict) -> str:
    """What a sweep will do, before it starts: how many runs and about how long."""
    planned = planned_recipes(plan)
    seconds, unknown = estimate_s(workspace, planned)
    if not unknown:
        return said("{runs} runs, about {time} in all (timed by earlier runs like them)", runs=len(planned),
                    time=duration_words(seconds))
    if unknown == len(planned):
        return said("{runs} runs; no earlier run like them to time them by: the first run will tell",
                    runs=len(planned))
    return said("{runs} runs; {timed} of them about {time} (timed by earlier runs like them), {unknown} not timed "
                "yet", runs=len(planned), timed=len(planned) - unknown, time=duration_words(seconds), unknown=unknown)


def stop(workspace: Workspace, ref: str) -> Sweep:
    """Asks a sweep to stop: its driver starts no more runs, and its queued and running runs are stopped (by this
    call too, so a sweep whose driver is gone stops as well)."""
    sweep = find(workspace, ref)
    sweep.file(STOP_FILE).write_text("")
    data = sweep.state()
    for run_id in active_runs(data):
        try:
            RunFolder(workspace.find_run(run_id)).request_cancel()
        except LookupError:
            continue
    if data["status"] in ("created", "interrupted"):
        data.update(status="stopped", best=best(data))
        sweep.write(data)
    return sweep

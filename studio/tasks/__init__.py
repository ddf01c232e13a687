"""The tasks the studio trains, one package or module each, and what a recipe means for its task. A task module
defines a Task object and registers it; this registry maps task names to modules and imports a module only when
its task is used.

Plugins add tasks (and families) without touching the studio: STUDIO_PLUGINS names Python modules (comma-
separated) that are imported first; each calls `register()` (and `families.register()` / `catalog.add()`). The
variable reaches the worker process too, so a plugin task trains like a built-in one.
"""
from __future__ import annotations

import dataclasses
import importlib
import os

from studio import recipe as recipes
from studio.errors import UserError
from studio.recipe import DataSpec, Recipe, RecipeError, TrainSpec
from studio.tasks.base import Strategy, Task

BUILTIN = {"image-classification": "studio.tasks.classification.image",
           "text-classification": "studio.tasks.classification.text",
           "audio-classification": "studio.tasks.classification.audio",
           "instruction-tuning": "studio.tasks.instruction.task",
           "preference-tuning": "studio.tasks.instruction.preference"}
COMMON_DATA_KEYS = ("path", "validation_split", "validation_path")
TASK_TRAIN_KEYS = ("packing", "class_weights")  # train.* keys only some tasks read (Task.train_keys)
_registered: dict[str, Task] = {}
_plugins_loaded = False


def load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for name in filter(None, (n.strip() for n in os.environ.get("STUDIO_PLUGINS", "").split(","))):
        importlib.import_module(name)


def register(task: Task) -> None:
    _registered[task.name] = task


def names() -> list[str]:
    load_plugins()
    return list(dict.fromkeys([*BUILTIN, *_registered]))


def get(name: str) -> Task:
    """The Task called `name`; UserError listing the known tasks otherwise."""
    load_plugins()
    if name not in _registered:
        if name not in BUILTIN:
            raise UserError(f"Unknown task '{name}'; choose one of: {', '.join(names())}.")
        importlib.import_module(BUILTIN[name])
    return _registered[name]


# -- a recipe for its task --------------------------------------------------------------------------------------------

def strategy_of(recipe: Recipe) -> Strategy:
    task = get(recipe.task)
    return task.strategies[recipe.strategy or task.default_strategy]


def checked(recipe: Recipe) -> Recipe:
    """The recipe, checked against its task (RecipeError naming the key): the task exists, the strategy and its
    options, the data and train keys the task reads, and the task's and strategy's own checks."""
    if recipe.task not in names():
        raise RecipeError(f"Recipe key 'task' is '{recipe.task}'; choose one of: {', '.join(names())}.")
    task = get(recipe.task)
    if recipe.strategy and recipe.strategy not in task.strategies:
        raise RecipeError(f"Recipe key 'strategy' is '{recipe.strategy}'; for {recipe.task} choose one of: "
                          f"{', '.join(task.strategies)}.")
    strategy = strategy_of(recipe)
    for key, value in recipe.strategy_options.items():
        if key not in strategy.options:
            allowed = ", ".join(strategy.options) or "none"
            raise RecipeError(f"Unknown recipe key 'strategy_options.{key}' for strategy '{strategy.name}'. "
                              f"Options it understands: {allowed}.")
        strategy.options[key].checked(key, value)
    reads = task.data_keys(recipe.data)
    defaults = DataSpec()
    for f in dataclasses.fields(DataSpec):  # a key the task does not read would be silently ignored: refused
        if f.name not in COMMON_DATA_KEYS and f.name not in reads and \
                getattr(recipe.data, f.name) != getattr(defaults, f.name):
            raise RecipeError(f"Recipe key 'data.{f.name}' is not used by {recipe.task} with this data; remove "
                              f"it. Keys it reads: {', '.join([*COMMON_DATA_KEYS, *reads])}.")
    for key in TASK_TRAIN_KEYS:  # the same for train keys only some tasks read
        if key not in task.train_keys and getattr(recipe.train, key) != getattr(TrainSpec(), key):
            raise RecipeError(f"Recipe key 'train.{key}' is not used by {recipe.task}; remove it.")
    task.check_recipe(recipe)
    strategy.check(recipe)
    return recipe


def resolved(recipe: Recipe) -> Recipe:
    """A checked copy with every default filled in (the strategy's train values and options, the task's data
    values), as saved into the run folder."""
    out = recipes.from_dict(recipes.to_dict(checked(recipe)))
    strategy = strategy_of(out)
    out.strategy = strategy.name
    for key, value in strategy.defaults.items():
        if getattr(out.train, key) is None:
            setattr(out.train, key, value)
    out.strategy_options = {key: option.checked(key, out.strategy_options.get(key, option.default))
                            for key, option in strategy.options.items()}
    for key, value in get(out.task).data_defaults.items():
        if getattr(out.data, key) is None:
            setattr(out.data, key, value)
    return out


def from_dict(raw) -> Recipe:
    """A recipe from plain data (YAML, JSON, the UI's draft), checked against its task."""
    return checked(recipes.from_dict(raw))


def load(path) -> Recipe:
    """A recipe file, checked against its task."""
    return checked(recipes.load(path))


def with_strategy(recipe: Recipe, name: str) -> Recipe:
    """The same data, model and seed with another strategy, for a side-by-side comparison, under that strategy's
    own recipe: its epochs, batch size, learning rate and options (a rate that suits a new head would wreck
    pretrained weights; a model trained from scratch needs far more epochs than a fine-tuned one, and would not be
    given a fair chance with fewer)."""
    out = recipes.from_dict(recipes.to_dict(recipe))
    out.strategy, out.strategy_options = name, {}
    out.train.epochs = out.train.batch_size = out.train.learning_rate = None
    return checked(out)

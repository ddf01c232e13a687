"""What a task is: the vocabulary it adds to the recipe (strategies with their defaults and options, the data
keys it reads), and the whole life of its models: data, training pipeline, prediction, exports, model card.

A new task subclasses Task in its own module and registers an instance (studio.tasks.register); nothing outside
the module asks which task it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from studio.recipe import DataSpec, Recipe
from studio.runfolder import RunFolder


@dataclass(frozen=True)
class Example:
    """Bundled data a person can try with one click."""
    id: str  # e.g. "shapes": the Data tab's button is #example-<id>
    words: str  # e.g. "shapes (images)"
    path: Path


@dataclass(frozen=True)
class ColumnChoice:
    """A column of the user's table the task reads, for the Data tab's pickers."""
    key: str  # the data.* key it fills, e.g. "label_column"
    words: str  # what the picker says, e.g. "Column with the label"
    guesses: tuple[str, ...] = ()  # column names that say what they hold (the first guess; never a random column)
    required: bool = True  # the data cannot be read without it


@dataclass(frozen=True)
class Strategy:
    name: str
    words: str  # the name a person reads, e.g. "Feature extraction"
    explain: str  # one line: what it does and when it is the right choice
    defaults: dict = field(default_factory=dict)  # train.* defaults: epochs, batch_size, learning_rate
    options: dict = field(default_factory=dict)  # strategy_options: name → (type, default, low, high)


class Task:
    name: str  # the recipe's `task`
    title: str  # plain words for the Model tab
    modality: str  # what the model reads: image, text, audio, … (families build models by it)
    strategies: dict[str, Strategy]
    default_strategy: str
    data_hint: str = ""  # what data.path should be, in words
    examples: tuple[Example, ...] = ()
    file_kind = None  # a FileKind when the data can be files added class by class (images, clips)
    table_columns: tuple[ColumnChoice, ...] = ()  # the columns of a table it reads, in the Data tab's order
    data_defaults: dict = {}  # data.* values a recipe leaving them out gets, e.g. {"max_length": 128}
    train_keys: tuple[str, ...] = ()  # train.* keys only some tasks read (recipe.TASK_TRAIN_KEYS), e.g. packing

    # -- the recipe ----------------------------------------------------------------------------------------------
    def data_keys(self, data: DataSpec) -> tuple[str, ...]:
        """The data.* keys this task reads for this data (besides path and the validation keys)."""
        return ()

    def check_recipe(self, recipe: Recipe) -> None:
        """Checks beyond the recipe's own (RecipeError naming the key)."""

    def check_model(self, model: str, trust_remote_code: bool = False) -> str:
        """Whether `model` can be used (config only, no weights): a sentence saying where it comes from, or
        ModelError in words."""
        raise NotImplementedError

    def recommend(self, train_counts: dict[str, int], device_type: str) -> tuple[str, str]:
        """(the strategy to try first, why in words) for this data on this device."""
        return self.default_strategy, "The usual first choice for this task."

    # -- data -------------------------------------------------------------------------------------------------------
    def accepts(self, path: Path) -> bool:
        """Whether an uploaded file or folder looks like this task's data (the Data tab routes uploads by it)."""
        return False

    def load_data(self, spec: DataSpec, seed: int, uploads_dir: Path) -> Any:
        """The data checked and split, with `.report` (a DataReport); DataError in words when it cannot be used."""
        raise NotImplementedError

    # -- training -----------------------------------------------------------------------------------------------------
    def train(self, ctx) -> dict:
        """Trains the recipe in ctx (a RunContext) start to finish, writing into its run folder; returns the
        figures status.json keeps for the runs list (e.g. accuracy)."""
        raise NotImplementedError

    # -- a trained model ------------------------------------------------------------------------------------------
    def predictor(self, folder: Path) -> Any:
        """An object whose predict(inputs, top_k) answers for a saved model folder."""
        raise NotImplementedError

    def check_input(self, value: str) -> str | None:
        """Why a command-line input (a file path or a text) cannot be given to predict(), or None."""
        return None

    exports: dict[str, Callable[[RunFolder], Path]] = {}  # export format → function writing it

    def model_card(self, run: RunFolder) -> str:
        """The README.md of a trained model, from the run folder's files."""
        raise NotImplementedError

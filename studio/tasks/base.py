"""What a task is: the vocabulary it adds to the recipe (strategies, each an object with its defaults, options and
behaviour; the data and train keys it reads), the whole life of its models (data, training pipeline, prediction,
exports, model card), and what the UI and the command line show for it (its headline metric, curves, extra
settings, comparisons, the view of its pages). Nothing outside a task asks which task or strategy it is: they ask
the objects.

A new task subclasses Task in its own module and registers an instance (studio.tasks.register).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from studio.engine.callbacks import lowest_loss
from studio.recipe import DataSpec, Recipe, RecipeError, check_range, type_word
from studio.runfolder import EXAMPLES, RunFolder
from studio.words import said


@dataclass(frozen=True)
class Example:
    """Bundled data a person can try with one click."""
    id: str  # e.g. "shapes": the Data tab's button is #example-<id>
    words: str  # e.g. "shapes (images)"
    path: Path


def guess_column(columns: list[str], names: tuple[str, ...]) -> str | None:
    """The column whose name says what it holds; None when no name does (never a random column)."""
    lower = {c.lower().strip(): c for c in columns}
    return next((lower[k] for k in names if k in lower), None)


@dataclass(frozen=True)
class ColumnChoice:
    """A column of the user's table the task reads, for the Data tab's pickers."""
    key: str  # the data.* key it fills, e.g. "label_column"
    words: str  # what the picker says, e.g. "Column with the label"
    guesses: tuple[str, ...] = ()  # column names that say what they hold (the first guess; never a random column)
    required: bool = True  # the data cannot be read without it


@dataclass(frozen=True)
class Option:
    """A strategy option (strategy_options.<name>): its type, default and allowed values, and its box's words."""
    type: type  # int | float | str
    default: Any
    low: float | None = None  # numbers: the allowed range
    high: float | None = None
    choices: tuple[str, ...] | None = None  # text: the allowed values (None: any text)
    words: str = ""  # the box's label
    info: str | None = None  # one line under it

    def checked(self, key: str, value: Any) -> Any:
        """The value as its type; RecipeError naming the key when it is not allowed."""
        if self.type is str:
            if not isinstance(value, str) or (self.choices is not None and value not in self.choices):
                allowed = f"choose one of: {', '.join(self.choices)}" if self.choices else "give text"
                raise RecipeError(f"Recipe key 'strategy_options.{key}' is {value!r}; {allowed}.")
            return value
        if not isinstance(value, (int, float)) or isinstance(value, bool) or (
                self.type is int and not float(value).is_integer()):
            raise RecipeError(f"Recipe key 'strategy_options.{key}' must be {type_word(self.type)}, got {value!r}.")
        check_range(f"strategy_options.{key}", value, self.low, self.high)
        return self.type(value)


@dataclass(frozen=True)
class Strategy:
    """How a task adapts a model. A task's strategies subclass this with their behaviour; adding a strategy is
    adding one class."""
    name: str
    words: str  # the name a person reads, e.g. "Feature extraction"
    explain: str  # one line: what it does and when it is the right choice
    defaults: dict = field(default_factory=dict)  # train.* defaults: epochs, batch_size, learning_rate
    options: dict[str, Option] = field(default_factory=dict)  # strategy_options

    def check(self, recipe: Recipe) -> None:
        """What this strategy cannot do with the recipe (RecipeError naming the key)."""

    def export_refused(self, fmt: str) -> str | None:
        """Why this strategy's models cannot be exported as `fmt`, in words; None when they can."""
        return None


@dataclass(frozen=True)
class Metric:
    """A figure of a run (a key of status.json and eval.json) and how to show it."""
    key: str  # e.g. "accuracy"
    words: str  # e.g. "validation accuracy"
    higher_is_better: bool = True
    percent: bool = False  # shown as 93.0% (else with 4 significant digits)
    explain: str = ""  # what it measures, in one line

    def format(self, value: float | None) -> str:
        if value is None:
            return ""
        return f"{value:.1%}" if self.percent else f"{value:.4g}"


@dataclass(frozen=True)
class Field:
    """A setting some tasks read besides the strategy's options (data.max_length, train.packing, …), shown on the
    Strategy tab for the tasks that read it."""
    key: str  # the recipe key, e.g. "data.max_length"
    words: str
    info: str = ""
    type: type = int  # int | bool


TOKENS_KEPT = Field("data.max_length", "Tokens kept per example",
                    "Longer examples are cut (a chat's prompt from its start, so the answer stays whole).")


@dataclass(frozen=True)
class Export:
    """A format a task's models can be exported as."""
    name: str  # e.g. "onnx": `studio export --format onnx`
    words: str  # e.g. "ONNX (model.onnx)"
    write: Callable[..., Path]  # (run folder, options the command line passes, e.g. gguf_type) → its path
    refused: Callable[[Any], str | None] = lambda info: None  # (the model's ModelInfo) → why not, or None
    size: Callable[[Any], int | None] = lambda info: None  # (the model's ModelInfo) → about how many bytes, if known


class Task:
    name = ""  # the recipe's `task`
    title = ""  # plain words for the Model tab
    modality = ""  # what the model reads: image, text, audio, … (families build models by it)
    strategies: dict[str, Strategy] = {}
    default_strategy = ""
    data_hint: str = ""  # what data.path should be, in words
    examples: tuple[Example, ...] = ()
    file_kind = None  # a FileKind when the data can be files added class by class (images, clips)
    table_columns: tuple[ColumnChoice, ...] = ()  # the columns of a table it reads, in the Data tab's order
    # Sets of table_columns keys, one of which a table must name to look made for this task (None: its required
    # columns); see fit().
    essential_columns: tuple[tuple[str, ...], ...] | None = None
    data_defaults: dict = {}  # data.* values a recipe leaving them out gets, e.g. {"max_length": 128}
    train_keys: tuple[str, ...] = ()  # train.* keys only some tasks read (TASK_TRAIN_KEYS), e.g. packing

    # -- what the UI and the command line show for it -------------------------------------------------------------
    headline = Metric("val_loss", "validation loss", higher_is_better=False)  # the runs list's figure
    curves: tuple[Metric, ...] = ()  # per-epoch validation figures drawn beside the loss
    fields: tuple[Field, ...] = ()  # settings besides the strategy's options (Strategy tab)
    comparisons: tuple[str, ...] = ()  # strategies a finished run can be compared with in one click
    view = ""  # which page parts show its data, results and playground ("" the generic ones: rows, figures, text)
    classes = False  # its data has classes (the Data tab's counts chart)
    best = staticmethod(lowest_loss)  # which epoch is kept: a history record → a value, higher is better

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

    def memory_needs(self, params_m: float) -> dict | None:
        """What training a catalog model of params_m million parameters takes, for tasks that estimate it (the
        Model tab's cards): {"gpu": [(strategy words, GB on a GPU)], "here": GB here, "have": GB here}."""
        return None

    def recommend(self, train_counts: dict[str, int], device_type: str) -> tuple[str, str]:
        """(the strategy to try first, why in words) for this data on this device."""
        return self.default_strategy, said("The usual first choice for this task.")

    # -- data -------------------------------------------------------------------------------------------------------
    def accepts(self, path: Path) -> bool:
        """Whether an uploaded file or folder looks like this task's data (the Data tab routes uploads by it)."""
        return False

    def fit(self, columns: list[str]) -> int:
        """How well a table with these columns looks made for this task: how many of its columns the names say
        (0: none of its essential sets is named). The Data tab sends an upload to the task it fits best."""
        named = {c.key for c in self.table_columns if guess_column(columns, c.guesses)}
        essential = self.essential_columns or (tuple(c.key for c in self.table_columns if c.required),)
        if not self.table_columns or not any(set(keys) <= named for keys in essential):
            return 0
        return len(named)

    def load_data(self, spec: DataSpec, seed: int, uploads_dir: Path) -> Any:
        """The data checked and split, with `.report` (a report with `to_dict()`, `warnings` and `skipped`) and
        `train_items`, `val_items`; DataError in words when it cannot be used."""
        raise NotImplementedError

    # -- training -----------------------------------------------------------------------------------------------------
    def train(self, ctx) -> dict:
        """Trains the recipe in ctx (a RunContext) start to finish, writing into its run folder; returns the
        figures status.json keeps for the runs list (the headline metric among them)."""
        raise NotImplementedError

    # -- a trained model ------------------------------------------------------------------------------------------
    inputs_are_files = False  # what predict() takes: file paths (images, clips) or texts

    def predictor(self, folder: Path) -> Any:
        """An object whose predict(inputs, top_k) answers for a saved model folder."""
        raise NotImplementedError

    def example_inputs(self, run: RunFolder) -> list[str]:
        """The run's example inputs (a few held-back ones it saved), as predict() takes them: files copied into
        the run folder, or texts."""
        listed = [e["input"] for e in (run.read(EXAMPLES) or {}).get("examples", [])]
        return [str(run.path / e) for e in listed] if self.inputs_are_files else listed

    def check_input(self, value: str) -> str | None:
        """Why a command-line input (a file path or a text) cannot be given to predict(), or None."""
        return None

    exports: tuple[Export, ...] = ()

    explains = False  # its saved models' answers can be explained (explainer() gives one)
    # How `studio serve-model` offers its models to other programs: "chat" (OpenAI's /v1/chat/completions),
    # "classify" (/v1/classify), or "" (not served).
    served_as = ""

    def explainer(self, folder: Path):
        """What made a saved model answer as it did: an object with check_input(value) and explain(inputs,
        out_dir) (one dict per input), or None for a task whose answers are not explained."""
        return None

    def chat(self, folder: Path):
        """A saved model ready to converse (`studio chat`), or None for a task whose models do not chat."""
        return None

"""The recipe: one typed description of a run, saved as YAML.

The UI wizard fills it, `studio train RECIPE.yaml` replays it, tests build it in code. This module checks what
holds for every task: unknown keys, wrong types and numbers out of range raise RecipeError naming the key. What a
task adds (its strategies with their defaults and options, the data and train keys it reads, its own checks) is
checked and filled in by the task registry: `studio.tasks.checked(recipe)` and `studio.tasks.resolved(recipe)`.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from studio.errors import UserError
from studio.runfolder import write_text

class RecipeError(UserError):
    """A recipe that cannot run; the message names the key and says how to fix it."""


@dataclass
class DataSpec:
    path: str = ""
    text_column: str = "text"
    label_column: str = "label"
    validation_split: float = 0.2
    validation_path: str | None = None
    max_length: int | None = None  # text: tokens kept per example; None: the task's default (Task.data_defaults)
    group_column: str | None = None  # tables: a column (e.g. region, device) to report results per group
    path_column: str | None = None  # tables that list files (images, clips): the column with their paths
    max_seconds: float | None = None  # audio: seconds of each clip read (the rest is cut); None: the model's window
    # instruction tuning: prompt/response columns (and an optional system column), or one column of chat messages
    # (JSONL: role/content lists, or ShareGPT from/value); neither: data.text_column for continued pretraining
    prompt_column: str | None = None
    response_column: str | None = None
    system_column: str | None = None
    messages_column: str | None = None
    # preference tuning: pairs of a better and a worse answer to each prompt (KTO: response_column and
    # label_column, answers marked good or bad one by one)
    chosen_column: str | None = None
    rejected_column: str | None = None
    train_on_prompt: bool = False  # instruction tuning: also learn the prompts (off: only the answers are learnt)
    corrections: str | None = None  # classification: a .csv of example,label (a class or "exclude") applied on load
    drop_duplicates: str = "none"  # classification: none (copies only reported) | validation | all (DROP_DUPLICATES)


@dataclass
class TrainSpec:
    epochs: int | None = None  # None: the strategy's default (its `defaults`)
    batch_size: int | None = None
    learning_rate: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    precision: str = "auto"  # auto (bf16/fp16 on GPU, fp32 on CPU) | fp32 | bf16 | fp16
    num_workers: int | None = None  # data-loading processes; None: none on CPU (they would compete with
    # training for the cores), several on a GPU so that decoding images stays off the critical path
    early_stopping_patience: int = 5  # stop after this many epochs without a lower validation loss; 0: never
    retry_smaller_batch: bool = True  # out of memory: retry once per halving of the batch, down to 1
    devices: int | str = 1  # how many devices train together (processes under accelerate launch), or "all"
    distributed: str = "ddp"  # several devices: ddp (a copy per device) | fsdp (the model sharded across them)
    cpus: int = 1  # CPU cores a run reserves on a cluster (studio --cluster); this machine's runs queue per device
    gradient_accumulation_steps: int = 1  # batches whose gradients add up before each optimizer step
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, slower
    class_weights: str = "auto"  # auto: classes imbalanced above 3:1 weigh by their rarity in the loss | none
    packing: bool = False  # language models: several short examples per sequence, never attending to each other
    report_to: list[str] = field(default_factory=list)  # experiment trackers that also get the figures (REPORT_TO)
    mlflow_tracking_uri: str | None = None  # None: sqlite:///<workspace>/mlflow.db


@dataclass
class Recipe:
    task: str = "image-classification"
    model: str = "efficientnet-lite0"
    data: DataSpec = field(default_factory=DataSpec)
    strategy: str = ""  # empty: the task's default strategy
    strategy_options: dict[str, Any] = field(default_factory=dict)
    train: TrainSpec = field(default_factory=TrainSpec)
    output_dir: str = "runs"
    trust_remote_code: bool = False  # run Python code shipped with a hub model; only for models you trust

    def option(self, key: str) -> Any:
        """A strategy option of a resolved recipe (studio.tasks.resolved fills in every default)."""
        return self.strategy_options[key]

    def to_yaml(self) -> str:
        return yaml.safe_dump(to_dict(self), sort_keys=False)

    def save(self, path: str | Path) -> None:
        write_text(Path(path), self.to_yaml())


def to_dict(recipe: Recipe) -> dict[str, Any]:
    return dataclasses.asdict(recipe)


def load(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"Recipe file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"Could not read the recipe file {path}: {exc}") from None
    return from_yaml(text)


def from_yaml(text: str) -> Recipe:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"The recipe is not valid YAML ({where}{problem}). Check the indentation, colons and "
                          "quotes there.") from None
    if raw is None:
        raw = {}
    return from_dict(raw)


def from_dict(raw: Any) -> Recipe:
    if not isinstance(raw, dict):
        raise RecipeError(f"The recipe must be a mapping of keys to values, not {type(raw).__name__}.")
    recipe = _build(Recipe, raw, prefix="")
    check_values(recipe)
    return recipe


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(key) for key in raw if key not in names)  # YAML keys may be numbers or null too
    if unknown:
        raise RecipeError(f"Unknown recipe key '{prefix}{unknown[0]}'. Known keys here: {', '.join(sorted(names))}.")
    kwargs = {}
    for name, value in raw.items():
        kwargs[name] = _coerce(hints[name], value, f"{prefix}{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise RecipeError(f"Recipe key '{key}' must be a mapping, got {value!r}.")
        return _build(hint, value, prefix=f"{key}.")
    optional = isinstance(hint, types.UnionType) and type(None) in hint.__args__
    if optional:
        if value is None:
            return None
        hint = next(a for a in hint.__args__ if a is not type(None))
    if isinstance(hint, types.UnionType):  # e.g. int | str: the first type the value is
        for option in hint.__args__:
            if isinstance(value, option) and not isinstance(value, bool):
                return value
        words = " or ".join(type_word(a) for a in hint.__args__)
        raise RecipeError(f"Recipe key '{key}' must be {words}, got {value!r}.")
    origin = typing.get_origin(hint) or hint
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"Recipe key '{key}' must be a mapping, got {value!r}.")
        return dict(value)
    if origin is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # a hub id like 1234 or a path typed as a number is still a name
    if not isinstance(value, origin) or (origin is not bool and isinstance(value, bool)):
        raise RecipeError(f"Recipe key '{key}' must be {type_word(origin)}, got {value!r}.")
    return value


def type_word(kind: type) -> str:
    return {int: "a whole number", float: "a number", str: "text", bool: "true or false",
            list: "a list"}.get(kind, kind.__name__)


def check_range(key: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not (low <= value <= high):
        raise RecipeError(f"Recipe key '{key}' is {value}; it must be between {low:g} and {high:g}.")


def check_values(recipe: Recipe) -> None:
    """What holds for every task (types were checked when building): raises RecipeError naming the key."""
    if not str(recipe.task).strip():
        raise RecipeError("Recipe key 'task' is empty; name the task, e.g. image-classification.")
    if not str(recipe.model).strip():
        raise RecipeError("Recipe key 'model' is empty; name a catalog model, a hub id or a local folder.")
    d = recipe.data
    if not d.path.strip():
        raise RecipeError("Recipe key 'data.path' is empty; give a folder of class sub-folders, a .zip, "
                          "a .csv or a .jsonl file.")
    if d.validation_path is None:
        check_range("data.validation_split", d.validation_split, *DATA_RANGES["validation_split"])
    check_range("data.max_length", d.max_length, *DATA_RANGES["max_length"])
    check_range("data.max_seconds", d.max_seconds, *DATA_RANGES["max_seconds"])
    if d.drop_duplicates not in DROP_DUPLICATES:
        raise RecipeError(f"Recipe key 'data.drop_duplicates' is '{d.drop_duplicates}'; choose one of: "
                          + "; ".join(f"{k} ({v})" for k, v in DROP_DUPLICATES.items()) + ".")
    _check_train(recipe.train)
    out = Path(recipe.output_dir)
    if out.is_absolute() or ".." in out.parts or not recipe.output_dir.strip():
        raise RecipeError(f"Recipe key 'output_dir' is '{recipe.output_dir}'; it must be a folder name inside "
                          "the workspace, such as 'runs'.")




# What data.drop_duplicates may say, and what each does with exact and near copies of an example.
DROP_DUPLICATES = {"none": "copies are only reported", "validation": "validation examples that copy a training "
                   "example are left out", "all": "one example of each group of copies is kept"}
# The allowed range of each number under data and train: (low, high), inclusive. The UI corrects its boxes to these.
DATA_RANGES = {"validation_split": (0.05, 0.5), "max_length": (8, 32768), "max_seconds": (0.1, 3600)}
# The allowed range of each number under train: (low, high), inclusive. The UI corrects its boxes to these.
TRAIN_RANGES = {"epochs": (1, 1000), "batch_size": (1, 4096), "learning_rate": (1e-7, 1.0),
                "weight_decay": (0.0, 1.0), "warmup_ratio": (0.0, 0.5), "seed": (0, 2**32 - 1),
                "num_workers": (0, 64), "early_stopping_patience": (0, 1000),
                "gradient_accumulation_steps": (1, 4096), "devices": (1, 64), "cpus": (1, 1024)}


def _check_train(t: TrainSpec) -> None:
    if isinstance(t.devices, str) and t.devices != "all":
        raise RecipeError(f"Recipe key 'train.devices' is '{t.devices}'; give a whole number or 'all'.")
    for key, (low, high) in TRAIN_RANGES.items():
        value = getattr(t, key)
        if not isinstance(value, str):
            check_range(f"train.{key}", value, low, high)
    for key, value, allowed in (("train.device", t.device, ("auto", "cpu", "cuda", "mps")),
                                ("train.precision", t.precision, ("auto", "fp32", "bf16", "fp16")),
                                ("train.distributed", t.distributed, ("ddp", "fsdp")),
                                ("train.class_weights", t.class_weights, ("auto", "none"))):
        if value not in allowed:
            raise RecipeError(f"Recipe key '{key}' is '{value}'; choose one of: {', '.join(allowed)}.")
    _check_tracking(t)


REPORT_TO = ("tensorboard", "mlflow", "trackio")  # the experiment trackers train.report_to may name
MLFLOW_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")


def _check_tracking(t: TrainSpec) -> None:
    allowed = ", ".join(REPORT_TO)
    for name in t.report_to:
        if name not in REPORT_TO:
            raise RecipeError(f"Recipe key 'train.report_to' names {name!r}; choose among: {allowed}.")
        if t.report_to.count(name) > 1:
            raise RecipeError(f"Recipe key 'train.report_to' names '{name}' twice; list each of {allowed} once.")
    uri = t.mlflow_tracking_uri
    if uri is None:
        return
    parts = urlsplit(uri.strip())
    scheme = parts.scheme.split("+")[0].lower()  # SQLAlchemy's dialect+driver, e.g. postgresql+psycopg2
    if scheme not in MLFLOW_SCHEMES or not (parts.netloc or parts.path) or \
            (scheme in ("http", "https") and not parts.netloc):
        raise RecipeError(f"Recipe key 'train.mlflow_tracking_uri' is '{uri}'; give the URI of an MLflow tracking "
                          "store, e.g. sqlite:///path/to/mlflow.db or http://host:5000 (schemes: "
                          f"{', '.join(MLFLOW_SCHEMES)}), or leave it out for the workspace's mlflow.db.")

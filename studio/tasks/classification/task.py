"""What every classification task shares (images, texts, sounds): the strategies menu, labelled data with a report,
the model (a backbone and a new head), the predictor, the exports and what the pages show. A modality subclass
says how to read its data and how to turn examples into model inputs (an Encoder); the training pipeline is in
pipeline.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from studio import families
from studio.engine.callbacks import most_accurate
from studio.engine.data.folders import Loaded
from studio.engine.device import pick_device
from studio.engine.loop import to_device
from studio.families.base import ModelInfo
from studio.recipe import DataSpec, Recipe, RecipeError
from studio.tasks.base import ColumnChoice, Export, Metric, Task
from studio.tasks.classification import duplicates, export, metrics, pipeline
from studio.tasks.classification.data import LabelledData, assemble
from studio.tasks.classification.model import load_classifier
from studio.tasks.classification.strategies import STRATEGIES
from studio.engine.data.tables import TABLE_SUFFIXES
from studio.words import said

MANY_PER_CLASS = 100  # below this, a frozen backbone generalises best
LABEL_GUESSES = ("label", "labels", "class", "category", "intent", "target")


class Encoder:
    """Turns a modality's examples into model inputs: a torch Dataset for training (with augmentation when the
    backbone trains), a collate function, and batches for prediction."""
    collate: Callable | None = None

    def dataset(self, items: list, labels: list[int]) -> torch.utils.data.Dataset:
        raise NotImplementedError

    def batch(self, items: list) -> Any:
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        """Writes what prediction needs beside the weights (a tokenizer, say)."""


class ClassificationTask(Task):
    strategies = STRATEGIES
    default_strategy = "feature-extraction"
    train_keys = ("class_weights",)
    noun = "example"  # "image", "text": in messages
    inputs_are_files = True
    headline = Metric("accuracy", "validation accuracy", percent=True,
                      explain="the share of the held-back examples the model labels right")
    curves = (Metric("accuracy", "validation accuracy", percent=True), Metric("macro_f1", "macro-F1"))
    comparisons = ("scratch", "full")
    best = staticmethod(most_accurate)
    classes = True
    served_as = "classify"
    explains = True  # explain.py: a heatmap, a weight per word or per moment (captum)
    exports = (Export("zip", "Model folder (.zip)", export.model_zip),
               Export("hf", "Transformers (pipeline) folder, zipped", export.hf, export.hf_refused),
               Export("onnx", "ONNX (model.onnx)", export.onnx))

    # -- what a modality adds -----------------------------------------------------------------------------------
    def read_source(self, path: Path, spec: DataSpec, uploads_dir: Path) -> Loaded:
        raise NotImplementedError

    def encoder(self, info: ModelInfo, source: str, augment: bool, recipe: Recipe | None = None) -> Encoder:
        """source: where the model's own files are (the model reference when training, the saved folder after)."""
        raise NotImplementedError

    # -- the recipe -----------------------------------------------------------------------------------------------
    def data_keys(self, data: DataSpec) -> tuple[str, ...]:
        if Path(data.path).suffix.lower() in TABLE_SUFFIXES:
            return ("label_column", "group_column", self.table_item_key, "corrections", "drop_duplicates")
        return ("corrections", "drop_duplicates")

    table_item_key = "path_column"
    item_column_words = "Column with the file paths"
    item_column_guesses = ("path", "file", "filename", "image", "clip", "audio")

    @property
    def table_columns(self) -> tuple[ColumnChoice, ...]:
        return (ColumnChoice(self.table_item_key, self.item_column_words, self.item_column_guesses),
                ColumnChoice("label_column", "Column with the label", LABEL_GUESSES),
                ColumnChoice("group_column", "Group column (optional)", (), required=False))

    def check_recipe(self, recipe: Recipe) -> None:
        if self.inputs_are_files and Path(recipe.data.path).suffix.lower() in TABLE_SUFFIXES \
                and not recipe.data.path_column:
            raise RecipeError(f"Recipe key 'data.path_column' is missing: a table of {self.noun}s needs the column "
                              f"that holds each {self.noun}'s file path (relative to the table's folder).")

    def check_model(self, model: str, trust_remote_code: bool = False) -> str:
        family, ref = families.resolve(model, self.name)
        return families.get(family).check(ref, self.name, self.modality, trust_remote_code)

    # Throughputs measured on 2 CPU cores with the offline models (modalities set their own); GPUs are far faster.
    cpu_inference_per_s = 22.0
    cpu_training_per_s = 3.8
    gpu_strategy = "full"  # with plenty of data and a GPU

    def recommend(self, train_counts: dict[str, int], device_type: str) -> tuple[str, str]:
        """(strategy, why, in words) for a data set of this size on this device."""
        smallest = min(train_counts.values()) if train_counts else 0
        total = sum(train_counts.values())
        if smallest < MANY_PER_CLASS:
            return self.default_strategy, said(
                "The smallest class has {n} training examples. With so few, a frozen pretrained model with a new "
                "head generalises best and cannot overfit its pretrained weights.", n=smallest)
        if device_type == "cpu":
            return self.default_strategy, said(
                "No GPU here: feature extraction reads each example once (about {reading}) and then trains a small "
                "head in seconds. Fine-tuning would take about {tuning} for 5 epochs.",
                reading=_duration(total / self.cpu_inference_per_s),
                tuning=_duration(5 * total / self.cpu_training_per_s))
        return self.gpu_strategy, said("Plenty of examples and a GPU: {strategy} usually gives the best accuracy.",
                                       strategy=self.strategies[self.gpu_strategy].words)

    # -- data -----------------------------------------------------------------------------------------------------
    def load_data(self, spec: DataSpec, seed: int, uploads_dir: Path) -> LabelledData:
        data = assemble(spec, self.modality, seed, lambda path: self.read_source(path, spec, uploads_dir),
                        self.inputs_are_files)
        return duplicates.at_load(data, spec.drop_duplicates)

    # -- model ------------------------------------------------------------------------------------------------------
    def build_backbone(self, recipe: Recipe):
        """(backbone, ModelInfo, where the model's own files are) for the recipe."""
        return self.backbone(recipe.model, self.strategies[recipe.strategy].pretrained, recipe.trust_remote_code,
                             recipe.data.max_length)

    def backbone(self, model: str, pretrained: bool, trust_remote_code: bool = False, max_length: int = 128):
        """(backbone, ModelInfo, where the model's own files are) for a catalog name, hub id or folder."""
        family, ref = families.resolve(model, self.name)
        backbone = families.get(family).build(ref, self.name, self.modality, pretrained, trust_remote_code)
        info = ModelInfo(model=model, family=family, arch=getattr(backbone, "arch", ""), task=self.name,
                         preprocessing=self.preprocessing(backbone, max_length),
                         pooling=getattr(backbone, "pooling", "head"),
                         bypassed=getattr(backbone, "bypassed", []),
                         trust_remote_code=bool(trust_remote_code and family == "hf"))
        return backbone, info, ref

    def preprocessing(self, backbone, max_length: int) -> dict:
        return dict(backbone.preprocessing)

    # -- training ---------------------------------------------------------------------------------------------------
    def train(self, ctx) -> dict:
        return pipeline.train(self, ctx)

    # -- a trained model ------------------------------------------------------------------------------------------
    def predictor(self, folder: Path) -> "Predictor":
        return Predictor(self, folder)

    def explainer(self, folder: Path):
        from studio.tasks.classification.explain import Explainer  # captum loads only when asked to explain
        return Explainer(self, folder)

    def onnx_sequence_axis(self, info: ModelInfo) -> tuple[int, int] | None:
        """(axis, longest) of the inputs' length that varies in an ONNX export; None when nothing does."""
        return 1, info.preprocessing.get("max_length", 4096)

    def card_snippets(self, info: dict) -> dict[str, str]:
        """Code for the model card: {"example": a Python literal of inputs, "onnx": how to feed the ONNX model}."""
        raise NotImplementedError


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min" if seconds >= 60 else f"{max(1, round(seconds))} s"


class Predictor:
    """A saved classifier's answers: top-k labels with probabilities for each input."""

    def __init__(self, task: ClassificationTask, folder: Path, device: str = "auto"):
        self.device = pick_device(device)
        self.model, self.info = load_classifier(folder, task.modality)
        self.model.to(self.device)
        if self.model.backbone.convolutional:
            self.model.to(memory_format=torch.channels_last)
        self.labels = self.info.labels
        self.encoder = task.encoder(self.info, str(folder), augment=False)

    @torch.inference_mode()
    def predict(self, inputs: list, top_k: int = 3) -> list[dict]:
        batch = to_device(self.encoder.batch(inputs), self.device)
        return metrics.top_k(self.model(batch).cpu(), self.labels, top_k)

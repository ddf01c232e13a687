"""What every classification task shares (images, texts, …): the strategies menu, labelled data with a report,
the training pipeline (data → backbone + new head → strategy → loop → evaluation → saved model) and the predictor.
A modality subclass says how to read its data and how to turn examples into model inputs (an Encoder)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch

from studio import families
from studio.engine import calibration, classifier, evaluation, head_solver, strategies
from studio.engine.callbacks import load_state_file
from studio.engine.classifier import Classifier
from studio.engine.data.labelled import IMBALANCE_RATIO, LabelledData, Loaded, assemble
from studio.engine.device import pick_device, reset_peak_memory
from studio.engine.distributed import full_state, unwrap
from studio.engine.loop import to_device
from studio.families.base import ModelInfo
from studio.recipe import DataSpec, Recipe, RecipeError
from studio.runfolder import DATA_REPORT, EVAL, EXAMPLES, LABELS, RunFolder
from studio.tasks import classification_probe as probe
from studio.tasks import classification_report
from studio.tasks import classification_training as training
from studio.tasks.classification_training import BACKBONE_TRAINS
from studio.tasks.classification_report import copy_into_run
from studio.tasks.base import ColumnChoice, Strategy, Task

LR_FINDER = {"lr_finder": (str, "auto", ("auto", "on", "off"), None)}  # auto: where it costs under a tenth of the run
STRATEGIES = {s.name: s for s in (
    Strategy("feature-extraction", "Feature extraction",
             "keep the pretrained model frozen and train only a new final layer. Fast, even on a CPU.",
             # lbfgs (default): the head solved exactly, the curve draws its search; the epochs are sgd's
             {"epochs": 30, "batch_size": 32, "learning_rate": 3e-3},
             {"head_solver": (str, "lbfgs", ("lbfgs", "sgd"), None)}),
    Strategy("full", "Full fine-tuning",
             "let every weight adjust to your data. Most accurate with enough data and a GPU.",
             {"epochs": 5, "batch_size": 16, "learning_rate": 5e-5}, LR_FINDER),
    Strategy("partial", "Fine-tune the last blocks",
             "freeze the early layers (general shapes and words) and adjust the last few.",
             {"epochs": 5, "batch_size": 16, "learning_rate": 1e-4}, {"trainable_blocks": (int, 2, 1, 1000), **LR_FINDER}),
    Strategy("layerwise", "Layer-wise learning rates",
             "adjust everything, the last layers the most and the early layers gently.",
             {"epochs": 5, "batch_size": 16, "learning_rate": 1e-4}, {"lr_decay": (float, 0.8, 0.01, 1.0), **LR_FINDER}),
    Strategy("lora", "LoRA adapters",
             "add small trainable adapters inside the model; almost as good as full fine-tuning, far lighter.",
             {"epochs": 5, "batch_size": 16, "learning_rate": 5e-4},
             {"lora_r": (int, 8, 1, 1024), "lora_alpha": (float, 16.0, 0.1, 4096.0),
              "lora_dropout": (float, 0.05, 0.0, 0.9), **LR_FINDER}),
    Strategy("scratch", "From scratch (baseline)",
             "start from random weights: the baseline that shows what pretraining buys you.",
             # its own recipe: enough epochs to converge, and early stopping only after half of them
             {"epochs": 30, "batch_size": 32, "learning_rate": 1e-3}),
)}
TABLE_SUFFIXES = (".csv", ".jsonl")
MANY_PER_CLASS = 100  # below this, a frozen backbone generalises best
LABEL_GUESSES = ("label", "labels", "class", "category", "intent", "target")
EXAMPLES_PER_CLASS = 2


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

    # -- what a modality adds -----------------------------------------------------------------------------------
    def read_source(self, path: Path, spec: DataSpec, uploads_dir: Path) -> Loaded:
        raise NotImplementedError

    def encoder(self, info: ModelInfo, source: str, augment: bool, recipe: Recipe | None = None) -> Encoder:
        """source: where the model's own files are (the model reference when training, the saved folder after)."""
        raise NotImplementedError

    items_are_files = True

    # -- the recipe -----------------------------------------------------------------------------------------------
    def data_keys(self, data: DataSpec) -> tuple[str, ...]:
        if Path(data.path).suffix.lower() in TABLE_SUFFIXES:
            return ("label_column", "group_column", self.table_item_key)
        return ()

    table_item_key = "path_column"
    item_column_words = "Column with the file paths"
    item_column_guesses = ("path", "file", "filename", "image", "clip", "audio")

    @property
    def table_columns(self) -> tuple[ColumnChoice, ...]:
        return (ColumnChoice(self.table_item_key, self.item_column_words, self.item_column_guesses),
                ColumnChoice("label_column", "Column with the label", LABEL_GUESSES),
                ColumnChoice("group_column", "Group column (optional)", (), required=False))

    def check_recipe(self, recipe: Recipe) -> None:
        if self.items_are_files and Path(recipe.data.path).suffix.lower() in TABLE_SUFFIXES \
                and not recipe.data.path_column:
            raise RecipeError(f"Recipe key 'data.path_column' is missing: a table of {self.noun}s needs the column "
                              f"that holds each {self.noun}'s file path (relative to the table's folder).")
        t = recipe.train
        if t.distributed == "fsdp" and recipe.strategy in ("feature-extraction", "lora"):
            raise RecipeError(f"Recipe key 'train.distributed' is 'fsdp', which shards a model too big for one "
                              f"device; with '{recipe.strategy}' only a small part trains, so use ddp.")

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
            return "feature-extraction", (
                f"The smallest class has {smallest} training examples. With so few, a frozen pretrained model with "
                "a new head generalises best and cannot overfit its pretrained weights.")
        if device_type == "cpu":
            return "feature-extraction", (
                f"No GPU here: feature extraction reads each example once (about "
                f"{_duration(total / self.cpu_inference_per_s)}) and then trains a small head in seconds. "
                f"Fine-tuning would take about {_duration(5 * total / self.cpu_training_per_s)} for 5 epochs.")
        return self.gpu_strategy, (f"Plenty of examples and a GPU: {self.strategies[self.gpu_strategy].words.lower()}"
                                   " usually gives the best accuracy.")

    # -- data -----------------------------------------------------------------------------------------------------
    def load_data(self, spec: DataSpec, seed: int, uploads_dir: Path) -> LabelledData:
        return assemble(spec, self.modality, seed, lambda path: self.read_source(path, spec, uploads_dir),
                        self.items_are_files)

    # -- model ------------------------------------------------------------------------------------------------------
    def build_backbone(self, recipe: Recipe):
        """(backbone, ModelInfo, where the model's own files are) for the recipe."""
        return self.backbone(recipe.model, recipe.strategy != "scratch", recipe.trust_remote_code,
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
        recipe, run, events, dist = ctx.recipe, ctx.run, ctx.events, ctx.dist
        if not dist.is_main:
            dist.barrier()  # rank 0 unpacks the data first; the others then read what it unpacked
        data = self.load_data(recipe.data, recipe.train.seed, ctx.workspace.uploads_dir)
        weights = class_weights(recipe, data)
        if dist.is_main:
            dist.barrier()
            run.write(DATA_REPORT, data.report.to_dict())
            run.write(LABELS, {"labels": data.classes})
            run.write(EXAMPLES, {"examples": self._examples(data, run)})
        events.emit("data", classes=data.classes, train=len(data.train_items), validation=len(data.val_items),
                    skipped=len(data.report.skipped), warnings=data.report.warnings,
                    class_weighted=weights is not None)

        events.emit("log", message=f"Loading model {recipe.model}")
        backbone, info, ref = self.build_backbone(recipe)
        info.labels = data.classes
        model = Classifier(backbone, len(data.classes))
        groups = strategies.prepare(model, recipe)
        if recipe.train.gradient_checkpointing:
            events.emit("log", message=strategies.gradient_checkpointing(model))
        params = strategies.count_parameters(model)
        events.emit("model", family=info.family, **params)
        model.to(ctx.device)
        if backbone.convolutional:  # measured: EfficientNet-Lite0 on 2 CPU cores, inference +70%, training +11%
            model.to(memory_format=torch.channels_last)

        strategy, extras = recipe.strategy, {"class_weighted": weights is not None}
        solved = strategy in BACKBONE_TRAINS or (strategy == "feature-extraction"
                                                 and recipe.option("head_solver") == "lbfgs")
        started = time.perf_counter()
        if solved:
            feats = probe.features(ctx, model, data, self.encoder(info, ref, augment=False, recipe=recipe), info)
            fit = probe.solve(ctx, feats, data, weights)
            probe.install(model, fit)
            extras["linear_probe"] = {"C": fit.C, "folds": fit.folds, "temperature": fit.temperature,
                                      "search": fit.search}
        if strategy == "feature-extraction" and solved:
            record, logits = probe.record(fit, feats, data, weights, 1, time.perf_counter() - started)
            events.emit("epoch", total_epochs=1, best_epoch=1, **record)
            result = {"best_epoch": 1, "steps": 1, "history": [record], "stopped_early": False,
                      "samples_per_s": len(data.train_items) / max(record["elapsed"], 1e-9)}
            if weights is not None:
                extras["macro_f1_unweighted"] = probe.unweighted_macro_f1(ctx, fit, feats, data)
        else:
            compute = training.cross_entropy(weights.to(ctx.device) if weights is not None else None)
            loop, best = training.loop(ctx, model, groups, data, info, lambda augment: self.encoder(
                info, ref, augment=augment, recipe=recipe), compute)
            if solved and not (ctx.resume and run.last_state.exists()):
                record, _ = probe.record(fit, feats, data, weights, 0, time.perf_counter() - started)
                best.start_from(loop, record)  # the probe is epoch 0: fine-tuning must beat it to be kept
                events.emit("epoch", total_epochs=recipe.train.epochs, best_epoch=0, **record)
            if strategy in BACKBONE_TRAINS:
                extras["lr_finder"] = training.lr_range_test(ctx, loop)
            if ctx.resume and run.last_state.exists():
                loop.restore(load_state_file(run.last_state))
            reset_peak_memory(ctx.device)
            result = loop.run()
            best.restore(loop)
            logits = loop.evaluate(evaluation.ClassificationMetrics(len(data.classes), keep=True))["logits"]
            if solved:
                extras["linear_probe"]["fine_tuning_improved"] = result["best_epoch"] > 0
        if weights is not None and "macro_f1_unweighted" not in extras:
            extras["macro_f1_unweighted"] = None
            extras["macro_f1_unweighted_reason"] = (
                "only feature extraction (with its solved head) refits a head without class weights in a moment; "
                "train again with train.class_weights: none to see the difference")
        extras["calibration"] = calibration.calibrate(logits, torch.tensor(data.val_labels), recipe.train.seed)
        temperature = extras["calibration"]["temperature"]
        calibration.fold_temperature(unwrap(model).head[-1], temperature)
        report = classification_report.build(self, logits, logits / temperature, data, result, params, ctx, run,
                                             extras)
        # Under FSDP the weights are sharded: gathered here (every rank takes part) for rank 0 to save.
        state = full_state(model, dist) if dist.active and dist.mode == "fsdp" else None
        if dist.is_main:
            run.write(EVAL, report)
            self._save(unwrap(model), info, ref, recipe, run, state)
            run.last_state.unlink(missing_ok=True)  # finished: nothing left to resume
        dist.barrier()
        return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "val_loss": report["loss"],
                "best_epoch": result["best_epoch"], "trainable_parameters": params["trainable"]}

    def _save(self, model: Classifier, info: ModelInfo, ref: str, recipe: Recipe, run: RunFolder,
              state: dict | None) -> None:
        if recipe.strategy == "lora":
            model.backbone.net.save_pretrained(str(run.model_dir / "adapter"))  # the adapter alone, peft format
        strategies.finalize(model)
        classifier.save(model, info, run.model_dir, state)
        self.encoder(info, ref, augment=False, recipe=recipe).save(run.model_dir)
        from studio.tasks.classification_card import write_card
        write_card(self, run)

    def _examples(self, data: LabelledData, run: RunFolder) -> list[dict]:
        """A few validation examples per class, for the playground to offer; files copied into examples/."""
        picked = []
        for index, name in enumerate(data.classes):
            items = [item for item, label in zip(data.val_items, data.val_labels) if label == index]
            for item in items[:EXAMPLES_PER_CLASS]:
                if self.items_are_files:
                    item = copy_into_run(item, run, "examples", len(picked))
                picked.append({"input": item, "label": name})
        return picked

    # -- a trained model ------------------------------------------------------------------------------------------
    def predictor(self, folder: Path) -> "Predictor":
        return Predictor(self, folder)

    @property
    def exports(self):
        from studio.tasks.classification_export import EXPORTS
        return EXPORTS

    def model_card(self, run: RunFolder) -> str:
        from studio.tasks.classification_card import render
        return render(self, run)

    def onnx_sequence_axis(self, info: ModelInfo) -> tuple[int, int] | None:
        """(axis, longest) of the inputs' length that varies in an ONNX export; None when nothing does."""
        return 1, info.preprocessing.get("max_length", 4096)

    def card_snippets(self, info: dict) -> dict[str, str]:
        """Code for the model card: {"example": a Python literal of inputs, "onnx": how to feed the ONNX model}."""
        raise NotImplementedError


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min" if seconds >= 60 else f"{max(1, round(seconds))} s"


def class_weights(recipe: Recipe, data: LabelledData) -> torch.Tensor | None:
    """Balanced class weights (n / (k · n_c), every class counting as much in the loss) when the training
    classes are imbalanced above 3:1 and train.class_weights is auto; the data report then says so."""
    counts = torch.tensor([data.train_labels.count(i) for i in range(len(data.classes))])
    if recipe.train.class_weights == "none" or counts.max() <= IMBALANCE_RATIO * counts.min():
        return None
    data.report.class_weighted = True
    data.report.warnings.append(
        f"The largest class has {int(counts.max())} training examples and the smallest {int(counts.min())}: "
        "the training loss weights each class by its rarity so that every class counts as much and the model "
        "does not simply favour the largest (train.class_weights: none turns this off).")
    return head_solver.class_weights(torch.tensor(data.train_labels), len(data.classes))


class Predictor:
    """A saved classifier's answers: top-k labels with probabilities for each input."""

    def __init__(self, task: ClassificationTask, folder: Path, device: str = "auto"):
        self.device = pick_device(device)
        self.model, self.info = classifier.load(folder, task.modality)
        self.model.to(self.device)
        if self.model.backbone.convolutional:
            self.model.to(memory_format=torch.channels_last)
        self.labels = self.info.labels
        self.encoder = task.encoder(self.info, str(folder), augment=False)

    @torch.inference_mode()
    def predict(self, inputs: list, top_k: int = 3) -> list[dict]:
        batch = to_device(self.encoder.batch(inputs), self.device)
        return evaluation.top_k(self.model(batch).cpu(), self.labels, top_k)

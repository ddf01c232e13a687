"""What every classification task shares (images, texts, …): the strategies menu, labelled data with a report,
the training pipeline (data → backbone + new head → strategy → loop → evaluation → saved model) and the predictor.
A modality subclass says how to read its data and how to turn examples into model inputs (an Encoder)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from studio import families
from studio.engine import classifier, evaluation, strategies
from studio.engine.callbacks import BestWeights, Checkpoint, EarlyStopping, load_state_file
from studio.engine.classifier import Classifier
from studio.engine.data.labelled import LabelledData, Loaded, assemble
from studio.engine.device import peak_memory_mb, pick_device, reset_peak_memory
from studio.engine.distributed import ShardedSampler, full_state, unwrap
from studio.engine.features import cache_key, compute_features
from studio.engine.loop import Loop, LoopConfig, to_device
from studio.families.base import ModelInfo
from studio.recipe import DataSpec, Recipe, RecipeError
from studio.runfolder import DATA_REPORT, EVAL, EXAMPLES, LABELS, RunFolder
from studio.tasks.base import ColumnChoice, Strategy, Task

STRATEGIES = {s.name: s for s in (
    Strategy("feature-extraction", "Feature extraction",
             "keep the pretrained model frozen and train only a new final layer. Fast, even on a CPU.",
             {"epochs": 30, "batch_size": 32, "learning_rate": 3e-3}),
    Strategy("full", "Full fine-tuning",
             "let every weight adjust to your data. Most accurate with enough data and a GPU.",
             {"epochs": 5, "batch_size": 16, "learning_rate": 5e-5}),
    Strategy("partial", "Fine-tune the last blocks",
             "freeze the early layers (general shapes and words) and adjust the last few.",
             {"epochs": 5, "batch_size": 16, "learning_rate": 1e-4}, {"trainable_blocks": (int, 2, 1, 1000)}),
    Strategy("layerwise", "Layer-wise learning rates",
             "adjust everything, the last layers the most and the early layers gently.",
             {"epochs": 5, "batch_size": 16, "learning_rate": 1e-4}, {"lr_decay": (float, 0.8, 0.01, 1.0)}),
    Strategy("lora", "LoRA adapters",
             "add small trainable adapters inside the model; almost as good as full fine-tuning, far lighter.",
             {"epochs": 5, "batch_size": 16, "learning_rate": 5e-4},
             {"lora_r": (int, 8, 1, 1024), "lora_alpha": (float, 16.0, 0.1, 4096.0),
              "lora_dropout": (float, 0.05, 0.0, 0.9)}),
    Strategy("scratch", "From scratch (baseline)",
             "start from random weights: the baseline that shows what pretraining buys you.",
             {"epochs": 10, "batch_size": 32, "learning_rate": 1e-3}),
)}
TABLE_SUFFIXES = (".csv", ".jsonl")
MANY_PER_CLASS = 100  # below this, a frozen backbone generalises best
LABEL_GUESSES = ("label", "labels", "class", "category", "intent", "target")
EXAMPLES_PER_CLASS = 2
MISCLASSIFIED_COPIES = 60  # misclassified files copied into the run folder for the Evaluate tab


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
        if dist.is_main:
            dist.barrier()
            run.write(DATA_REPORT, data.report.to_dict())
            run.write(LABELS, {"labels": data.classes})
            run.write(EXAMPLES, {"examples": self._examples(data, run)})
        events.emit("data", classes=data.classes, train=len(data.train_items), validation=len(data.val_items),
                    skipped=len(data.report.skipped), warnings=data.report.warnings)

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

        if recipe.strategy == "feature-extraction":
            train_set, val_set, collate = self._feature_sets(ctx, model, data, info, ref)
            trained = model.head  # epochs run on cached features: the backbone never runs again
        else:
            train_set = self.encoder(info, ref, augment=True, recipe=recipe).dataset(data.train_items,
                                                                                      data.train_labels)
            val_encoder = self.encoder(info, ref, augment=False, recipe=recipe)
            val_set, collate = val_encoder.dataset(data.val_items, data.val_labels), val_encoder.collate
            trained = model
        trained, groups = dist.wrap(trained, groups)
        train_loader, val_loader = self._loaders(ctx, train_set, val_set, collate)

        loop = Loop(trained, groups, train_loader, val_loader,
                    LoopConfig(epochs=recipe.train.epochs, device=ctx.device, amp_dtype=ctx.amp_dtype,
                               weight_decay=recipe.train.weight_decay, warmup_ratio=recipe.train.warmup_ratio,
                               accumulation=recipe.train.gradient_accumulation_steps),
                    events, classify, lambda: evaluation.ClassificationMetrics(len(data.classes)), ctx.cancel,
                    dist=dist)
        best = BestWeights(run.best_weights)
        loop.callbacks = [best, Checkpoint(run.last_state), EarlyStopping(recipe.train.early_stopping_patience),
                          *ctx.callbacks]
        if ctx.resume and run.last_state.exists():
            loop.restore(load_state_file(run.last_state))
        reset_peak_memory(ctx.device)
        result = loop.run()
        best.restore(loop)
        final = loop.evaluate(evaluation.ClassificationMetrics(len(data.classes), keep=True))
        report = self._report(final["logits"], data, result, params, ctx, run)
        # Under FSDP the weights are sharded: gathered here (every rank takes part) for rank 0 to save.
        state = full_state(model, dist) if dist.active and dist.mode == "fsdp" else None
        if dist.is_main:
            run.write(EVAL, report)
            self._save(unwrap(model), info, ref, recipe, run, state)
            run.last_state.unlink(missing_ok=True)  # finished: nothing left to resume
        dist.barrier()
        return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "val_loss": report["loss"],
                "best_epoch": result["best_epoch"], "trainable_parameters": params["trainable"]}

    def _feature_sets(self, ctx, model, data: LabelledData, info: ModelInfo, ref: str):
        recipe = ctx.recipe
        encoder = self.encoder(info, ref, augment=False, recipe=recipe)

        def loader(items, labels):
            return DataLoader(encoder.dataset(items, labels), batch_size=recipe.train.batch_size,
                              collate_fn=encoder.collate, num_workers=recipe.train.num_workers,
                              pin_memory=ctx.device.type == "cuda")
        spec = {"model": info.model, "family": info.family, "arch": info.arch, "prep": info.preprocessing}
        key = cache_key(spec, data.fingerprint())
        if not ctx.dist.is_main:
            ctx.dist.barrier()  # rank 0 computes the features; the others read its cache
        features = compute_features(model.backbone, {"train": (data.train_items, data.train_labels),
                                                     "val": (data.val_items, data.val_labels)},
                                    loader, key, device=ctx.device, amp_dtype=ctx.amp_dtype,
                                    cache_dir=ctx.workspace.cache_dir, events=ctx.events, cancel=ctx.cancel)
        if ctx.dist.is_main:
            ctx.dist.barrier()
        return (TensorDataset(features["train"], torch.tensor(data.train_labels)),
                TensorDataset(features["val"], torch.tensor(data.val_labels)), None)

    def _loaders(self, ctx, train_set, val_set, collate):
        t = ctx.recipe.train
        # A generator of their own: a loader draws a seed from it each epoch, which must not move the global
        # random stream (dropout), or a run resumed mid-epoch would take other steps than one never stopped.
        common = dict(collate_fn=collate, num_workers=t.num_workers, pin_memory=ctx.device.type == "cuda",
                      persistent_workers=t.num_workers > 0, generator=torch.Generator().manual_seed(t.seed))
        train = DataLoader(train_set, batch_size=t.batch_size, **common,
                           sampler=ShardedSampler(len(train_set), ctx.dist, shuffle=True, seed=t.seed))
        val = DataLoader(val_set, batch_size=4 * t.batch_size, **common,
                         sampler=ShardedSampler(len(val_set), ctx.dist, shuffle=False))
        return train, val

    def _report(self, logits, data: LabelledData, result: dict, params: dict, ctx, run: RunFolder) -> dict:
        labels = torch.tensor(data.val_labels)
        report = evaluation.report(logits, labels, data.classes)
        wrong = evaluation.misclassified(logits, labels, data.val_items, data.classes)
        if self.items_are_files and ctx.dist.is_main:
            for n, item in enumerate(wrong[:MISCLASSIFIED_COPIES]):
                item["thumbnail"] = copy_into_run(item["input"], run, "misclassified", n)
        report.update(best_epoch=result["best_epoch"], steps=result["steps"], history=result["history"],
                      stopped_early=result["stopped_early"], samples_per_s=result["samples_per_s"],
                      trainable_parameters=params["trainable"], total_parameters=params["total"],
                      device=ctx.device.type, world_size=ctx.dist.world_size,
                      peak_memory_mb=peak_memory_mb(ctx.device), misclassified=wrong,
                      warnings=[w for w in [evaluation.overfitting_warning(result["history"], result["best_epoch"])]
                                if w])
        if data.val_groups:
            report["groups"] = evaluation.by_group(logits, labels, data.val_groups)
        return report

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


def classify(model, inputs, targets) -> tuple[torch.Tensor, torch.Tensor]:
    """The loop's compute for classification: logits and their cross-entropy."""
    logits = model(inputs).float()
    return F.cross_entropy(logits, targets), logits


def copy_into_run(source: str, run: RunFolder, folder: str, number: int) -> str:
    """Copies a file into the run folder (folder/NNN.ext), so the run stays complete if the original data moves;
    returns its path relative to the run folder."""
    target = run.path / folder / f"{number:03d}{Path(source).suffix.lower()}"
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(source, target)
    return str(target.relative_to(run.path))


class Predictor:
    """A saved classifier's answers: top-k labels with probabilities for each input."""

    def __init__(self, task: ClassificationTask, folder: Path, device: str = "auto"):
        self.device = pick_device(device)
        self.model, self.info = classifier.load(folder, task.modality)
        self.model.to(self.device)
        self.labels = self.info.labels
        self.encoder = task.encoder(self.info, str(folder), augment=False)

    @torch.inference_mode()
    def predict(self, inputs: list, top_k: int = 3) -> list[dict]:
        batch = to_device(self.encoder.batch(inputs), self.device)
        return evaluation.top_k(self.model(batch).cpu(), self.labels, top_k)

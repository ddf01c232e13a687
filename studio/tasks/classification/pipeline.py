"""A classifier's training pipeline, read top to bottom: data → backbone and new head → the strategy decides what
trains → the head solved on cached features (the linear probe) and/or epochs of the loop → calibration →
evaluation → the saved model and its card. The strategy object answers every question about what to do; this
module never asks for its name."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from studio.engine.callbacks import load_state_file
from studio.engine.device import reset_peak_memory
from studio.engine.distributed import full_state, unwrap
from studio.engine.loop import count_parameters
from studio.families.base import ModelInfo
from studio.recipe import Recipe
from studio.runfolder import DATA_REPORT, EVAL, EXAMPLES, EXAMPLES_DIR, LABELS, RunFolder
from studio.tasks.classification import calibration, head_solver, label_issues, metrics, probe, report, training
from studio.tasks.classification.card import write_card
from studio.tasks.classification.data import IMBALANCE_RATIO, LabelledData
from studio.tasks.classification.model import Classifier, save_classifier
from studio.tasks.classification.strategies import ClassificationStrategy, gradient_checkpointing
from studio.words import said

EXAMPLES_PER_CLASS = 2  # validation examples per class the Playground offers


@dataclass
class Built:
    """What a run trains: its data, model and how it was made, and the strategy's parameter groups."""
    data: LabelledData
    weights: torch.Tensor | None  # class weights of an imbalanced training set
    model: Classifier
    info: ModelInfo
    ref: str  # where the model's own files are (a tokenizer, say)
    groups: list[dict]
    params: dict


def train(task, ctx) -> dict:
    """Trains ctx's recipe start to finish (every rank of it); returns the figures status.json keeps."""
    strategy = task.strategies[ctx.recipe.strategy]
    built = _build(task, ctx, strategy)
    result, logits, extras = _fit(task, ctx, strategy, built)
    return _finish(task, ctx, strategy, built, result, logits, extras)


def _build(task, ctx, strategy: ClassificationStrategy) -> Built:
    recipe, run, events, dist = ctx.recipe, ctx.run, ctx.events, ctx.dist
    if not dist.is_main:
        dist.barrier()  # rank 0 unpacks the data first; the others then read what it unpacked
    data = task.load_data(recipe.data, recipe.train.seed, ctx.workspace.uploads_dir)
    weights = class_weights(recipe, data)
    if dist.is_main:
        dist.barrier()
        run.write(DATA_REPORT, data.report.to_dict())
        run.write(LABELS, {"labels": data.classes})
        run.write(EXAMPLES, {"examples": _examples(task, data, run)})
    events.emit("data", classes=data.classes, train=len(data.train_items), validation=len(data.val_items),
                skipped=len(data.report.skipped), warnings=data.report.warnings, class_weighted=weights is not None)
    events.emit("log", message=said("Loading model {model}", model=recipe.model))
    backbone, info, ref = task.build_backbone(recipe)
    info.labels = data.classes
    model = Classifier(backbone, len(data.classes))
    groups = strategy.prepare(model, recipe)
    if recipe.train.gradient_checkpointing:
        events.emit("log", message=gradient_checkpointing(model))
    params = count_parameters(model)
    events.emit("model", family=info.family, **params)
    model.to(ctx.device)
    if backbone.convolutional:  # measured: EfficientNet-Lite0 on 2 CPU cores, inference +70%, training +11%
        model.to(memory_format=torch.channels_last)
    return Built(data, weights, model, info, ref, groups, params)


def _fit(task, ctx, strategy: ClassificationStrategy, b: Built) -> tuple[dict, torch.Tensor, dict]:
    """(the training's result, the delivered model's validation logits, eval.json's extras): the head solved on
    cached features when the strategy asks for it, then the loop's epochs when it trains any."""
    recipe, run, data = ctx.recipe, ctx.run, b.data
    extras = {"class_weighted": b.weights is not None}
    encoder = lambda augment: task.encoder(b.info, b.ref, augment=augment, recipe=recipe)  # noqa: E731
    started = time.perf_counter()
    solved = strategy.solves_head(recipe)
    if solved:
        feats = probe.features(ctx, b.model, data, encoder(False), b.info)
        fit = probe.solve(ctx, feats, data, b.weights)
        probe.install(b.model, fit)
        extras["linear_probe"] = {"C": fit.C, "folds": fit.folds, "temperature": fit.temperature,
                                  "search": fit.search}
        extras.update(label_issues.from_probe(ctx, feats, data, fit.C, task.inputs_are_files, strategy.fine_tunes))
    else:
        extras.update(label_issues.without_probe(strategy.pretrained))
    if not strategy.trains_epochs(recipe):  # the solved head is the whole training
        record, logits = probe.record(fit, feats, data, b.weights, 1, time.perf_counter() - started)
        ctx.events.emit("epoch", total_epochs=1, best_epoch=1, **record)
        result = {"best_epoch": 1, "steps": 1, "history": [record], "stopped_early": False,
                  "samples_per_s": len(data.train_items) / max(record["elapsed"], 1e-9)}
        if b.weights is not None:
            extras["macro_f1_unweighted"] = probe.unweighted_macro_f1(ctx, fit, feats, data)
        return result, logits, extras
    compute = training.cross_entropy(b.weights.to(ctx.device) if b.weights is not None else None)
    loop, best = training.loop(ctx, task, strategy, b.model, b.groups, data, b.info, encoder, compute)
    resuming = ctx.resume and run.last_state.exists()
    if solved and not resuming:
        record, _ = probe.record(fit, feats, data, b.weights, 0, time.perf_counter() - started)
        best.start_from(loop, record)  # the probe is epoch 0: fine-tuning must beat it to be kept
        ctx.events.emit("epoch", total_epochs=recipe.train.epochs, best_epoch=0, **record)
    if strategy.fine_tunes:
        extras["lr_finder"] = training.lr_range_test(ctx, loop)
    if resuming:
        loop.restore(load_state_file(run.last_state))
    reset_peak_memory(ctx.device)
    result = loop.run()
    best.restore(loop)
    logits = loop.evaluate(metrics.ClassificationMetrics(len(data.classes), keep=True))["logits"]
    if solved:
        extras["linear_probe"]["fine_tuning_improved"] = result["best_epoch"] > 0
    return result, logits, extras


def _finish(task, ctx, strategy: ClassificationStrategy, b: Built, result: dict, logits: torch.Tensor,
            extras: dict) -> dict:
    """Calibration, eval.json, the saved model and its card; the figures for status.json."""
    recipe, run, dist = ctx.recipe, ctx.run, ctx.dist
    if b.weights is not None and "macro_f1_unweighted" not in extras:
        extras["macro_f1_unweighted"] = None
        extras["macro_f1_unweighted_reason"] = (
            "only feature extraction (with its solved head) refits a head without class weights in a moment; "
            "train again with train.class_weights: none to see the difference")
    extras["calibration"] = calibration.calibrate(logits, torch.tensor(b.data.val_labels), recipe.train.seed)
    temperature = extras["calibration"]["temperature"]
    calibration.fold_temperature(unwrap(b.model).head[-1], temperature)
    evaluation = report.build(task, logits, logits / temperature, b.data, result, b.params, ctx, run, extras)
    # Under FSDP the weights are sharded: gathered here (every rank takes part) for rank 0 to save.
    state = full_state(b.model, dist) if dist.active and dist.mode == "fsdp" else None
    if dist.is_main:
        run.write(EVAL, evaluation)
        model = unwrap(b.model)
        strategy.finish(model, run.model_dir)
        save_classifier(model, b.info, run.model_dir, state)
        task.encoder(b.info, b.ref, augment=False, recipe=recipe).save(run.model_dir)
        write_card(task, run)
        run.last_state.unlink(missing_ok=True)  # finished: nothing left to resume
    dist.barrier()
    return {"accuracy": evaluation["accuracy"], "macro_f1": evaluation["macro_f1"], "val_loss": evaluation["loss"],
            "best_epoch": result["best_epoch"], "trainable_parameters": b.params["trainable"]}


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


def _examples(task, data: LabelledData, run: RunFolder) -> list[dict]:
    """A few validation examples per class, for the playground to offer; files copied into examples/."""
    picked = []
    for index, name in enumerate(data.classes):
        items = [item for item, label in zip(data.val_items, data.val_labels) if label == index]
        for item in items[:EXAMPLES_PER_CLASS]:
            if task.inputs_are_files:
                item = report.copy_into_run(item, run, EXAMPLES_DIR, len(picked))
            picked.append({"input": item, "label": name})
    return picked

"""A classifier's training loop (data loaders, callbacks, early stopping, the learning-rate range test) and its
loss: the part of the classification pipeline that runs epochs. feature extraction's default (the solved head)
needs none of it; every other strategy, and feature extraction with head_solver: sgd, trains here."""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from studio.engine import lr_finder
from studio.engine.callbacks import BatchNormStatistics, BestWeights, standard
from studio.engine.distributed import ShardedSampler
from studio.engine.loop import Loop, LoopConfig
from studio.families.base import ModelInfo
from studio.tasks.classification import metrics, probe
from studio.tasks.classification.data import LabelledData
from studio.tasks.classification.model import Classifier
from studio.tasks.classification.strategies import ClassificationStrategy
from studio.words import said


def loop(ctx, task, strategy: ClassificationStrategy, model: Classifier, groups, data: LabelledData, info: ModelInfo,
         encoder: Callable[[bool], Any], compute) -> tuple[Loop, BestWeights]:
    """The training loop and its callbacks: on cached features (feature extraction with head_solver: sgd) or
    on the examples themselves. encoder(augment) → the task's Encoder."""
    recipe, run, dist = ctx.recipe, ctx.run, ctx.dist
    before = []
    if strategy.on_cached_features(recipe):
        feats = probe.features(ctx, model, data, encoder(False), info)
        train_set = TensorDataset(feats["train"], torch.tensor(data.train_labels))
        val_set, collate = TensorDataset(feats["val"], torch.tensor(data.val_labels)), None
        trained = model.head  # epochs run on cached features: the backbone never runs again
    else:
        train_set = encoder(True).dataset(data.train_items, data.train_labels)
        plain = encoder(False)
        val_set, collate = plain.dataset(data.val_items, data.val_labels), plain.collate
        trained = model
        if strategy.recomputes_batch_norm:
            train_plain = plain.dataset(data.train_items, data.train_labels)
            before.append(BatchNormStatistics(in_order(ctx, train_plain, collate)))
    trained, groups = dist.wrap(trained, groups)
    train_loader, val_loader = loaders(ctx, train_set, val_set, collate)
    t = recipe.train
    training = Loop(trained, groups, train_loader, val_loader,
                    LoopConfig(epochs=t.epochs, device=ctx.device, amp_dtype=ctx.amp_dtype,
                               weight_decay=t.weight_decay, warmup_ratio=t.warmup_ratio,
                               accumulation=t.gradient_accumulation_steps,
                               keep_batch_norm_statistics=strategy.fine_tunes),
                    ctx.events, compute, lambda: metrics.ClassificationMetrics(len(data.classes)), ctx.cancel,
                    dist=dist)
    training.callbacks, best = standard(run, t.early_stopping_patience, task.best,
                                        strategy.min_epochs(t.epochs), before, ctx.callbacks)
    return training, best


def lr_range_test(ctx, loop: Loop) -> dict:
    """The learning-rate range test before training, where it is asked for or cheap enough (a tenth of the
    run's steps at most); its curve and suggestion go to an event and eval.json. The run trains at the
    recipe's rate: the suggestion is for the next run."""
    setting = ctx.recipe.option("lr_finder")
    if ctx.resume and ctx.run.last_state.exists():
        return {"ran": False, "reason": "the run was resumed: the test ran (or not) before it stopped"}
    if ctx.dist.active:
        return {"ran": False, "reason": "not on several devices: each process would sweep on its own"}
    if not lr_finder.worth_running(setting, loop.total_steps):
        return {"ran": False, "reason": (f"off (strategy_options.lr_finder: {setting})" if setting == "off" else
                                         f"{lr_finder.STEPS} test steps would cost more than a tenth of this "
                                         f"run's {loop.total_steps}; strategy_options.lr_finder: on runs it")}
    ctx.events.emit("log", message=said("Learning-rate range test: {n} short steps from {start} to {end}.",
                                        n=lr_finder.STEPS, start=f"{lr_finder.START:g}", end=f"{lr_finder.END:g}"))
    found = lr_finder.range_test(loop, ctx.recipe.train.learning_rate, ctx.events)
    ctx.events.emit("lr_finder", **found)
    return {"ran": True, **found}


def loaders(ctx, train_set, val_set, collate):
    t = ctx.recipe.train
    train = DataLoader(train_set, batch_size=t.batch_size, **loading(ctx, collate),
                       sampler=ShardedSampler(len(train_set), ctx.dist, shuffle=True, seed=t.seed))
    return train, in_order(ctx, val_set, collate)


def in_order(ctx, dataset, collate) -> DataLoader:
    """Every example once across the ranks, in order, in large batches (nothing is learnt from them)."""
    return DataLoader(dataset, batch_size=4 * ctx.recipe.train.batch_size, **loading(ctx, collate),
                      sampler=ShardedSampler(len(dataset), ctx.dist, shuffle=False))


def loading(ctx, collate) -> dict:
    t = ctx.recipe.train
    # A generator of their own: a loader draws a seed from it each epoch, which must not move the global
    # random stream (dropout), or a run resumed mid-epoch would take other steps than one never stopped.
    return dict(collate_fn=collate, num_workers=t.num_workers, pin_memory=ctx.device.type == "cuda",
                persistent_workers=t.num_workers > 0, generator=torch.Generator().manual_seed(t.seed))


def cross_entropy(weights: torch.Tensor | None = None):
    """The loop's compute for classification: logits and their cross-entropy (class-weighted when given)."""
    def compute(model, inputs, targets) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(inputs).float()
        return F.cross_entropy(logits, targets, weight=weights), logits
    return compute

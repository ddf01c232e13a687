"""The linear probe of a classifier: features from the frozen pretrained backbone (computed once per example and
cached), and a linear head solved on them to its optimum (engine/head_solver.py). It is the whole of feature
extraction's training, and the starting point of every strategy that trains the backbone (linear probing then
fine-tuning, "LP-FT", Kumar et al. 2022): a solved head keeps the first gradients from wrecking the pretrained
features, and the probe itself counts as epoch 0, so a fine-tuning run that does not beat it keeps it and says so.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from studio.tasks.classification import metrics as evaluation
from studio.tasks.classification import head_solver
from studio.tasks.classification.model import Classifier
from studio.tasks.classification import duplicates
from studio.tasks.classification.data import LabelledData
from studio.runfolder import DATA_REPORT
from studio.tasks.classification.features import cache_key, compute_features, spec_of
from studio.engine.loop import Cancelled
from studio.families.base import ModelInfo
from studio.words import said


def features(ctx, model: Classifier, data: LabelledData, encoder, info: ModelInfo) -> dict[str, torch.Tensor]:
    """{"train": [n, d], "val": [m, d]}: the frozen backbone's features (eval mode, no augmentation), from the
    workspace's cache when this model has read this data before."""
    recipe = ctx.recipe

    def loader(items, labels):
        # A generator of its own: reading batches must not draw from the global random stream, or a run that
        # computes its features would then train differently from one that finds them in the cache.
        return DataLoader(encoder.dataset(items, labels), batch_size=recipe.train.batch_size,
                          collate_fn=encoder.collate, num_workers=recipe.train.num_workers,
                          pin_memory=ctx.device.type == "cuda", generator=torch.Generator().manual_seed(0))
    key = cache_key(spec_of(info), data.fingerprint())
    if not ctx.dist.is_main:
        ctx.dist.barrier()  # rank 0 computes the features; the others read its cache
    out = compute_features(model.backbone, {"train": (data.train_items, data.train_labels),
                                            "val": (data.val_items, data.val_labels)},
                           loader, key, device=ctx.device, amp_dtype=ctx.amp_dtype,
                           cache_dir=ctx.workspace.cache_dir, events=ctx.events, cancel=ctx.cancel)
    if ctx.dist.is_main:
        ctx.dist.barrier()
    train, val = duplicates.in_run(data, out["train"].numpy(), out["val"].numpy(), recipe.data.drop_duplicates,
                                   info.model, ctx.workspace.cache_dir if ctx.dist.is_main else None)
    if ctx.dist.is_main:  # the report now says which copies the features showed
        ctx.run.write(DATA_REPORT, data.report.to_dict())
    if duplicates.warning(data.report.duplicates):
        ctx.events.emit("log", message=duplicates.warning(data.report.duplicates))
    return {"train": out["train"][train], "val": out["val"][val]}


def solve(ctx, feats: dict[str, torch.Tensor], data: LabelledData,
          weights: torch.Tensor | None) -> head_solver.HeadFit:
    """The head solved on the training features, its strength picked by cross-validation; every candidate's
    validation score is an event ("head_search") as it comes, then the fit ("head_fit")."""
    events, started = ctx.events, time.perf_counter()
    labels = torch.tensor(data.train_labels)
    x = feats["train"].to(ctx.device)
    sample_weight = weights[labels] if weights is not None else None
    metric = "balanced accuracy" if weights is not None else "accuracy"

    def candidate(row: dict) -> None:
        if ctx.cancel.is_set():
            raise Cancelled()
        events.emit("head_search", metric=metric, **row)
        elapsed = time.perf_counter() - started
        events.emit("progress", phase="head", done=row["candidate"], total=row["candidates"],
                    samples_per_s=row["candidate"] * len(labels) / elapsed,
                    eta=(row["candidates"] - row["candidate"]) * elapsed / row["candidate"])
    events.emit("log", message=said("Solving the new final layer on the cached features, its regularisation "
                                    "chosen by cross-validation on the training examples."))
    fit = head_solver.fit(x, labels.to(ctx.device), len(data.classes), sample_weight=sample_weight,
                          seed=ctx.recipe.train.seed, on_candidate=candidate)
    seconds = time.perf_counter() - started
    best = next((r for r in fit.search if r["C"] == fit.C), None)
    events.emit("head_fit", C=fit.C, folds=fit.folds, metric=metric, seconds=seconds,
                cv_score=best["score"] if best else None)
    events.emit("log", message=said("Regularisation C = {C} had the best {metric} across {folds} folds ({score}); "
                                    "refitted on all {n} training examples in {seconds} s.", C=f"{fit.C:g}",
                                    metric=metric, folds=fit.folds, score=f"{best['score']:.1%}", n=len(labels),
                                    seconds=f"{seconds:.1f}") if best else
                said("Too few examples per class to cross-validate: C = {C}, fitted on all {n} training examples.",
                     C=f"{fit.C:g}", n=len(labels)))
    return fit


@torch.no_grad()
def install(model: Classifier, fit: head_solver.HeadFit) -> None:
    """The solved head becomes the classifier's final layer (standardisation folded in: same shapes as ever)."""
    final = model.head[-1]
    final.weight.copy_(fit.weight.to(final.weight))
    final.bias.copy_(fit.bias.to(final.bias))


def record(fit: head_solver.HeadFit, feats: dict[str, torch.Tensor], data: LabelledData,
           weights: torch.Tensor | None, epoch: int, elapsed: float) -> tuple[dict, torch.Tensor]:
    """(the probe's line in the history, like an epoch's; its validation logits)."""
    train_logits = fit.logits(feats["train"]).cpu()
    val_logits = fit.logits(feats["val"]).cpu()
    labels = torch.tensor(data.val_labels)
    scores = evaluation.summary(val_logits, labels)
    train_loss = float(F.cross_entropy(train_logits, torch.tensor(data.train_labels), weight=weights))
    return ({"epoch": epoch, "step": 0, "train_loss": train_loss, "val_loss": scores["loss"],
             "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"], "elapsed": elapsed,
             "linear_probe": True}, val_logits)


def unweighted_macro_f1(ctx, fit: head_solver.HeadFit, feats: dict[str, torch.Tensor],
                        data: LabelledData) -> float:
    """Macro-F1 on validation of a head fitted at the same strength without class weights: what weighting bought."""
    plain = head_solver.fit(feats["train"].to(ctx.device), torch.tensor(data.train_labels, device=ctx.device),
                            len(data.classes), C=fit.C)
    return evaluation.summary(plain.logits(feats["val"]).cpu(), torch.tensor(data.val_labels))["macro_f1"]

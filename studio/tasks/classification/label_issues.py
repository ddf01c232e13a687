"""Examples that may be mislabelled: every example, training and validation, gets an out-of-fold probability from
the linear probe refitted K times on the cached features at the run's chosen strength, and cleanlab's confident
learning (Northcutt et al. 2021) finds the examples whose given label those probabilities doubt. Out-of-fold, never
in-sample: a model scoring the examples it learnt from agrees with their labels, right or wrong."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
from safetensors.torch import load_file

from studio.runfolder import LABEL_ISSUES_DIR
from studio.tasks.classification import duplicates, head_solver
from studio.tasks.classification.calibration import stratified_folds
from studio.tasks.classification.data import LabelledData
from studio.tasks.classification.features import cache_key, spec_of
from studio.tasks.classification.report import copy_into_run
from studio.words import said

FOLDS = 5
COPIES = 100  # files of suspect examples copied into the run folder for the Evaluate tab
METHOD = ("cleanlab confident learning: find_label_issues (prune_by_noise_rate) ranked by "
          "get_label_quality_scores (self_confidence)")


def out_of_fold(x: torch.Tensor, y: torch.Tensor, num_classes: int, C: float, seed: int = 0,
                folds: int = FOLDS) -> np.ndarray | None:
    """[n, k] probabilities, each example's from a head fitted (at strength C) on the folds it is not in; None when
    a class has a single example (it cannot be on both sides of a fold)."""
    counts = torch.bincount(y, minlength=num_classes)
    k = min(folds, int(counts[counts > 0].min()))
    if k < 2:
        return None
    fold = stratified_folds(y.cpu(), k, seed).to(x.device)
    probs = torch.empty(len(y), num_classes, dtype=torch.float64)
    for f in range(k):
        held = fold == f
        head = head_solver.fit(x[~held], y[~held], num_classes, C=C)
        probs[held.cpu()] = head.logits(x[held]).softmax(1).double().cpu()
    return probs.numpy()


def rank(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the examples cleanlab flags, most suspect first; every example's label quality, 0–1)."""
    quality = get_label_quality_scores(labels, probs)
    flagged = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    return np.asarray(flagged, dtype=int), quality


def judge(x: torch.Tensor, data: LabelledData, C: float, seed: int) -> dict:
    """label_issues and label_issues_from of the examples whose features are x (training then validation)."""
    y = torch.tensor(data.train_labels + data.val_labels, device=x.device)
    probs = out_of_fold(x, y, len(data.classes), C, seed)
    if probs is None:
        return {"label_issues": [], "label_issues_from": {
            "probabilities": None, "why": said("A class has a single example, so no fold can hold it out.")}}
    source = {"probabilities": "out-of-fold", "model": "linear probe on the cached features of the pretrained "
              "backbone", "C": C, "folds": min(FOLDS, int(torch.bincount(y).min())), "examples": len(y),
              "method": METHOD}  # the same fold count out_of_fold uses
    labels = y.cpu().numpy()
    flagged, quality = rank(labels, probs)
    items = data.train_items + data.val_items
    keys = data.train_keys + data.val_keys
    splits = ["training"] * len(data.train_items) + ["validation"] * len(data.val_items)
    issues = [{"example": keys[i], "given": data.classes[labels[i]],
               "suggested": data.classes[int(probs[i].argmax())], "score": round(float(quality[i]), 6),
               "split": splits[i], "input": items[i]} for i in sorted(flagged.tolist(), key=lambda i: quality[i])]
    return {"label_issues": issues, "label_issues_from": source}


def from_probe(ctx, feats: dict[str, torch.Tensor], data: LabelledData, C: float, files: bool,
               fine_tunes: bool) -> dict:
    """eval.json's label_issues and label_issues_from, on the cached features of every example."""
    found = judge(torch.cat([feats["train"], feats["val"]]).to(ctx.device), data, C, ctx.recipe.train.seed)
    if found["label_issues_from"]["probabilities"] is None:
        return found
    if fine_tunes:
        found["label_issues_from"]["note"] = said(
            "The fine-tuned model learnt from the training examples, so its scores on them are in-sample and would "
            "agree with their labels; the probe's out-of-fold probabilities judge every example instead.")
    if files and ctx.dist.is_main:
        for n, issue in enumerate(found["label_issues"][:COPIES]):
            issue["copy"] = copy_into_run(issue["input"], ctx.run, LABEL_ISSUES_DIR, n)
    return found


# -- before training: the Data tab's check, on features a run already cached ------------------------------------------

def features_cached(data: LabelledData, model: str, cache_dir: Path) -> bool:
    """True when a run has cached this model's features for this data (it leaves its near copies beside them)."""
    return duplicates.cached_near(data, model, cache_dir) is not None


def check_file(cache_dir: Path, model: str, fingerprint: str) -> Path:
    """Where the Data tab's check of this data with this model is kept, beside the feature cache."""
    return cache_dir / f"labels-{hashlib.sha256((model + fingerprint).encode()).hexdigest()[:24]}.json"


def from_cache(task, recipe, data: LabelledData, cache_dir: Path, device: torch.device,
               weights: torch.Tensor | None) -> dict:
    """label_issues of the data on the features a run cached for this model, never computed here (none cached:
    `features: missing`). The strength C is picked as a run picks it: head_solver's cross-validation on the
    training features, balanced by `weights` when the run's would be (pipeline.class_weights)."""
    _, info, _ = task.build_backbone(recipe)  # for the cache key only: what the features depend on
    path = cache_dir / f"{cache_key(spec_of(info), data.fingerprint())}.safetensors"
    if not path.exists():
        return {"features": "missing", "label_issues": []}
    feats = load_file(str(path))
    labels = torch.tensor(data.train_labels, device=device)
    fit = head_solver.fit(feats["train"].to(device), labels, len(data.classes), seed=recipe.train.seed,
                          sample_weight=weights[labels.cpu()] if weights is not None else None)
    found = judge(torch.cat([feats["train"], feats["val"]]).to(device), data, fit.C, recipe.train.seed)
    return {"features": str(path), "classes": data.classes, "items_are_files": data.items_are_files, **found}


def without_probe(pretrained: bool) -> dict:
    """What eval.json says when the run solved no probe on frozen features."""
    why = (said("This run trains from random weights: there are no pretrained features to fit a probe on, and the "
                "model's own scores on its training examples are in-sample, so they would agree with their labels.")
           if not pretrained else
           said("This run did not solve the linear probe on the cached features (strategy option head_solver is "
                "not lbfgs), so there are no out-of-fold probabilities to judge the labels with."))
    return {"label_issues": [], "label_issues_from": {"probabilities": None, "why": why}}

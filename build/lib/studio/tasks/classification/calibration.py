"""Calibrated confidence: one temperature T fitted on the validation set after training (temperature scaling,
Guo et al. 2017), so that a prediction said to be 80% sure is right about 80% of the time. Dividing the logits by
T changes no prediction, only the scores; T is folded into the final linear layer, so every way of running the
saved model (the studio, a transformers pipeline, ONNX) gives the calibrated scores.

The error after calibration is measured honestly: the validation set is split into two stratified halves, each
half's examples scored with the temperature fitted on the other half (cross-fitting), and the expected
calibration error (ECE) taken over all of them. The delivered temperature is fitted on the whole set, and only
delivered when the cross-fitted error beats the error before it."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BINS = 15
MIN_EXAMPLES = 20  # below this, a fitted temperature is mostly noise: the scores are left as trained
T_RANGE = (0.05, 20.0)


def ece(logits: torch.Tensor, labels: torch.Tensor, bins: int = BINS) -> float:
    """Expected calibration error of the top label: Σ over equal-width confidence bins of
    (share of examples in the bin) × |accuracy − mean confidence|."""
    confidence, predicted = logits.float().softmax(-1).max(-1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += float(inside.float().mean() * (correct[inside].mean() - confidence[inside].mean()).abs())
    return total


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 minimising the cross-entropy of logits / T (convex in 1/T: solved by L-BFGS on log T)."""
    logits, labels = logits.double(), labels.long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss
    optimizer.step(closure)
    return float(log_t.detach().exp().clamp(*T_RANGE))


def stratified_folds(labels: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """A fold number per example: each class dealt round-robin over the folds after a seeded shuffle."""
    generator = torch.Generator().manual_seed(seed)
    fold = torch.empty(len(labels), dtype=torch.long)
    offset = 0
    for c in labels.unique().tolist():
        members = (labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        fold[members] = (torch.arange(len(members)) + offset) % k
        offset += len(members)  # classes start on different folds, so small classes spread over all of them
    return fold


def halves(labels: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two stratified halves of the examples (boolean masks)."""
    first = stratified_folds(labels, 2, seed) == 0
    return first, ~first


def calibrate(logits: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> dict:
    """{temperature, ece_before, ece_after, …} for validation logits. ece_after: each example scored with the
    temperature fitted on the other half. Where that cross-fitted error is no better than the error before, the
    fit is noise (a few confidently wrong examples can drive T to its bound and flatten every score), so the
    scores are left as trained (temperature 1, ece_after = ece_before) and the reason says so. Null ece_after
    (with the reason) when there are too few examples to fit one."""
    logits, labels = logits.float().cpu(), labels.long().cpu()
    before = ece(logits, labels)
    if len(labels) < MIN_EXAMPLES:
        return {"temperature": 1.0, "ece_before": before, "ece_after": None, "examples": len(labels),
                "reason": f"only {len(labels)} validation examples: at least {MIN_EXAMPLES} are needed to fit a "
                          "temperature that means something, so the scores are left as trained"}
    a, b = halves(labels, seed)
    crossed = logits.clone()
    crossed[b] = logits[b] / fit_temperature(logits[a], labels[a])
    crossed[a] = logits[a] / fit_temperature(logits[b], labels[b])
    after = ece(crossed, labels)
    out = {"examples": len(labels), "bins": BINS, "ece_before": before, "ece_after_fitted": after,
           "method": "ece_after cross-fitted on two halves of the validation set (each half scored with the "
                     "temperature fitted on the other); the delivered temperature is fitted on all of it"}
    if after >= before:
        return dict(out, temperature=1.0, ece_after=before, reason=(
            f"a temperature fitted on half of the validation set made the other half's percentages worse "
            f"({after:.1%} off instead of {before:.1%}), so the scores are left as trained"))
    return dict(out, temperature=fit_temperature(logits, labels), ece_after=after)


@torch.no_grad()
def fold_temperature(layer: nn.Linear, temperature: float) -> None:
    """The final layer gives logits / T from now on."""
    layer.weight.div_(temperature)
    layer.bias.div_(temperature)

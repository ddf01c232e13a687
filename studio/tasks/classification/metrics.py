"""Metrics for a classifier: accuracy, macro-F1, per-class precision/recall, confusion matrix; streamed over a
validation pass (ClassificationMetrics) and reported in full at the end."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from studio.engine.distributed import Distributed
from studio.words import said


class ClassificationMetrics:
    """Accumulates a confusion matrix and the summed loss batch by batch (summed across ranks at the end), so a
    validation pass never holds more than counts. With keep=True it also keeps every example's logits (N × classes:
    small) for the final report: calibration, the misclassified examples, per-group results."""

    def __init__(self, num_classes: int, keep: bool = False):
        self.k, self.keep = num_classes, keep
        self.confusion = torch.zeros(num_classes * num_classes, dtype=torch.float64)
        self.loss_sum = torch.zeros((), dtype=torch.float64)
        self.logits: list[torch.Tensor] = []

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        logits, targets = logits.detach().float(), targets.detach()
        self.loss_sum += F.cross_entropy(logits, targets, reduction="sum").double().cpu()
        preds = logits.argmax(1)
        self.confusion += torch.bincount((targets * self.k + preds).cpu(), minlength=self.k * self.k).double()
        if self.keep:
            self.logits.append(logits.cpu())

    def result(self, dist: Distributed) -> dict[str, float]:
        totals = dist.sum(torch.cat([self.confusion, self.loss_sum.reshape(1)]))
        matrix = totals[:-1].reshape(self.k, self.k)
        count = float(matrix.sum())
        correct = float(matrix.diag().sum())
        out = {"loss": float(totals[-1]) / max(count, 1.0), "accuracy": correct / max(count, 1.0),
               "macro_f1": macro_f1(matrix)}
        if self.keep:
            mine = torch.cat(self.logits) if self.logits else torch.zeros(0, self.k)
            out["logits"] = interleave(dist.gather([mine]))
        return out


def macro_f1(matrix: torch.Tensor) -> float:
    """Macro-F1 from a confusion matrix, over the classes that occur in the truth or the predictions (as
    scikit-learn's f1_score does)."""
    tp = matrix.diag()
    support, predicted = matrix.sum(1), matrix.sum(0)
    present = (support + predicted) > 0
    f1 = 2 * tp / (support + predicted).clamp(min=1)
    return float(f1[present].mean()) if present.any() else 0.0


def interleave(parts: list[torch.Tensor]) -> torch.Tensor:
    """Rank r evaluated examples r, r+W, r+2W, …: their outputs back in the data's order."""
    if len(parts) == 1:
        return parts[0]
    total = sum(len(p) for p in parts)
    out = torch.empty(total, *parts[0].shape[1:], dtype=parts[0].dtype)
    for rank, part in enumerate(parts):
        out[rank::len(parts)] = part
    return out


def summary(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The numbers logged every epoch."""
    preds = logits.argmax(1).numpy()
    truth = labels.numpy()
    return {"loss": float(F.cross_entropy(logits.float(), labels)),
            "accuracy": float((preds == truth).mean()),
            "macro_f1": float(f1_score(truth, preds, average="macro", zero_division=0))}


def report(logits: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict:
    """The full evaluation written to eval.json."""
    out = summary(logits, labels)
    preds, truth = logits.argmax(1).numpy(), labels.numpy()
    ids = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(truth, preds, labels=ids, zero_division=0)
    out["per_class"] = {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                               "support": int(support[i])} for i, name in enumerate(classes)}
    out["confusion_matrix"] = confusion_matrix(truth, preds, labels=ids).tolist()
    out["labels"] = classes
    out["num_examples"] = int(len(truth))
    return out


def top_k(logits: torch.Tensor, classes: list[str], k: int) -> list[dict]:
    """One answer per row: the best label, its probability, and the k most likely labels."""
    probs = logits.float().softmax(-1)
    k = min(k, len(classes))
    values, indices = probs.topk(k, dim=-1)
    answers = []
    for row_values, row_indices in zip(values.tolist(), indices.tolist()):
        ranked = [{"label": classes[i], "score": round(v, 6)} for v, i in zip(row_values, row_indices)]
        answers.append({"label": ranked[0]["label"], "score": ranked[0]["score"], "top_k": ranked})
    return answers


def misclassified(logits: torch.Tensor, labels: torch.Tensor, items: list[str], classes: list[str]) -> list[dict]:
    """Every validation example the model got wrong, most confident mistakes first."""
    probs = logits.float().softmax(-1)
    confidence, preds = probs.max(-1)
    wrong = [i for i in range(len(items)) if preds[i] != labels[i]]
    wrong.sort(key=lambda i: -float(confidence[i]))
    return [{"index": i, "input": items[i], "true": classes[int(labels[i])], "predicted": classes[int(preds[i])],
             "confidence": round(float(confidence[i]), 4)} for i in wrong]


def by_group(logits: torch.Tensor, labels: torch.Tensor, groups: list[str]) -> dict:
    """Accuracy and macro-F1 for each value of the group column, and the largest gap between groups."""
    per_group = {}
    for name in sorted(set(groups)):
        rows = torch.tensor([g == name for g in groups])
        scores = summary(logits[rows], labels[rows])
        per_group[name] = {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                           "support": int(rows.sum())}
    gaps = {key: max(v[key] for v in per_group.values()) - min(v[key] for v in per_group.values())
            for key in ("accuracy", "macro_f1")}
    return {"groups": per_group, "accuracy_gap": gaps["accuracy"], "macro_f1_gap": gaps["macro_f1"]}


def overfitting_warning(history: list[dict], best_epoch: int) -> str | None:
    """Plain words when validation loss rose after the best epoch while training loss kept falling."""
    after = [h for h in history if h["epoch"] > best_epoch]
    if len(after) < 2:
        return None
    best = next(h for h in history if h["epoch"] == best_epoch)
    last = history[-1]
    if last["val_loss"] > best["val_loss"] * 1.05 and last["train_loss"] < best["train_loss"]:
        return said("The model began to memorise the training examples after epoch {epoch}: validation loss rose "
                    "from {val_best} to {val_last} while training loss kept falling ({train_best} to "
                    "{train_last}). The saved model is the one from epoch {epoch}. More examples, fewer epochs or "
                    "a frozen backbone would help.", epoch=best_epoch, val_best=f"{best['val_loss']:.3f}",
                    val_last=f"{last['val_loss']:.3f}", train_best=f"{best['train_loss']:.3f}",
                    train_last=f"{last['train_loss']:.3f}")
    return None


def wilson_interval(correct: int, total: int, z: float = 1.96) -> dict:
    """The 95% Wilson score interval for an accuracy measured on `total` examples: how far the true accuracy
    may be from the measured one, given only that many (sound even for a handful of examples, unlike ± 2 SE)."""
    if total == 0:
        return {"low": 0.0, "high": 1.0, "confidence": 0.95, "examples": 0}
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return {"low": max(0.0, centre - half), "high": min(1.0, centre + half), "confidence": 0.95,
            "examples": total}


def interval_warning(interval: dict, accuracy: float) -> str | None:
    """Words when the validation set is too small for its accuracy to be read to within ±10 points."""
    if interval["high"] - interval["low"] <= 0.2:
        return None
    return said("Only {n} validation examples: the measured accuracy of {accuracy} could well be anywhere from "
                "{low} to {high} (95% interval). More examples would tell the model's real accuracy more "
                "precisely.", n=interval["examples"], accuracy=f"{accuracy:.0%}", low=f"{interval['low']:.0%}",
                high=f"{interval['high']:.0%}")

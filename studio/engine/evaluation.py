"""Metrics for a classifier: accuracy, macro-F1, per-class precision/recall, confusion matrix."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support


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

"""What pretraining buys: the same architecture trained from random weights, given the wall time that the studio's
feature-extraction run took. The studio has no time-budget option, so this loop is the bench's own, built from
the studio's pieces (the architecture, random initialisation) and the plain loop's data pipeline with the
augmentation the studio's scratch strategy uses; AdamW at the scratch default rate, batches cycled until the
budget is spent, then one evaluation (not counted in the budget)."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from bench import plain


def scratch_with_budget(model: str, train: tuple, val: tuple, num_labels: int, budget_s: float, batch_size: int,
                        lr: float, num_workers: int, device, amp) -> dict:
    from studio import tasks
    from studio.engine.classifier import Classifier
    backbone, info, _ = tasks.get("image-classification").backbone(model, pretrained=False)
    prep = info.preprocessing
    prep = plain.ImagePrep(prep["image_size"], prep["resize_size"], tuple(prep["mean"]), tuple(prep["std"]))
    clf = Classifier(backbone, num_labels).to(device)
    optimizer = torch.optim.AdamW(clf.parameters(), lr=lr, weight_decay=0.01)
    loader = plain.image_loader(*train, prep, batch_size, True, True, num_workers, device)
    start = time.perf_counter()
    steps = seen = 0
    clf.train()
    while time.perf_counter() - start < budget_s:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with plain.autocast(device, amp):
                loss = F.cross_entropy(clf(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            seen += len(y)
            if time.perf_counter() - start >= budget_s:
                break
    plain.sync(device)
    trained_s = time.perf_counter() - start
    clf.eval()
    correct = total = 0
    with torch.inference_mode():
        for x, y in plain.image_loader(*val, prep, 4 * batch_size, False, False, num_workers, device):
            with plain.autocast(device, amp):
                pred = clf(x.to(device)).argmax(1).cpu()
            correct += int((pred == y).sum())
            total += len(y)
    return {"accuracy": correct / total, "steps": steps, "examples_seen": seen, "trained_s": trained_s}

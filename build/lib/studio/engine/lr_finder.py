"""Learning-rate range test (Smith 2017, as fastai's lr_find): a short run whose learning rate grows
exponentially step by step, the smoothed training loss recorded against it, stopped once the loss blows up.
The model's weights are put back afterwards; the run itself trains from where it was. The suggestion is the
steepest point of the descent: the rate at which the loss fell fastest, inside the stretch where it fell."""
from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch

from studio.engine.device import autocast
from studio.engine.loop import Cancelled, Loop, to_device, train_mode

STEPS = 100
START, END = 1e-7, 1.0  # the recipe's learning rate is swept over this range
SMOOTHING = 0.9  # exponential moving average of the loss (bias-corrected)
DIVERGED = 4.0  # stop when the smoothed loss exceeds this many times its lowest value


def worth_running(setting: str, run_steps: int, steps: int = STEPS) -> bool:
    """'on', 'off', or 'auto': only when the test costs at most a tenth of the run's own steps."""
    return setting == "on" or (setting == "auto" and steps <= 0.1 * run_steps)


def suggest(lrs: list[float], losses: list[float]) -> dict:
    """The stretch where the smoothed loss fell (from its highest point before the minimum down to the minimum)
    and the steepest point inside it, by the slope of the loss against log(lr)."""
    low = min(range(len(losses)), key=losses.__getitem__)
    high = max(range(low + 1), key=lambda i: (losses[i], i))  # the last of the highest: where the fall begins
    if low - high < 2:  # the loss never fell: nothing to suggest
        return {"suggestion": None, "fell_from": lrs[high], "fell_to": lrs[low]}
    slopes = [(losses[i + 1] - losses[i - 1]) / (math.log(lrs[i + 1]) - math.log(lrs[i - 1]))
              for i in range(high + 1, low)]
    steepest = high + 1 + min(range(len(slopes)), key=slopes.__getitem__)
    return {"suggestion": lrs[steepest], "fell_from": lrs[high], "fell_to": lrs[low]}


def range_test(loop: Loop, base_lr: float, events: Any = None, steps: int = STEPS) -> dict:
    """Sweeps the recipe's learning rate from START to END over `steps` optimizer steps of the loop's model on
    its training batches (each parameter group keeps its ratio to the recipe's rate: a head 10× faster stays 10×
    faster). Returns the (lr, smoothed loss) points, the stretch where the loss fell and the suggested rate; the
    model's weights are as they were afterwards, and the loop has not moved."""
    model, cfg = loop.model, loop.config
    saved = copy.deepcopy(model.state_dict())
    groups = [dict(g, params=list(g["params"]), ratio=g["lr"] / base_lr) for g in loop.param_groups]
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    factor = (END / START) ** (1 / max(1, steps - 1))
    points, average, best = [], 0.0, float("inf")
    started = time.perf_counter()
    train_mode(model, cfg.keep_batch_norm_statistics)
    try:
        batches = _cycle(loop.train_loader)
        for step in range(steps):
            if loop.cancel.is_set():
                raise Cancelled()
            lr = START * factor ** step
            for group in optimizer.param_groups:
                group["lr"] = lr * group["ratio"]
            inputs, targets = next(batches)
            with autocast(cfg.device, cfg.amp_dtype):
                loss, _ = loop.compute(model, to_device(inputs, cfg.device), to_device(targets, cfg.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                break
            average = SMOOTHING * average + (1 - SMOOTHING) * value
            smoothed = average / (1 - SMOOTHING ** (step + 1))
            points.append((lr, smoothed))
            best = min(best, smoothed)
            if events is not None:
                elapsed = time.perf_counter() - started
                events.emit("progress", phase="lr_finder", done=step + 1, total=steps,
                            samples_per_s=(step + 1) * loop.train_loader.batch_size / elapsed,
                            eta=(steps - step - 1) * elapsed / (step + 1))
            if smoothed > DIVERGED * best and step > 10:
                break
    finally:
        model.load_state_dict(saved)
        optimizer.zero_grad(set_to_none=True)
    found = suggest([p[0] for p in points], [p[1] for p in points]) if len(points) > 2 else \
        {"suggestion": None, "fell_from": None, "fell_to": None}
    return {"points": [[lr, loss] for lr, loss in points], **found, "steps": len(points),
            "seconds": time.perf_counter() - started, "current": base_lr}


def _cycle(loader):
    while True:
        yield from loader

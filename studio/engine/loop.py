"""The training loop, read top to bottom: epochs of optimizer steps, an evaluation after each epoch, the best
weights kept. Progress goes out as events; behaviour is added by callbacks (fastai-style)."""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from studio.engine import evaluation
from studio.engine.device import autocast
from studio.engine.events import EventLog


class Cancelled(Exception):
    """Raised inside the loop when the user asked the run to stop."""


class Callback:
    """Hooks into the loop; the loop passes itself so a callback can read step, epoch, loss."""

    def on_step_end(self, loop: "Loop") -> None: ...

    def on_epoch_end(self, loop: "Loop") -> None: ...


@dataclass
class LoopConfig:
    epochs: int
    device: torch.device
    amp_dtype: torch.dtype | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    log_every_s: float = 0.0  # step events no more often than this (0: every step)
    patience: int = 0  # early stopping: epochs without a lower validation loss before stopping (0: never)
    checkpoint: Path | None = None  # where the loop saves its state after each epoch, for resuming


def save_state(path: Path, state: dict) -> None:
    """Written beside and renamed: a kill mid-write leaves the previous checkpoint intact."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values only: no code


def to_device(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def batch_size(inputs) -> int:
    return len(inputs) if isinstance(inputs, torch.Tensor) else len(next(iter(inputs.values())))


def train_mode(model: nn.Module) -> None:
    """Training mode, except that frozen batch-norm layers keep their pretrained statistics."""
    model.train()
    for module in model.modules():
        if isinstance(module, _BatchNorm) and not any(p.requires_grad for p in module.parameters()):
            module.eval()


@torch.no_grad()
def predict(model: nn.Module, loader, device: torch.device, amp_dtype=None, cancel: threading.Event | None = None):
    """(logits, labels) on CPU for every batch of the loader."""
    model.eval()
    logits, labels = [], []
    for inputs, targets in loader:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        with autocast(device, amp_dtype):
            logits.append(model(to_device(inputs, device)).float().cpu())
        labels.append(targets)
    return torch.cat(logits), torch.cat(labels)


def _schedule(total_steps: int, warmup_ratio: float):
    warmup = max(1, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:  # linear warm-up, then cosine decay to 10% of the rate
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


@dataclass
class Loop:
    model: nn.Module
    param_groups: list[dict]
    train_loader: object
    val_loader: object
    config: LoopConfig
    events: EventLog
    cancel: threading.Event = field(default_factory=threading.Event)
    callbacks: list[Callback] = field(default_factory=list)
    # state, readable by callbacks
    step: int = 0
    epoch: int = 0
    loss: float = float("nan")
    best: dict | None = None  # {"epoch", "val_loss", "state", "logits", "labels"}
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False

    def _state(self, optimizer, scheduler, scaler) -> dict:
        generator = getattr(self.train_loader, "generator", None)
        return {"epoch": self.epoch, "step": self.step, "history": self.history,
                "model": self.model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "rng": torch.get_rng_state(), "shuffle_rng": generator.get_state() if generator else None,
                "best": self.best}

    def _restore(self, state: dict, optimizer, scheduler, scaler) -> None:
        """Continues after the last finished epoch: weights, optimizer moments, schedule position and the random
        streams (shuffling, dropout) are as they were, so the resumed run takes the same steps."""
        self.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        generator = getattr(self.train_loader, "generator", None)
        if generator is not None and state["shuffle_rng"] is not None:
            generator.set_state(state["shuffle_rng"])
        self.epoch, self.step, self.history, self.best = state["epoch"], state["step"], state["history"], state["best"]
        self.events.emit("log", message=f"Resumed after epoch {self.epoch} (step {self.step}).")

    def run(self, resume: dict | None = None) -> dict:
        cfg, model = self.config, self.model
        steps_per_epoch = len(self.train_loader)
        total = steps_per_epoch * cfg.epochs
        optimizer = torch.optim.AdamW(self.param_groups, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total, cfg.warmup_ratio))
        scaler = torch.amp.GradScaler(cfg.device.type, enabled=cfg.amp_dtype == torch.float16)
        trainable = [p for group in self.param_groups for p in group["params"]]
        if resume is not None:
            self._restore(resume, optimizer, scheduler, scaler)
        start = time.perf_counter()
        train_time, last_log, samples = 0.0, 0.0, 0  # train_time: wall time in training epochs, data loading included
        first_step = self.step
        for self.epoch in range(self.epoch + 1, cfg.epochs + 1):
            train_mode(model)
            epoch_loss, epoch_batches = 0.0, 0
            epoch_start = time.perf_counter()
            for inputs, targets in self.train_loader:
                if self.cancel.is_set():
                    raise Cancelled()
                inputs, targets = to_device(inputs, cfg.device), targets.to(cfg.device, non_blocking=True)
                with autocast(cfg.device, cfg.amp_dtype):
                    loss = F.cross_entropy(model(inputs).float(), targets)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                self.step += 1
                self.loss = loss.item()  # one sync per step: the curve needs the value anyway
                epoch_loss += self.loss
                epoch_batches += 1
                samples += batch_size(inputs)
                now = time.perf_counter()
                if now - last_log >= cfg.log_every_s or self.step == total:
                    last_log = now
                    self.events.emit("step", step=self.step, total_steps=total, epoch=self.epoch,
                                     train_loss=self.loss, lr=scheduler.get_last_lr()[0],
                                     samples_per_s=samples / (train_time + now - epoch_start), elapsed=now - start,
                                     eta=(total - self.step) * (now - start) / (self.step - first_step))
                for callback in self.callbacks:
                    callback.on_step_end(self)
            train_time += time.perf_counter() - epoch_start
            logits, labels = predict(model, self.val_loader, cfg.device, cfg.amp_dtype, self.cancel)
            metrics = evaluation.summary(logits, labels)
            record = {"epoch": self.epoch, "step": self.step, "train_loss": epoch_loss / max(1, epoch_batches),
                      "val_loss": metrics["loss"], "accuracy": metrics["accuracy"],
                      "macro_f1": metrics["macro_f1"], "elapsed": time.perf_counter() - start}
            self.history.append(record)
            if self.best is None or metrics["loss"] < self.best["val_loss"]:
                # Kept on the CPU: a second copy of a large model must not take GPU memory.
                self.best = {"epoch": self.epoch, "val_loss": metrics["loss"], "logits": logits, "labels": labels,
                             "state": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}}
            self.events.emit("epoch", total_epochs=cfg.epochs, best_epoch=self.best["epoch"], **record)
            if cfg.checkpoint is not None:
                save_state(cfg.checkpoint, self._state(optimizer, scheduler, scaler))
            for callback in self.callbacks:
                callback.on_epoch_end(self)
            if cfg.patience and self.epoch - self.best["epoch"] >= cfg.patience and self.epoch < cfg.epochs:
                self.stopped_early = True
                self.events.emit("log", message=f"Stopped early after epoch {self.epoch}: validation loss has not "
                                 f"improved for {cfg.patience} epochs. Keeping epoch {self.best['epoch']}.")
                break
        model.load_state_dict(self.best["state"])
        return {"best_epoch": self.best["epoch"], "steps": self.step, "history": self.history,
                "stopped_early": self.stopped_early,
                "val_logits": self.best["logits"], "val_labels": self.best["labels"],
                "samples_per_s": samples / max(train_time, 1e-9), "train_seconds": time.perf_counter() - start}

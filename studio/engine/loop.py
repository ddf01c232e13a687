"""The training loop, read top to bottom: epochs of optimizer steps (gradients accumulated over
train.gradient_accumulation_steps batches) and an evaluation after each epoch. What the loop computes comes from
the task (a `compute` function giving the loss, and a metrics accumulator); behaviour around it is added by
callbacks, fastai-style: the progress events, the best weights, checkpoints for resuming and early stopping are
callbacks (engine/callbacks.py), which read the loop's state."""
from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from studio.engine.device import autocast
from studio.engine.distributed import (Distributed, full_state, load_optimizer_state, load_state, optimizer_state,
                                       unwrap)
from studio.words import said


class Cancelled(Exception):
    """Raised inside the loop when the user asked the run to stop."""


class Callback:
    """Hooks into the loop; the loop passes itself so a callback can read step, epoch, loss, history."""

    def on_train_begin(self, loop: "Loop") -> None: ...

    def on_step_end(self, loop: "Loop") -> None: ...

    def on_evaluate_begin(self, loop: "Loop") -> None: ...

    def on_epoch_end(self, loop: "Loop") -> None: ...

    def on_cancel(self, loop: "Loop") -> None: ...


class Metrics(Protocol):
    """Streaming metrics over a validation pass: `update` per batch, `result` once (summed across ranks). The
    result holds at least "loss"."""

    def update(self, outputs: Any, targets: Any) -> None: ...

    def result(self, dist: Distributed) -> dict[str, float]: ...


# (model, inputs, targets) → (the mean loss to minimise, what the metrics read)
Compute = Callable[[nn.Module, Any, Any], tuple[torch.Tensor, Any]]


@dataclass
class LoopConfig:
    epochs: int
    device: torch.device
    amp_dtype: torch.dtype | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    accumulation: int = 1  # batches per optimizer step
    # Fine-tuning a pretrained network on small batches: batch norm normalises with its pretrained statistics
    # (its scale and shift still train). In training mode it would normalise with each small batch's statistics
    # while evaluation used running ones that, at a TensorFlow-style momentum of 0.01, barely follow the weights
    # as they change: measured on EfficientNet-Lite0, validation loss went from 1.1 to over 3000 in two epochs.
    keep_batch_norm_statistics: bool = False
    tokens: Callable[[Any, Any], int] | None = None  # a batch's tokens (language models): step events then
    # carry tokens_per_s, the throughput that means something when examples differ in length


def to_device(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def batch_size(inputs) -> int:
    if isinstance(inputs, torch.Tensor):
        return len(inputs)
    return len(next(iter(inputs.values())))


def count_parameters(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}


def train_mode(model: nn.Module, keep_statistics: bool = False) -> None:
    """Training mode, except that batch-norm layers keep their running statistics when they are frozen or when
    asked to (keep_statistics: a pretrained network being fine-tuned)."""
    model.train()
    for module in model.modules():
        if isinstance(module, _BatchNorm) and (keep_statistics
                                               or not any(p.requires_grad for p in module.parameters())):
            module.eval()


def schedule(total_steps: int, warmup_ratio: float):
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
    train_loader: Any  # a DataLoader whose sampler is a ShardedSampler
    val_loader: Any
    config: LoopConfig
    events: Any  # EventWriter (NullWriter on ranks other than 0)
    compute: Compute
    new_metrics: Callable[[], Metrics]
    cancel: threading.Event = field(default_factory=threading.Event)
    callbacks: list[Callback] = field(default_factory=list)
    dist: Distributed = field(default_factory=Distributed)
    # state, readable by callbacks
    step: int = 0
    epoch: int = 0
    batches_done: int = 0  # batches of the current epoch taken so far
    loss: float = float("nan")
    epoch_loss: float = 0.0  # sum of this epoch's step losses so far
    history: list[dict] = field(default_factory=list)
    best: dict | None = None  # {"epoch", "val_loss"} of the best epoch so far (its weights are on disk)
    stop: bool = False  # a callback asks the loop to end after this epoch
    stopped_early: bool = False
    started: float = 0.0
    first_step: int = 0  # the step this call of run() started from (a resumed run starts mid-way)
    samples: int = 0  # examples trained on by this call of run(), every rank counted
    tokens: int = 0  # tokens trained on (language models: LoopConfig.tokens)
    train_time: float = 0.0  # seconds of finished epochs spent training (evaluation left out)
    epoch_start: float = 0.0
    record: dict | None = None  # the latest epoch's line of history
    figures: dict = field(default_factory=dict)  # a task's own figures of the latest step (a callback fills
    # them before Progress runs), sent with its step event: e.g. preference tuning's reward accuracy

    def __post_init__(self):
        self.steps_per_epoch = math.ceil(len(self.train_loader) / self.config.accumulation)
        self.total_steps = self.steps_per_epoch * self.config.epochs
        self.optimizer = torch.optim.AdamW(self.param_groups, weight_decay=self.config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, schedule(self.total_steps, self.config.warmup_ratio))
        self.scaler = torch.amp.GradScaler(self.config.device.type,
                                           enabled=self.config.amp_dtype == torch.float16)
        self.trainable = [p for group in self.param_groups for p in group["params"]]

    # -- training ------------------------------------------------------------------------------------------------
    def run(self) -> dict:
        """Trains to the last epoch (or until a callback stops it); a stop request ends it between two steps,
        after the callbacks' on_cancel (a checkpoint there: resuming continues from that very step)."""
        try:
            return self._run()
        except Cancelled:
            self._call("on_cancel")
            raise

    def _run(self) -> dict:
        cfg, model = self.config, self.model
        self.started = time.perf_counter()
        self.train_time, self.samples, self.tokens, self.first_step = 0.0, 0, 0, self.step
        self._call("on_train_begin")
        start_epoch = self.epoch if self.batches_done else self.epoch + 1
        for self.epoch in range(start_epoch, cfg.epochs + 1):
            if not self.batches_done:
                self.epoch_loss = 0.0
            sampler = self.train_loader.sampler
            sampler.set_epoch(self.epoch, skip=self.batches_done * self.train_loader.batch_size)
            batches = len(self.train_loader) + self.batches_done  # this epoch's whole length
            train_mode(model, cfg.keep_batch_norm_statistics)
            self.epoch_start = time.perf_counter()
            step_loss, in_step, step_size = torch.zeros(()), 0, 0
            for inputs, targets in self.train_loader:
                if in_step == 0:  # a new optimizer step: every rank must agree to stop at the same one
                    if self.dist.any(self.cancel.is_set()):
                        raise Cancelled()
                    step_size = min(cfg.accumulation, batches - self.batches_done)
                if cfg.tokens is not None:  # counted before the batch moves: no device sync for it
                    self.tokens += cfg.tokens(inputs, targets) * self.dist.world_size
                inputs, targets = to_device(inputs, cfg.device), to_device(targets, cfg.device)
                self.batches_done += 1
                in_step += 1
                sync = in_step == step_size
                no_sync = getattr(model, "no_sync", None)  # DDP: average gradients only on the last batch
                with (no_sync() if no_sync and not sync else contextlib.nullcontext()):
                    with autocast(cfg.device, cfg.amp_dtype):
                        loss, _ = self.compute(model, inputs, targets)
                    self.scaler.scale(loss / step_size).backward()
                step_loss += loss.detach().float().cpu()  # one sync per batch: the curve needs the value anyway
                self.samples += batch_size(inputs) * self.dist.world_size
                if not sync:
                    continue
                self._optimizer_step()
                self.loss = self.dist.sum(step_loss / step_size).item() / self.dist.world_size
                step_loss, in_step = torch.zeros(()), 0
                self.epoch_loss += self.loss
                self._call("on_step_end")
            self.train_time += time.perf_counter() - self.epoch_start
            self._call("on_evaluate_begin")
            metrics = self.evaluate()
            steps_this_epoch = math.ceil(batches / cfg.accumulation)
            self.record = {"epoch": self.epoch, "step": self.step,
                           "train_loss": self.epoch_loss / max(1, steps_this_epoch), "val_loss": metrics["loss"],
                           **{k: v for k, v in metrics.items() if k != "loss"},
                           "elapsed": time.perf_counter() - self.started}
            self.history.append(self.record)
            self.batches_done = 0
            self._call("on_epoch_end")
            if self.stop:
                break
        return {"best_epoch": (self.best or {}).get("epoch", self.epoch), "steps": self.step,
                "history": self.history, "stopped_early": self.stopped_early,
                "samples_per_s": self.samples / max(self.train_time, 1e-9),
                **({"tokens_per_s": self.tokens / max(self.train_time, 1e-9)} if cfg.tokens is not None else {}),
                "train_seconds": time.perf_counter() - self.started}

    def _call(self, hook: str) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self)

    def _optimizer_step(self) -> None:
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.trainable, self.config.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1

    @torch.no_grad()
    def evaluate(self, metrics: Metrics | None = None) -> dict[str, Any]:
        """The task's metrics over the validation set (each rank its share, summed); `metrics`: another
        accumulator than the per-epoch one (the final report keeps more)."""
        self.model.eval()
        metrics = metrics or self.new_metrics()
        for inputs, targets in self.val_loader:
            if self.cancel.is_set() and not self.dist.active:
                raise Cancelled()
            inputs, targets = to_device(inputs, self.config.device), to_device(targets, self.config.device)
            with autocast(self.config.device, self.config.amp_dtype):
                _, outputs = self.compute(self.model, inputs, targets)
            metrics.update(outputs, targets)
        return metrics.result(self.dist)

    # -- state for resuming ----------------------------------------------------------------------------------------
    def trained_state(self) -> dict[str, torch.Tensor]:
        """The weights that change in training: trainable parameters and every buffer (batch-norm statistics). A
        frozen backbone is not saved again. Collective under FSDP (every rank calls it)."""
        net = unwrap(self.model)
        names = {n for n, p in net.named_parameters() if p.requires_grad} | {n for n, _ in net.named_buffers()}
        return {k: v.clone() for k, v in full_state(self.model, self.dist).items() if k in names}

    def state(self) -> dict:
        """Everything a resumed run needs to take the same steps (tensors and plain values only)."""
        rng = self.dist.gather([torch.get_rng_state()])
        cuda = self.dist.gather([torch.cuda.get_rng_state()]) if torch.cuda.is_available() else None
        return {"epoch": self.epoch, "batches_done": self.batches_done, "step": self.step,
                "epoch_loss": self.epoch_loss, "history": self.history, "best": self.best,
                "trained": self.trained_state(), "optimizer": optimizer_state(self.model, self.optimizer, self.dist),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "rng": rng, "cuda_rng": cuda}

    def restore(self, state: dict) -> None:
        """Continues where `state` was taken: weights, optimizer moments, schedule position, the random streams
        (dropout, augmentation) and the position in the epoch."""
        load_state(self.model, state["trained"], self.dist)
        load_optimizer_state(self.model, self.optimizer, state["optimizer"], self.dist)
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        rank = self.dist.rank
        torch.set_rng_state(state["rng"][rank])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda_rng"][rank])
        self.epoch, self.batches_done, self.step = state["epoch"], state["batches_done"], state["step"]
        self.epoch_loss, self.history, self.best = state["epoch_loss"], state["history"], state["best"]
        self.events.emit("log", message=said("Resumed {batches} batches into epoch {epoch} (step {step}).",
                                             batches=self.batches_done, epoch=self.epoch, step=self.step)
                         if self.batches_done else
                         said("Resumed after epoch {epoch} (step {step}).", epoch=self.epoch, step=self.step))


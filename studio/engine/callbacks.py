"""Behaviour around the loop, as callbacks: say how training goes (step and epoch events), keep the best weights
on disk, checkpoint for resuming (after every epoch, and every few minutes inside a long one), stop early when
validation stops improving (not before a minimum number of epochs), and recompute batch-norm statistics before
each evaluation of a network whose batch norm trains from scratch. `standard()` gives a task the usual set, in
the order they must run."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from torch.nn.modules.batchnorm import _BatchNorm

from studio.engine.device import autocast
from studio.engine.distributed import load_state
from studio.engine.loop import Callback, Loop, to_device
from studio.runfolder import RunFolder, atomic
from studio.words import said


class Progress(Callback):
    """Step and epoch events for the run folder (the UI's curves, the CLI's progress bar): each optimizer step's
    loss, learning rate, throughput and ETA; each epoch's line of history and the best epoch so far. Runs after
    the other callbacks, so an epoch's event names the best epoch as BestWeights decided it."""

    def on_step_end(self, loop: Loop) -> None:
        now = time.perf_counter()
        seconds = loop.train_time + now - loop.epoch_start
        rates = {"tokens_per_s": loop.tokens / seconds} if loop.config.tokens is not None else {}
        loop.events.emit("step", step=loop.step, total_steps=loop.total_steps, epoch=loop.epoch,
                         train_loss=loop.loss, lr=loop.scheduler.get_last_lr()[0],
                         samples_per_s=loop.samples / seconds, **rates, **loop.figures,
                         elapsed=now - loop.started,
                         eta=(loop.total_steps - loop.step) * (now - loop.started) / (loop.step - loop.first_step))

    def on_epoch_end(self, loop: Loop) -> None:
        loop.events.emit("epoch", total_epochs=loop.config.epochs, best_epoch=(loop.best or {}).get("epoch"),
                         **loop.record)


def lowest_loss(record: dict) -> tuple:
    return (-record["val_loss"],)


def most_accurate(record: dict) -> tuple:
    """Accuracy first (what the person reads), validation loss among equal ones: a lower loss alone can come
    with fewer right answers, e.g. a fine-tuned epoch less sure of everything than the linear probe it began from."""
    return (record["accuracy"], -record["val_loss"])


class BestWeights(Callback):
    """After an epoch better than any before by `key` (a record → a comparable value, higher is better), its
    trained weights go to disk (only what trains: a frozen backbone is not copied), never into a second copy in
    memory. `restore` loads them back."""

    def __init__(self, path: Path, key: Callable[[dict], tuple] = lowest_loss):
        self.path, self.key = path, key

    def on_epoch_end(self, loop: Loop) -> None:
        record = loop.history[-1]
        if loop.best is not None:
            best = next(h for h in loop.history if h["epoch"] == loop.best["epoch"])
            if self.key(record) <= self.key(best):
                return
        loop.best = {"epoch": loop.epoch, "val_loss": record["val_loss"]}
        self._save(loop)

    def start_from(self, loop: Loop, record: dict) -> None:
        """Counts the weights as they are (e.g. a linear probe, as epoch 0) as the best so far, with this line
        of history: training must beat them to replace them."""
        loop.history.append(record)
        loop.best = {"epoch": record["epoch"], "val_loss": record["val_loss"]}
        self._save(loop)

    def _save(self, loop: Loop) -> None:
        state = loop.trained_state()  # collective under FSDP: every rank takes part
        if loop.dist.is_main:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic(self.path) as tmp:
                save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
        loop.dist.barrier()

    def restore(self, loop: Loop) -> None:
        if self.path.exists():
            load_state(loop.model, load_file(str(self.path)), loop.dist)


def save_state(path: Path, state: dict) -> None:
    """Written beside and renamed: a kill mid-write leaves the previous checkpoint intact."""
    with atomic(path) as tmp:
        torch.save(state, tmp)


def load_state_file(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values only: no code


class Checkpoint(Callback):
    """The loop's whole state (checkpoints/last.pt) after every epoch, after the step that ends each `every_s`
    seconds of a long epoch, and when the run is stopped: a crash loses minutes, a stop nothing."""

    def __init__(self, path: Path, every_s: float = 300.0):
        self.path, self.every_s, self.last = path, every_s, time.monotonic()

    def _save(self, loop: Loop) -> None:
        state = loop.state()  # collective: every rank takes part
        if loop.dist.is_main:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            save_state(self.path, state)
        self.last = time.monotonic()

    def on_step_end(self, loop: Loop) -> None:
        # Every rank must decide alike, so rank 0's clock decides.
        due = time.monotonic() - self.last >= self.every_s
        if loop.dist.any(due and loop.dist.is_main):
            self._save(loop)

    def on_epoch_end(self, loop: Loop) -> None:
        self._save(loop)

    def on_cancel(self, loop: Loop) -> None:
        self._save(loop)  # stopped between two steps: resuming continues from this one


class EarlyStopping(Callback):
    """Ends training after `patience` epochs without a lower validation loss (0: never), but not before
    `min_epochs` epochs (a model trained from scratch needs a few before its validation loss means much). It
    watches the loss, not BestWeights' rule: on a small validation set accuracy moves in steps of one example and
    can stand still for epochs while the model still improves. The weights kept are BestWeights' choice."""

    def __init__(self, patience: int, min_epochs: int = 0):
        self.patience, self.min_epochs = patience, min_epochs

    def on_epoch_end(self, loop: Loop) -> None:
        lowest = min(loop.history, key=lambda h: h["val_loss"])["epoch"]
        if (self.patience and loop.epoch - lowest >= self.patience and loop.epoch >= self.min_epochs
                and loop.epoch < loop.config.epochs):
            loop.stop = loop.stopped_early = True
            kept = (loop.best or {}).get("epoch", lowest)
            loop.events.emit("log", message=said("Stopped early after epoch {epoch}: validation loss has not "
                                                 "improved for {n} epochs. Keeping epoch {kept}.",
                                                 epoch=loop.epoch, n=self.patience, kept=kept))


class BatchNormStatistics(Callback):
    """Before each evaluation, the running mean and variance of every batch-norm layer are recomputed over
    training examples (unaugmented, as validation sees them), "precise BN". A network trained from random weights
    needs it: its running statistics start at mean 0, variance 1 and, with a TensorFlow-style momentum of 0.01
    (EfficientNet-Lite's), after a few dozen steps they are still mostly those starting values while the weights
    have moved far, so validation (which uses the running statistics) sees a different network than training
    did and sits at chance. `loader` gives (inputs, targets) batches; at most `max_batches` are read."""

    def __init__(self, loader, max_batches: int = 50):
        self.loader, self.max_batches = loader, max_batches

    @torch.no_grad()
    def on_evaluate_begin(self, loop: Loop) -> None:
        layers = [m for m in loop.model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
        if not layers:
            return
        loop.model.eval()  # dropout and stochastic depth off: the statistics are those evaluation will meet
        momenta = [m.momentum for m in layers]
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average over the batches read
            layer.train()
        for n, (inputs, _) in enumerate(self.loader):
            if n >= self.max_batches:
                break
            with autocast(loop.config.device, loop.config.amp_dtype):
                loop.model(to_device(inputs, loop.config.device))
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        loop.model.eval()


def standard(run: RunFolder, patience: int, key: Callable[[dict], tuple] = lowest_loss, min_epochs: int = 0,
             before: list[Callback] = (), extra: list[Callback] = ()) -> tuple[list[Callback], BestWeights]:
    """(the usual callbacks of a run, its BestWeights): `before` (e.g. batch-norm statistics), the best weights
    (kept by `key`), checkpoints, early stopping, `extra` (tests, the benchmark), then the progress events, the
    order they must run in."""
    best = BestWeights(run.best_weights, key)
    return [*before, best, Checkpoint(run.last_state), EarlyStopping(patience, min_epochs), *extra, Progress()], best

"""Experiment tracking (train.report_to): a run's figures also go to TensorBoard, MLflow or trackio
(studio.engine.trackers). The Reporter listens to the run's events; the training loop only puts figures on a
bounded queue, and a thread of the Reporter's own hands them to the trackers. A tracker that is slow, down or not
installed never slows or fails the run: the run's log says so once, and training goes on without it.

Rank 0 reports alone. At the end the thread drains (a completed run also sends its results: the recipe, the
confusion matrix, for MLflow the model folder and eval.json) and each tracker's run is marked as the run ended,
before the run's final status is written; a tracker still busy after DRAIN_S seconds is left behind."""
from __future__ import annotations

import contextlib
import getpass
import queue
import threading
import time
from typing import Callable, Iterator

from studio.engine.context import RunContext
from studio.engine.loop import Cancelled
from studio.engine.trackers import TRACKERS
from studio.errors import first_line
from studio.words import said

QUEUE_SIZE = 10_000  # figures waiting for slow trackers; beyond it new ones are dropped (and the log says so)
BATCH = 500  # figures handed to the trackers at once, at most
FLUSH_S = 2.0  # and at most this often (the end of the run flushes at once)
DRAIN_S = 60.0  # how long the end of a run waits for the trackers to finish
STEP_FIGURES = {"train_loss": "train/loss", "lr": "train/learning_rate", "samples_per_s": "train/samples_per_s",
                "tokens_per_s": "train/tokens_per_s"}
NOT_FIGURES = {"type", "time", "epoch", "step", "total_epochs", "best_epoch", "elapsed"}


def figures(event: dict) -> tuple[int, dict[str, float]] | None:
    """(step, {name: value}) of a step event (training loss, learning rate, throughput) or of an epoch event
    (validation loss and every other number of the epoch's record: the task's metrics); None for other events."""
    if event.get("type") == "step":
        return event["step"], {name: float(event[key]) for key, name in STEP_FIGURES.items() if key in event}
    if event.get("type") == "epoch":
        out = {}
        for key, value in event.items():
            if key in NOT_FIGURES or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            out["train/epoch_loss" if key == "train_loss" else f"val/{key.removeprefix('val_')}"] = float(value)
        return event["step"], out
    return None


class Reporter:
    """An EventWriter listener that forwards figures to trackers on a thread of its own."""

    def __init__(self, trackers: list, log: Callable[[str], None]):
        self.trackers, self.log = list(trackers), log
        self.queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.outcome = "failed"
        self.dropped = False
        self.thread = threading.Thread(target=self._work, name="tracking", daemon=True)
        self.thread.start()

    def __call__(self, event: dict) -> None:
        row = figures(event)
        if row is None:
            return
        try:
            self.queue.put_nowait(row)
        except queue.Full:
            if not self.dropped:
                self.dropped = True
                self.log(said("The experiment trackers are falling behind: some training figures were not sent "
                              "to them."))

    def close(self, outcome: str) -> None:
        """Marks the trackers' runs with the outcome (completed, failed, cancelled) once every figure is sent;
        waits at most DRAIN_S seconds for it."""
        self.outcome = outcome
        deadline = time.monotonic() + DRAIN_S
        try:
            self.queue.put(None, timeout=DRAIN_S)  # the end, after every figure queued before it
        except queue.Full:
            pass
        self.thread.join(max(0.0, deadline - time.monotonic()))
        if self.thread.is_alive():
            self.log(said("The experiment trackers had not finished after {seconds} seconds; the run ends without "
                          "waiting for them.", seconds=f"{DRAIN_S:g}"))

    def _work(self) -> None:
        self._each(lambda tracker: tracker.start(), started=True)
        while True:
            rows = [self.queue.get()]
            # Figures gathered for up to FLUSH_S: a tracker write per step (an MLflow transaction, say) would take
            # the CPU from training many times a second.
            deadline = time.monotonic() + FLUSH_S
            while rows[-1] is not None and len(rows) < BATCH:
                try:
                    rows.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            done = rows[-1] is None
            rows = [row for row in rows if row is not None]
            if rows:
                self._each(lambda tracker: tracker.log(rows))
            if done:
                self._each(lambda tracker: tracker.finish(self.outcome))
                return

    def _each(self, call: Callable, started: bool = False) -> None:
        """call(tracker) for each tracker still reporting; one that fails is told about once and left out."""
        for tracker in list(self.trackers):
            try:
                call(tracker)
            except ImportError:
                self.trackers.remove(tracker)
                self.log(said("{tracker} is not installed here: install the studio's tracking extra "
                              "(pip install -e \".[tracking]\"). Training goes on without it.", tracker=tracker.name))
            except Exception as exc:  # any failure of a tracker (down, refused, a bug of its own) ends its part only
                self.trackers.remove(tracker)
                self.log(said("Could not report to {tracker}: {reason}. Training goes on without it.",
                              tracker=tracker.name, reason=first_line(exc)))
            else:
                if started:
                    self.log(said("Reporting to {tracker}: {where}.", tracker=tracker.name, where=tracker.where()))


def owner(ctx: RunContext) -> str:
    """Whom the run belongs to: its status's owner, else who runs this process."""
    try:
        return ctx.events.status.get("owner") or getpass.getuser()
    except (KeyError, OSError):  # a process without a user name (some containers)
        return "unknown"


@contextlib.contextmanager
def reporting(ctx: RunContext) -> Iterator[None]:
    """Reports the run's figures to the recipe's trackers while the block trains (rank 0 only); when it ends,
    marks their runs completed, cancelled or failed as the block ended, and waits for them (at most DRAIN_S)."""
    names = ctx.recipe.train.report_to
    if not names or not ctx.dist.is_main:
        yield
        return
    reporter = Reporter([TRACKERS[name](ctx.run, ctx.recipe, ctx.workspace, owner(ctx)) for name in names],
                        lambda message: ctx.events.emit("log", message=message))
    ctx.events.listeners.append(reporter)
    outcome = "failed"
    try:
        yield
        outcome = "completed"
    except Cancelled:
        outcome = "cancelled"
        raise
    finally:
        ctx.events.listeners.remove(reporter)
        reporter.close(outcome)

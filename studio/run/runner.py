"""One attempt at a run in the calling process (the recipe read from the run folder, the device picked, the task's
pipeline run) and the retries around attempts: out of memory with train.retry_smaller_batch on, it tries again
with half the batch; the outcome goes to status.json, a failure in words. The worker (studio/run/worker.py) calls
them."""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from typing import Callable

import torch

from studio import tasks
from studio.engine.context import RunContext
from studio.engine.device import autocast_dtype, pick_device
from studio.engine.distributed import Distributed
from studio.engine.loop import Cancelled
from studio.engine.tracking import reporting
from studio.errors import UserError
from studio.run.stopping import ending
from studio.runfolder import ERROR_LOG, RECIPE, RunFolder
from studio.workspace import Workspace
from studio.words import said

log = logging.getLogger(__name__)


def out_of_memory(exc: BaseException) -> bool:
    return (isinstance(exc, torch.OutOfMemoryError) or getattr(exc, "out_of_memory", False)
            or "out of memory" in str(exc).lower())


def explain(exc: BaseException) -> str:
    """The failure in words a user can act on."""
    if isinstance(exc, UserError):
        return str(exc)
    if out_of_memory(exc):
        return ("The device ran out of memory. Use a smaller batch size (train.batch_size), a smaller model, "
                "or feature extraction; or tick 'retry with half the batch' (train.retry_smaller_batch).")
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def execute(run: RunFolder, workspace: Workspace, events, cancel: threading.Event, dist: Distributed,
            callbacks: list = (), resume: bool = False, device_index: int | None = None) -> dict:
    """Trains the run's recipe.yaml in this process (one rank of it under several devices); returns the figures
    written to status.json. Raises on failure, Cancelled when stopped. device_index: the GPU the device queue
    gave this run."""
    start = time.time()
    recipe = tasks.load(run.file(RECIPE))
    torch.manual_seed(recipe.train.seed)
    events.set_status("running", started=start, world_size=dist.world_size)
    device = dist.device(pick_device(recipe.train.device))
    if device_index is not None and device.type == "cuda":
        device = torch.device("cuda", device_index)
    if recipe.train.num_workers is None:
        recipe.train.num_workers = 0 if device.type == "cpu" else min(8, max(1, (os.cpu_count() or 2) - 1))
    amp = autocast_dtype(device, recipe.train.precision)
    precision = said("mixed precision ({dtype})", dtype=str(amp).removeprefix("torch.")) if amp else \
        said("full precision")
    where = said("{n} processes on {device}", n=dist.world_size, device=device.type) if dist.active else device.type
    events.emit("log", message=said("Training on {where}, {precision}.", where=where, precision=precision))
    ctx = RunContext(recipe, run, workspace, events, cancel, device, amp, dist, list(callbacks), resume)
    with reporting(ctx):  # train.report_to: the trackers' runs end before the run's status says it has
        figures = tasks.get(recipe.task).train(ctx)
    events.set_status("completed", finished=time.time(), wall_time_s=round(time.time() - start, 2), **figures)
    return figures


def with_retries(run: RunFolder, events, attempt: Callable[[bool], None], resume: bool = False) -> str:
    """Runs attempt(resume) until it succeeds, is cancelled, or fails for good; writes the outcome to status.json
    and returns it. Out of memory with train.retry_smaller_batch on: again with half the batch, down to 1."""
    while True:
        try:
            attempt(resume)
            return "completed"
        except Cancelled:
            state, message = ending(run)
            events.set_status(state, finished=time.time(), message=message)
            return state
        except Exception as exc:  # any failure ends this run only, in words; the traceback goes to error.log
            recipe = _recipe_or_none(run)
            size = recipe.train.batch_size if recipe else None
            if out_of_memory(exc) and recipe and recipe.train.retry_smaller_batch and size and size > 1:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                recipe.train.batch_size = size // 2
                recipe.save(run.file(RECIPE))  # the recipe on disk says what actually ran
                run.last_state.unlink(missing_ok=True)  # its epochs had the old batch size
                resume = False
                events.emit("log", message=said("Out of memory with batch size {size}: retrying with {half}.",
                                                size=size, half=size // 2))
                continue
            with open(run.file(ERROR_LOG), "a", encoding="utf-8") as log_file:  # a rank may have written first
                log_file.write(traceback.format_exc())
            log.info("run %s failed: %s", run.id, exc)  # the reason is in status.json; callers show it
            events.set_status("failed", finished=time.time(), error=explain(exc),
                              out_of_memory=out_of_memory(exc))
            return "failed"
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # the next attempt or run gets the whole device


def _recipe_or_none(run: RunFolder):
    try:
        return tasks.load(run.file(RECIPE))
    except Exception:  # any reason: this runs while a failure is being reported, which must never fail itself
        return None

"""What a task's training pipeline is handed by the worker: the recipe, the run folder, where to write events,
the cancel flag, the device and the process group."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import torch

from studio.engine.distributed import Distributed
from studio.recipe import Recipe
from studio.runfolder import RunFolder
from studio.workspace import Workspace


@dataclass
class RunContext:
    recipe: Recipe  # resolved: every default filled in
    run: RunFolder
    workspace: Workspace
    events: object  # EventWriter on rank 0, NullWriter elsewhere
    cancel: threading.Event
    device: torch.device
    amp_dtype: torch.dtype | None
    dist: Distributed = field(default_factory=Distributed)
    callbacks: list = field(default_factory=list)  # extra loop callbacks (tests, the benchmark)
    resume: bool = False  # continue from checkpoints/last.pt when there is one

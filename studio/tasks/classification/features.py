"""Feature extraction: the frozen backbone runs once per example (eval mode, no augmentation) and its features are
cached on disk, keyed by the model, its preprocessing and the data's content, so epochs and later runs cost
nothing."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from studio.engine.device import autocast
from studio.engine.loop import Cancelled, to_device
from studio.runfolder import atomic
from studio.words import said


def spec_of(info) -> dict:
    """What the cached features depend on besides the data: the model and how its inputs are prepared."""
    return {"model": info.model, "family": info.family, "arch": info.arch, "prep": info.preprocessing}


def cache_key(spec: dict, fingerprint: str) -> str:
    return hashlib.sha256((json.dumps(spec, sort_keys=True) + fingerprint).encode()).hexdigest()[:24]


@torch.no_grad()
def _extract(backbone: nn.Module, loader, device, amp_dtype, events, cancel: threading.Event,
             done: int, total: int) -> tuple[torch.Tensor, int]:
    backbone.eval()
    chunks, seen = [], 0
    start = time.perf_counter()
    for inputs, _ in loader:
        if cancel.is_set():
            raise Cancelled()
        with autocast(device, amp_dtype):
            chunks.append(backbone(to_device(inputs, device)).float().cpu())
        seen += len(chunks[-1])
        done += len(chunks[-1])
        rate = seen / (time.perf_counter() - start)
        events.emit("progress", phase="features", done=done, total=total, samples_per_s=rate,
                    eta=(total - done) / rate)
    return torch.cat(chunks), done


def compute_features(backbone: nn.Module, splits: dict[str, tuple[list, list]], make_loader: Callable,
                     key: str, *, device, amp_dtype, cache_dir: Path, events, cancel: threading.Event
                     ) -> dict[str, torch.Tensor]:
    """Features for each split ({"train": (items, labels), "val": …}), from the cache when this model has seen
    this data before. make_loader(items, labels) gives the batches the backbone reads."""
    path = cache_dir / f"{key}.safetensors"
    if path.exists():
        events.emit("log", message=said("Features loaded from the cache: the pretrained model does not need to "
                                        "run again."))
        return load_file(str(path))
    total = sum(len(items) for items, _ in splits.values())
    events.emit("log", message=said("Reading each of the {n} examples once with the frozen pretrained model.",
                                    n=total))
    out, done = {}, 0
    for name, (items, labels) in splits.items():
        out[name], done = _extract(backbone, make_loader(items, labels), device, amp_dtype, events, cancel, done,
                                   total)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic(path) as tmp:
        save_file({k: v.contiguous() for k, v in out.items()}, str(tmp))
    return out

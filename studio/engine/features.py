"""Feature extraction: the frozen backbone runs once per example (eval mode, no augmentation) and its features are
cached on disk, keyed by model, preprocessing and the data's content, so epochs and later runs cost nothing."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from studio.engine.data import Dataset
from studio.engine.events import EventLog
from studio.engine.inputs import make_loader
from studio.engine.device import autocast
from studio.engine.loop import Cancelled, to_device
from studio.engine.models import Backbone, ModelInfo


def cache_key(info: ModelInfo, data: Dataset) -> str:
    spec = json.dumps({"model": info.model, "family": info.family, "arch": info.arch,
                       "prep": asdict(info.preprocessing)}, sort_keys=True)
    return hashlib.sha256((spec + data.fingerprint()).encode()).hexdigest()[:24]


@torch.no_grad()
def _extract(backbone: Backbone, loader, device, amp_dtype, events: EventLog, cancel: threading.Event,
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


def compute_features(backbone: Backbone, info: ModelInfo, data: Dataset, *, tokenizer, batch_size: int,
                     device, amp_dtype, cache_dir: Path, events: EventLog, cancel: threading.Event,
                     num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train features, validation features), from the cache when this model has seen this data before."""
    path = cache_dir / f"{cache_key(info, data)}.safetensors"
    if path.exists():
        cached = load_file(str(path))
        events.emit("log", message="Features loaded from the cache: the backbone does not need to run again.")
        return cached["train"], cached["val"]
    total = len(data.train_items) + len(data.val_items)
    events.emit("log", message=f"Computing features once for {total} examples (the backbone stays frozen).")
    out, done = [], 0
    for items, labels in ((data.train_items, data.train_labels), (data.val_items, data.val_labels)):
        loader = make_loader(items, labels, info.preprocessing, tokenizer=tokenizer, batch_size=batch_size,
                             shuffle=False, num_workers=num_workers, pin_memory=device.type == "cuda")
        features, done = _extract(backbone, loader, device, amp_dtype, events, cancel, done, total)
        out.append(features)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({"train": out[0].contiguous(), "val": out[1].contiguous()}, str(tmp))
    tmp.replace(path)
    return out[0], out[1]

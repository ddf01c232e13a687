"""Runs one recipe start to finish in the calling thread: data, model, strategy, loop, evaluation, saved model.
Everything the run produces lands in its run folder."""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader, TensorDataset

from studio.engine import evaluation, model_card, strategies
from studio.engine.data import load_dataset
from studio.engine.device import autocast_dtype, pick_device
from studio.engine.events import EventLog, write_json
from studio.engine.features import compute_features
from studio.engine.inputs import make_loader
from studio.engine.loop import Callback, Loop, LoopConfig, load_state
from studio.engine.model_card import MODEL_DIR
from studio.engine.models import StudioClassifier, build_backbone, load_tokenizer, resolve, save_model
from studio.recipe import Recipe
from studio.workspace import Workspace

LAST_STATE = Path("checkpoints") / "last.pt"  # the loop's state after its latest epoch, for resuming


def resumable(run_dir: Path) -> bool:
    return (run_dir / LAST_STATE).exists()


class BestCheckpoint(Callback):
    """Writes the best weights so far to checkpoints/best.safetensors, so a crash loses nothing already learned."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "checkpoints" / "best.safetensors"

    def on_epoch_end(self, loop: Loop) -> None:
        if loop.best["epoch"] == loop.epoch:
            self.path.parent.mkdir(exist_ok=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in loop.best["state"].items()}, str(self.path))


def _feature_loaders(model, data, recipe, info, tokenizer, device, amp, workspace, log, cancel):
    train_x, val_x = compute_features(model.backbone, info, data, tokenizer=tokenizer,
                                      batch_size=recipe.train.batch_size, device=device, amp_dtype=amp,
                                      cache_dir=workspace.cache_dir, events=log, cancel=cancel,
                                      num_workers=recipe.train.num_workers)
    generator = torch.Generator().manual_seed(recipe.train.seed)
    train = DataLoader(TensorDataset(train_x, torch.tensor(data.train_labels)), batch_size=recipe.train.batch_size,
                       shuffle=True, generator=generator)
    val = DataLoader(TensorDataset(val_x, torch.tensor(data.val_labels)), batch_size=4 * recipe.train.batch_size)
    return train, val


def _with_thumbnails(wrong: list[dict], data, run_dir: Path, limit: int = 60) -> list[dict]:
    """Copies the first `limit` misclassified images into misclassified/, for the Evaluate tab's gallery; their
    run-relative path goes in "thumbnail"."""
    if data.kind != "image":
        return wrong
    for n, item in enumerate(wrong[:limit]):
        item["thumbnail"] = _copy_into_run(item["input"], run_dir, "misclassified", n)
    return wrong


PROC_STATUS = Path("/proc/self/status")


def _reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:  # Linux: "5" resets the process's resident-memory high-water mark (VmHWM), so it measures this run
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass


def _peak_memory_mb(device: torch.device) -> float | None:
    """Peak accelerator memory of the run; on the CPU the process's peak resident memory since the run began
    (Linux), which includes the studio itself. None where neither can be read."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # reported in KiB
    except OSError:
        pass
    return None


def _example_loaders(data, recipe, info, tokenizer, device):
    common = dict(tokenizer=tokenizer, num_workers=recipe.train.num_workers, pin_memory=device.type == "cuda")
    train = make_loader(data.train_items, data.train_labels, info.preprocessing, batch_size=recipe.train.batch_size,
                        shuffle=True, augment=info.preprocessing.kind == "image", seed=recipe.train.seed, **common)
    val = make_loader(data.val_items, data.val_labels, info.preprocessing, batch_size=recipe.train.batch_size,
                      shuffle=False, **common)
    return train, val


def _copy_into_run(source: str, run_dir: Path, folder: str, number: int) -> str:
    """Copies an image into the run folder (folder/NNN.ext), so the run stays complete if the original data moves;
    returns its path relative to the run folder."""
    target = run_dir / folder / f"{number:03d}{Path(source).suffix.lower()}"
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(source, target)
    return str(target.relative_to(run_dir))


def _examples(data, run_dir: Path, per_class: int = 2) -> list[dict]:
    """A few validation examples per class, for the playground to offer; images copied into examples/."""
    picked = []
    for index, name in enumerate(data.classes):
        items = [item for item, label in zip(data.val_items, data.val_labels) if label == index][:per_class]
        for item in items:
            if data.kind == "image":
                item = _copy_into_run(item, run_dir, "examples", len(picked))
            picked.append({"input": item, "label": name})
    return picked


def execute(recipe: Recipe, run_dir: Path, workspace: Workspace, log: EventLog, cancel: threading.Event,
            callbacks: list[Callback] = (), resume: bool = False) -> dict:
    """Trains the (already resolved) recipe; returns eval.json's content. Raises on failure or Cancelled.
    resume: continue from checkpoints/last.pt (the last finished epoch) when there is one."""
    start = time.time()
    torch.manual_seed(recipe.train.seed)
    log.set_status("running", started=start, pid=os.getpid())
    device = pick_device(recipe.train.device)
    if recipe.train.num_workers is None:
        recipe.train.num_workers = 0 if device.type == "cpu" else min(8, max(1, (os.cpu_count() or 2) - 1))
    amp = autocast_dtype(device, recipe.train.precision)
    log.emit("log", message=f"Device: {device.type}" + (f", mixed precision {amp}" if amp else ", full precision"))

    data = load_dataset(recipe.data, recipe.task, recipe.train.seed, workspace.uploads_dir)
    write_json(run_dir / "data_report.json", data.report.to_dict())
    write_json(run_dir / "labels.json", {"labels": data.classes})
    write_json(run_dir / "examples.json", {"examples": _examples(data, run_dir)})
    log.emit("data", classes=data.classes, train=len(data.train_items), validation=len(data.val_items),
             skipped=len(data.report.skipped), warnings=data.report.warnings)

    log.emit("log", message=f"Loading model {recipe.model}")
    backbone, info = build_backbone(recipe.model, recipe.task, pretrained=recipe.strategy != "scratch",
                                    max_length=recipe.data.max_length, trust_remote_code=recipe.trust_remote_code)
    info.labels = data.classes
    tokenizer = (load_tokenizer(resolve(recipe.model, recipe.task)[1], info.trust_remote_code)
                 if info.preprocessing.kind == "text" else None)
    model = StudioClassifier(backbone, len(data.classes))
    groups = strategies.prepare(model, recipe)
    params = strategies.count_parameters(model)
    log.emit("model", family=info.family, **params)
    model.to(device)

    if recipe.strategy == "feature-extraction":
        train_loader, val_loader = _feature_loaders(model, data, recipe, info, tokenizer, device, amp, workspace,
                                                    log, cancel)
        trained = model.head  # epochs run on cached features: the backbone never runs again
    else:
        train_loader, val_loader = _example_loaders(data, recipe, info, tokenizer, device)
        trained = model
    (run_dir / LAST_STATE).parent.mkdir(exist_ok=True)
    config = LoopConfig(epochs=recipe.train.epochs, device=device, amp_dtype=amp,
                        weight_decay=recipe.train.weight_decay, warmup_ratio=recipe.train.warmup_ratio,
                        patience=recipe.train.early_stopping_patience, checkpoint=run_dir / LAST_STATE)
    loop = Loop(trained, groups, train_loader, val_loader, config, log, cancel,
                [BestCheckpoint(run_dir), *callbacks])
    _reset_peak_memory(device)
    result = loop.run(load_state(run_dir / LAST_STATE) if resume and resumable(run_dir) else None)

    logits, labels = result["val_logits"], result["val_labels"]  # the best epoch's
    report = evaluation.report(logits, labels, data.classes)
    report.update(best_epoch=result["best_epoch"], steps=result["steps"], history=result["history"],
                  stopped_early=result["stopped_early"], samples_per_s=result["samples_per_s"],
                  trainable_parameters=params["trainable"], total_parameters=params["total"], device=device.type,
                  peak_memory_mb=_peak_memory_mb(device),
                  misclassified=_with_thumbnails(
                      evaluation.misclassified(logits, labels, data.val_items, data.classes), data, run_dir),
                  warnings=[w for w in [evaluation.overfitting_warning(result["history"], result["best_epoch"])]
                            if w])
    if data.val_groups:
        report["groups"] = evaluation.by_group(logits, labels, data.val_groups)
    write_json(run_dir / "eval.json", report)

    model_dir = run_dir / MODEL_DIR
    if recipe.strategy == "lora":
        model.backbone.net.save_pretrained(str(model_dir / "adapter"))  # the adapter alone, in peft's format
    strategies.finalize(model)
    save_model(model.cpu(), info, model_dir, tokenizer)
    model_card.write(run_dir)
    (run_dir / LAST_STATE).unlink(missing_ok=True)  # finished: nothing left to resume
    log.set_status("completed", finished=time.time(), wall_time_s=round(time.time() - start, 2),
                   accuracy=report["accuracy"], macro_f1=report["macro_f1"], val_loss=report["loss"],
                   best_epoch=result["best_epoch"], trainable_parameters=params["trainable"])
    return report

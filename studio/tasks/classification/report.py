"""eval.json of a classifier: the metrics of the delivered model on validation, and what a person needs to read
them: how reliable the accuracy is from the validation set's size, how well calibrated the scores are, what the
linear probe and class weighting did, whether fine-tuning beat the probe, the learning-rate range test."""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

from studio.tasks.classification import duplicates
from studio.tasks.classification import metrics as evaluation
from studio.engine.device import peak_memory_mb
from studio.tasks.classification.data import LabelledData
from studio.runfolder import MISCLASSIFIED_DIR, RunFolder
from studio.words import said

MISCLASSIFIED_COPIES = 60  # misclassified files copied into the run folder for the Evaluate tab


def build(task, logits: torch.Tensor, calibrated: torch.Tensor, data: LabelledData, result: dict, params: dict,
          ctx, run: RunFolder, extras: dict) -> dict:
    """logits: the trained model's validation logits (loss and history agree on them); calibrated: the same after
    the temperature, as the delivered model gives them (the confidence of each mistake). extras: calibration,
    linear_probe, class_weighted, macro_f1_unweighted(_reason), lr_finder."""
    labels = torch.tensor(data.val_labels)
    report = evaluation.report(logits, labels, data.classes)
    wrong = evaluation.misclassified(calibrated, labels, data.val_items, data.classes)
    if task.inputs_are_files and ctx.dist.is_main:
        for n, item in enumerate(wrong[:MISCLASSIFIED_COPIES]):
            item["copy"] = copy_into_run(item["input"], run, MISCLASSIFIED_DIR, n)
    correct = int((logits.argmax(1) == labels).sum())
    interval = evaluation.wilson_interval(correct, len(labels))
    warnings = [evaluation.overfitting_warning(result["history"], result["best_epoch"]),
                evaluation.interval_warning(interval, report["accuracy"]), _probe_warning(extras),
                duplicates.warning(data.report.duplicates or {})]
    report.update(best_epoch=result["best_epoch"], steps=result["steps"], history=result["history"],
                  stopped_early=result["stopped_early"], samples_per_s=result["samples_per_s"],
                  trainable_parameters=params["trainable"], total_parameters=params["total"],
                  device=ctx.device.type, world_size=ctx.dist.world_size,
                  peak_memory_mb=peak_memory_mb(ctx.device), misclassified=wrong, accuracy_interval=interval,
                  duplicates=data.report.duplicates,
                  **extras, warnings=[w for w in warnings if w])
    if data.val_groups:
        report["groups"] = evaluation.by_group(logits, labels, data.val_groups)
    return report


def _probe_warning(extras: dict) -> str | None:
    if (extras.get("linear_probe") or {}).get("fine_tuning_improved") is not False:
        return None
    return said("Fine-tuning did not beat the linear probe it started from (epoch 0: the pretrained model with a "
                "solved final layer), so the saved model is that probe, as feature extraction would give. With "
                "this data, fine-tuning the backbone bought nothing; feature extraction is faster for the same "
                "result.")


def copied(item: dict) -> str | None:
    """The copy inside the run folder of a misclassified example's file (its path relative to the run folder), or
    None. Run folders written before 2026-12 call it "thumbnail"."""
    return item.get("copy") or item.get("thumbnail")


def copy_into_run(source: str, run: RunFolder, folder: str, number: int) -> str:
    """Copies a file into the run folder (folder/NNN.ext), so the run stays complete if the original data moves;
    returns its path relative to the run folder."""
    target = run.path / folder / f"{number:03d}{Path(source).suffix.lower()}"
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(source, target)
    return str(target.relative_to(run.path))

"""What the defaults buy, measured through the studio's real path (a Recipe given to a JobManager) with default
settings, on data sets no default was tuned on (bench/data_sets.py):

- fe_vs_expert: feature extraction's validation accuracy ÷ an expert's tuned logistic regression on the very same
  frozen features (bench/expert.py), per data set;
- ft_vs_fe: each strategy that trains the backbone (full, partial, layerwise, lora) ÷ feature extraction, on the
  same data sets: the lowest ratio over them (every data set must reach the goal);
- transfer_vs_scratch: feature extraction and full fine-tuning against the same architecture from random weights
  under its own recipe (30 epochs, warm-up, augmentation, early stopping only after half of them), at 10 and 50
  digits per class, accuracy and time on both sides, at convergence, at equal time and at equal epochs.

Runs are shared between sections (the digits at 10 per class are both a strategies data set and the transfer's).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from bench import data_sets, studio_side

STRATEGIES = ["full", "partial", "layerwise", "lora"]


@dataclass(frozen=True)
class DataSet:
    name: str
    task: str  # image | text
    path: str
    validation_path: str | None = None  # None: the studio's stratified split (validation_split)
    words: str = ""


def digits(ctx, per_class: int) -> DataSet:
    cfg = ctx.cfg
    val = ctx.cached(("digits-val",), lambda: data_sets.digits(
        ctx.work / "digits-val", cfg.digits_val_per_class, 500 - cfg.digits_val_per_class, cfg.digits_classes))
    train = ctx.cached(("digits", per_class), lambda: data_sets.digits(
        ctx.work / f"digits-{per_class}", per_class, 100, cfg.digits_classes))  # never the validation digits
    return DataSet(f"digits-{per_class}", "image", str(train), str(val),
                   f"{cfg.digits_classes} digit classes, {per_class} per class, {cfg.digits_val_per_class} per "
                   "class held out")


def data_set(ctx, name: str) -> DataSet:
    cfg = ctx.cfg
    if name == "digits":
        return digits(ctx, cfg.transfer_per_class[0])
    if name == "patches":
        path = ctx.cached(("patches",), lambda: data_sets.patches(ctx.work / "patches", cfg.patches_per_class))
        return DataSet(name, "image", str(path), words=f"12 places in two photos, {cfg.patches_per_class} crops "
                                                        "each, 25% held out")
    if name == "reviews":
        path = ctx.cached(("reviews",), lambda: data_sets.reviews(ctx.work / "reviews.csv", cfg.reviews_rows))
        return DataSet(name, "text", str(path), words=f"{cfg.reviews_rows} reviews, 3 sentiments, 25% held out")
    path = ctx.cached(("tickets",), lambda: data_sets.tickets(ctx.work / "tickets.csv"))
    return DataSet(name, "text", str(path), words="176 support tickets, 5 classes imbalanced 12:1, 25% held out")


def studio_run(ctx, data: DataSet, strategy: str) -> dict:
    """A studio run with default settings (in smoke mode, fewer epochs); one per data set and strategy, shared
    by the sections. Every run on a data set shares its workspace, so its features are computed once."""
    def start():
        model = ctx.cfg.image_model if data.task == "image" else ctx.cfg.text_model
        rec = studio_side.recipe(data.task, model, data.path, strategy, data.validation_path,
                                 epochs=ctx.cfg.quality_epochs)
        if data.validation_path is None:
            rec.data.validation_split = 0.25
        manager = ctx.cached(("manager", data.name), lambda: ctx.fresh_manager(f"quality-{data.name}",
                                                                               in_process=True))
        result = studio_side.must_complete(studio_side.run(manager, rec, timeout=4 * 3600))
        report = json.loads((result["run_dir"] / "eval.json").read_text())
        return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "wall_s": result["wall_s"],
                "report": report, "run_dir": result["run_dir"], "recipe": rec, "workspace": manager.workspace}
    return ctx.cached(("run", data.name, strategy), start)


def _summary(run: dict) -> dict:
    report = run["report"]
    probe = report.get("linear_probe") or {}
    return {"accuracy": run["accuracy"], "macro_f1": run["macro_f1"], "wall_s": round(run["wall_s"], 1),
            "best_epoch": report["best_epoch"], "epochs_run": len([h for h in report["history"]
                                                                     if not h.get("linear_probe")]),
            "stopped_early": report["stopped_early"], "improved_on_probe": probe.get("fine_tuning_improved"),
            "C": probe.get("C"), "calibration": {k: report["calibration"].get(k)
                                                 for k in ("temperature", "ece_before", "ece_after")}}


def section_expert(ctx, results: dict) -> None:
    from bench.expert import logistic_regression
    from safetensors.torch import load_file
    from studio import tasks
    ratios, details = {}, {}
    for name in ctx.cfg.quality_sets:
        data = data_set(ctx, name)
        fe = studio_run(ctx, data, "feature-extraction")
        # the one data set this workspace has seen: the features the studio's head was solved on
        features = load_file(str(next(fe["workspace"].cache_dir.glob("*.safetensors"))))
        rec = tasks.resolved(fe["recipe"])
        split = tasks.get(rec.task).load_data(rec.data, rec.train.seed, fe["workspace"].uploads_dir)
        expert = logistic_regression(features["train"].numpy(), np.array(split.train_labels),
                                     features["val"].numpy(), np.array(split.val_labels))
        ratios[name] = fe["accuracy"] / expert["accuracy"]
        details[name] = {"data": data.words, "studio": _summary(fe), "expert": expert,
                         "studio_macro_f1_unweighted": fe["report"].get("macro_f1_unweighted")}
    results["fe_vs_expert"] = ratios
    results["details"]["fe_vs_expert"] = dict(details, counted=(
        "validation accuracy of a studio feature-extraction run (defaults: the solved head) ÷ scikit-learn's logistic "
        "regression (lbfgs, standardised, C over 1e-4…1e4 by stratified 5-fold CV, class_weight balanced above "
        "3:1) on the same frozen features and split"))


def section_strategies(ctx, results: dict) -> None:
    per_set = {}
    for name in ctx.cfg.strategy_sets:
        data = data_set(ctx, name)
        fe = studio_run(ctx, data, "feature-extraction")
        rows = {"data": data.words, "feature-extraction": _summary(fe)}
        for strategy in STRATEGIES:
            run = studio_run(ctx, data, strategy)
            rows[strategy] = dict(_summary(run), vs_fe=run["accuracy"] / fe["accuracy"])
        per_set[name] = rows
    results["ft_vs_fe"] = {s: min(rows[s]["vs_fe"] for rows in per_set.values()) for s in STRATEGIES}
    results["details"]["ft_vs_fe"] = dict(per_set, counted=(
        "validation accuracy with default settings ÷ feature extraction's on the same data; the key holds the "
        "lowest ratio over the data sets. improved_on_probe: whether fine-tuning beat the linear probe it "
        "started from (false: the delivered model is that probe, as feature extraction's)"))


def section_transfer(ctx, results: dict) -> None:
    out = {}
    for k in ctx.cfg.transfer_per_class:
        data = digits(ctx, k)
        fe, full, scratch = (studio_run(ctx, data, s) for s in ("feature-extraction", "full", "scratch"))
        report = scratch["report"]
        history = report["history"]
        within = [h for h in history if h["elapsed"] <= fe["wall_s"]]
        full_epochs = _summary(full)["epochs_run"]
        at_epochs = next((h for h in history if h["epoch"] == full_epochs), None)
        train_n = sum(json.loads((scratch["run_dir"] / "data_report.json").read_text())["train_counts"].values())
        patience = scratch["recipe"].train.early_stopping_patience
        out[str(k)] = {
            "feature_extraction": fe["accuracy"], "full": full["accuracy"], "scratch": scratch["accuracy"],
            "budget_s": fe["wall_s"],  # what the scratch run had at equal time
            "scratch_at_equal_time": within[-1]["accuracy"] if within else None,
            "scratch_at_equal_epochs": at_epochs["accuracy"] if at_epochs else None,
            "time_s": {"feature_extraction": round(fe["wall_s"], 1), "full": round(full["wall_s"], 1),
                       "scratch": round(scratch["wall_s"], 1)},
            "examples_seen": {"feature_extraction": train_n, "full": train_n * (full_epochs + 1),
                              "scratch": train_n * len(history)},
            "scratch_run": dict(_summary(scratch), stop_reason=(
                f"validation loss had not improved for {patience} epochs (never before half of the epochs); "
                f"kept epoch {report['best_epoch']}, the most accurate" if report["stopped_early"] else
                f"ran all {len(history)} epochs of its recipe")),
            "full_run": _summary(full)}
    results["transfer_vs_scratch"] = {
        "per_class": out, "classes": ctx.cfg.digits_classes,
        "validation_examples": ctx.cfg.digits_classes * ctx.cfg.digits_val_per_class,
        "chance": 1 / ctx.cfg.digits_classes,
        "counted": "validation accuracy on held-out digits; scratch: the same architecture from random weights "
                   "under its own recipe (to convergence or 30 epochs), also read at the epoch when feature "
                   "extraction had finished (equal time) and at full fine-tuning's epoch count (equal epochs); "
                   "examples seen: feature extraction reads each once, full adds its epochs to the probe's pass"}

"""The studio's numbers, measured side by side with the plain way of doing the same work, in one run.

    python bench/run.py --quick      # a few minutes on 2 CPU cores: ratios
    python bench/run.py              # the full run, for a GPU machine: ratios and absolute figures
    python bench/run.py --smoke      # tiny models and data, seconds: checks that every key is written

Prints a markdown table and writes bench/results.json (or --out). See bench/README.md for what each key counts.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `studio` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from bench import plain, quality, studio_side, workloads  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results.json"

# key: (comparison, goal); keys without a goal are reported for information.
GOALS = {
    "fe_vs_inference_ratio": ("<=", 1.15),
    "audio_fe_vs_inference_ratio": ("<=", 1.15),
    "audio_example_fe_accuracy": None,
    "ft_vs_plain_loop_ratio": (">=", 0.95),
    "lora_vs_plain_loop_ratio": (">=", 0.95),
    "ui_p95_ms_during_training": ("<=", 250.0),
    "ui_p95_ms_idle": None,
    "first_curve_point_s": ("<=", 1.5),
    "worker_start_overhead_s": ("<=", 3.0),
    "demo_to_model_s": ("<=", 20.0),
    "fe_vs_expert": (">=", 0.98),
    "ft_vs_fe": (">=", 1.0),
    "transfer_vs_scratch": None,
    "ft_mfu": (">=", 0.40),
    "peak_memory_mb": None,
    "sft_lora_vs_plain_peft_ratio": (">=", 0.95),
    "sft_packing_speedup": (">=", 1.5),
    "demo_chat_s": ("<=", 300.0),
    "sft_mfu": (">=", 0.35),
    "sft_peak_memory_mb": None,
}
NUMBER_KEYS = ["fe_vs_inference_ratio", "ft_vs_plain_loop_ratio", "lora_vs_plain_loop_ratio",
               "ui_p95_ms_during_training", "ui_p95_ms_idle", "first_curve_point_s", "demo_to_model_s",
               "worker_start_overhead_s", "audio_fe_vs_inference_ratio", "audio_example_fe_accuracy",
               "sft_lora_vs_plain_peft_ratio", "sft_packing_speedup", "demo_chat_s"]
GPU_KEYS = ["ft_mfu", "peak_memory_mb", "sft_mfu", "sft_peak_memory_mb"]
SECTIONS = ["fe", "worker", "ft", "lora", "expert", "strategies", "transfer", "ui", "audio", "sft", "gpu"]
QUALITY_KEYS = {"fe_vs_expert": None, "ft_vs_fe": ["full", "partial", "layerwise", "lora"]}  # dicts of ratios


@dataclass
class Config:
    mode: str
    image_model: str = "efficientnet-lite0"
    text_model: str = ""  # MiniLM's folder (all-minilm-l6-v2), filled in at start
    audio_model: str = "whisper-tiny-en"
    audio_data: str = ""  # the bundled spoken commands, filled in at start
    fe_per_class: int = 100  # ~1000 mnist_5k digits
    fe_batch: int = 32  # the studio's default for feature extraction
    fe_epochs: int | None = None  # None: the studio's default (30)
    naive_measure_images: int | None = 128  # naive way: one epoch on this many images, extrapolated; None: all
    ft_batch: int = 16  # the studio's default for full and lora
    ft_warmup: int = 2
    ft_measure: int = 6
    lora_rows: int = 600
    lora_words: int = 48
    lora_warmup: int = 3
    lora_measure: int = 20
    ui_calls: int = 100
    transfer_per_class: tuple = (10, 50)  # the first is also the strategies' digits set
    digits_classes: int = 10
    digits_val_per_class: int = 10
    patches_per_class: int = 20
    reviews_rows: int = 600
    quality_sets: tuple = ("digits", "patches", "reviews", "tickets")  # fe_vs_expert's
    strategy_sets: tuple = ("digits", "patches", "reviews", "tickets")  # ft_vs_fe's
    quality_epochs: int | None = None  # None: each strategy's defaults
    mfu_images_per_class: int = 400
    mfu_text_rows: int = 2000
    mfu_warmup: int = 10
    mfu_steps: int = 30
    gpu_models: dict = field(default_factory=lambda: {
        "vit_b16": {"task": "image", "batch_size": 64,
                    "config": dict(image_size=224, patch=16, hidden=768, layers=12, heads=12, intermediate=3072)},
        "bert_base": {"task": "text", "batch_size": 32, "words": 126,
                      "config": dict(hidden=768, layers=12, heads=12, intermediate=3072)},
    })


def make_config(mode: str, work: Path) -> Config:
    if mode == "full":
        cfg = Config("full", naive_measure_images=None, ft_warmup=5, ft_measure=40, lora_rows=2400,
                     lora_warmup=10, lora_measure=100, digits_val_per_class=50)
    elif mode == "quick":  # one image set of at most 200 images and one text set; transfer at 10 per class
        cfg = Config("quick", transfer_per_class=(10,), digits_classes=5, reviews_rows=300,
                     quality_sets=("digits", "reviews"), strategy_sets=("digits", "reviews"))
    else:  # smoke: tiny models built from configs, a handful of images
        cfg = Config("smoke", fe_per_class=4, fe_batch=8, fe_epochs=2, naive_measure_images=8, ft_batch=4,
                     ft_warmup=1, ft_measure=3, lora_rows=60, lora_words=8, lora_warmup=1, lora_measure=3,
                     ui_calls=10, transfer_per_class=(2, 4), digits_classes=3, digits_val_per_class=2,
                     reviews_rows=30, quality_sets=("digits", "reviews"), strategy_sets=("digits", "reviews"),
                     quality_epochs=2, mfu_images_per_class=4,
                     mfu_text_rows=40, mfu_warmup=1, mfu_steps=3,
                     gpu_models={"vit_b16": {"task": "image", "batch_size": 4, "config": dict(
                         image_size=32, patch=8, hidden=32, layers=2, heads=2, intermediate=64)},
                         "bert_base": {"task": "text", "batch_size": 4, "words": 8, "config": dict(
                             hidden=32, layers=2, heads=2, intermediate=64)}})
        cfg.image_model = workloads.vit_folder(work / "tiny-vit", 32, 8, 32, 2, 2, 64)
        cfg.text_model = workloads.bert_folder(work / "tiny-bert", 32, 2, 2, 64)
        cfg.audio_model = workloads.whisper_folder(work / "tiny-whisper")
        cfg.audio_data = str(workloads.tone_folder(work / "tones", per_class=4))
    if not cfg.audio_data:
        from studio.examples import COMMANDS_DIR
        cfg.audio_data = str(COMMANDS_DIR)
    if not cfg.text_model:
        cfg.text_model = workloads.minilm_path()
    return cfg


class Context:
    def __init__(self, cfg: Config, work: Path):
        from studio.engine.device import autocast_dtype
        self.cfg, self.work = cfg, work
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.amp = autocast_dtype(self.device, "auto")  # what the studio picks: bf16 on a GPU, fp32 on a CPU
        # the studio's rule for data-loading processes (runner.execute), so both sides load data alike
        self.workers = 0 if self.device.type == "cpu" else min(8, max(1, (os.cpu_count() or 2) - 1))
        self.manager = studio_side.new_manager(work / "workspace")
        self.inproc = studio_side.new_manager(work / "workspace-inproc", in_process=True)  # lockstep ratios
        self._folders: dict = {}
        self._cache: dict = {}

    def cached(self, key: tuple, make):
        """make() once per key: data sets, managers and runs the quality sections share."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def mnist(self, name: str, per_class: int, start: int) -> Path:
        key = (name, per_class, start)
        if key not in self._folders:
            self._folders[key] = workloads.mnist_folder(self.work / f"{name}-{per_class}-{start}", per_class, start)
        return self._folders[key]

    def fresh_manager(self, name: str, in_process: bool = False):
        """A JobManager on a new workspace: an empty feature cache."""
        return studio_side.new_manager(self.work / name, in_process=in_process)


def _ratio(a: float, b: float) -> float:
    return a / b


# -- sections ------------------------------------------------------------------------------------------------------

def section_fe(ctx: Context, results: dict) -> None:
    """Feature extraction through the studio (cold cache, then warm) vs one plain inference pass, A-B-A-B."""
    cfg = ctx.cfg
    folder = ctx.mnist("fe", cfg.fe_per_class, 0)
    paths, labels, classes = workloads.image_files(folder)
    args = (cfg.image_model, paths, cfg.fe_batch, ctx.workers, ctx.device, ctx.amp)
    plain_runs, manager = [], ctx.fresh_manager("workspace-fe")
    plain_runs.append(plain.inference_pass(*args))
    cold = studio_side.feature_extraction(manager, cfg.image_model, str(folder), cfg.fe_batch, cfg.fe_epochs)
    plain_runs.append(plain.inference_pass(*args))
    warm = studio_side.feature_extraction(manager, cfg.image_model, str(folder), cfg.fe_batch, cfg.fe_epochs)
    if cold["cached"] or not warm["cached"]:
        raise RuntimeError("the feature cache did not behave: the first run must compute, the second must reuse")
    plain_s = statistics.mean(r["seconds"] for r in plain_runs)
    # the naive way, on the studio's split sizes: every fifth image held back for validation
    train = [(p, y) for i, (p, y) in enumerate(zip(paths, labels)) if i % 5]
    val = [(p, y) for i, (p, y) in enumerate(zip(paths, labels)) if not i % 5]
    epochs = cfg.fe_epochs or 30
    naive = plain.naive_feature_training(cfg.image_model, tuple(map(list, zip(*train))),
                                         tuple(map(list, zip(*val))), len(classes), cfg.fe_batch, epochs,
                                         3e-3, ctx.workers, ctx.device, ctx.amp, cfg.naive_measure_images)
    results["fe_vs_inference_ratio"] = _ratio(cold["wall_s"], plain_s)
    results["details"]["fe"] = {
        "images": len(paths), "batch_size": cfg.fe_batch, "epochs": epochs, "threads": torch.get_num_threads(),
        "studio_cold_s": cold["wall_s"], "studio_warm_s": warm["wall_s"],
        "plain_pass_s": [r["seconds"] for r in plain_runs], "plain_model_load_s": plain_runs[0]["load_s"],
        "warm_vs_inference_ratio": _ratio(warm["wall_s"], plain_s),
        "cold_vs_plain_passes": [_ratio(cold["wall_s"], r["seconds"]) for r in plain_runs],
        "plain_pass_cpu_s": [r["cpu_s"] for r in plain_runs],
        "naive_s": naive["seconds"], "naive_vs_inference_ratio": _ratio(naive["seconds"], plain_s),
        "naive_extrapolated": naive["extrapolated"], "naive_measured_images": naive["measured_images"],
        "studio_accuracy": cold["accuracy"], "studio_cold_phases": cold["phases"],
        "studio_epochs_run": cold["epochs_run"],  # 1: the head is solved (no epochs), its search is counted
        "counted": "studio: JobManager.start() to done through a worker process (the spare one, as in the UI), "
                   "i.e. recipe check, data loading and validation (every "
                   "image decoded once to check it), split, model build, features, all epochs on the head, "
                   "evaluation, checkpoint and saved model; plain: one inference_mode pass (decode, resize, "
                   "forward) over the same images, model build excluded (plain_model_load_s)",
    }


def section_worker(ctx: Context, results: dict) -> None:
    """What training in a worker process costs at the start: Start → first step event through the worker (the
    spare already started, as in the UI) minus the same recipe in-process, on a tiny data set; the worse of
    feature extraction and full fine-tuning. Each side gets a fresh workspace (a cold feature cache)."""
    cfg = ctx.cfg
    folder = ctx.mnist("worker", 3, 0)
    out = {}
    for strategy in ("feature-extraction", "full"):
        rec = studio_side.recipe("image", cfg.image_model, str(folder), strategy, batch_size=4, epochs=1)
        studio_side.first_step_s(ctx.fresh_manager(f"warm-{strategy}", in_process=True), rec)  # imports, once
        inproc = studio_side.first_step_s(ctx.fresh_manager(f"inproc-{strategy}", in_process=True), rec)
        worker = studio_side.first_step_s(ctx.fresh_manager(f"worker-{strategy}"), rec)
        out[strategy] = {"in_process_s": inproc, "worker_s": worker, "overhead_s": worker - inproc}
    results["worker_start_overhead_s"] = max(v["overhead_s"] for v in out.values())
    results["details"]["worker"] = dict(out, images=len(workloads.image_files(folder)[0]), counted=(
        "JobManager.start() to the first step event; worker: a new workspace whose JobManager's spare worker "
        "has finished importing; in-process: the same recipe on a JobManager(in_process=True) in a process that "
        "has run it once"))


def compare_training(ctx: Context, make_trainer, task: str, model: str, data: str, strategy: str,
                     batch_size: int, warmup: int, measure: int) -> dict:
    """The studio's samples/s ÷ the plain loop's, over the same steps after warm-up.
    CPU: in lockstep (one studio step, one plain step, …), so other work on the machine weighs on both alike.
    GPU: plain window, studio window, plain window, back to back, the device synchronised only at the windows'
    ends, so the studio's own per-step synchronisation counts against it."""
    trainer = make_trainer()
    if ctx.device.type == "cpu":
        rec = studio_side.recipe(task, model, data, strategy, batch_size=batch_size, epochs=1)
        got = studio_side.lockstep(ctx.inproc, rec, trainer, warmup, measure, batch_size)
        return {"ratio": got["ratio"], "method": "lockstep", "median_ratio": got["median_ratio"],
                "studio_samples_per_s": got["studio_samples_per_s"],
                "plain_samples_per_s": [got["plain_samples_per_s"]],
                "studio_step_s": [round(x, 4) for x in got["studio_step_s"]],
                "plain_step_s": [round(x, 4) for x in got["plain_step_s"]],
                "studio_page_faults_per_step": got["studio_page_faults_per_step"],
                "plain_page_faults_per_step": got["plain_page_faults_per_step"]}
    first = trainer.window(warmup, measure)
    studio = studio_side.throughput(ctx.inproc, task, model, data, strategy, batch_size, warmup, measure)
    second = trainer.window(warmup, measure)
    plain_rate = statistics.mean([first["samples_per_s"], second["samples_per_s"]])
    return {"ratio": studio["samples_per_s"] / plain_rate, "method": "plain, studio, plain windows",
            "studio_samples_per_s": studio["samples_per_s"],
            "plain_samples_per_s": [first["samples_per_s"], second["samples_per_s"]],
            "studio_peak_memory_mb": studio.get("peak_memory_mb")}


def section_ft(ctx: Context, results: dict) -> None:
    cfg = ctx.cfg
    folder = ctx.mnist("fe", cfg.fe_per_class, 0)
    paths, labels, classes = workloads.image_files(folder)
    got = compare_training(
        ctx, lambda: plain.full_trainer(cfg.image_model, paths, labels, len(classes), cfg.ft_batch, 5e-5,
                                        ctx.workers, ctx.device, ctx.amp),
        "image", cfg.image_model, str(folder), "full", cfg.ft_batch, cfg.ft_warmup, cfg.ft_measure)
    results["ft_vs_plain_loop_ratio"] = got.pop("ratio")
    results["details"]["ft"] = dict(
        got, model=cfg.image_model, strategy="full", batch_size=cfg.ft_batch, warmup_steps=cfg.ft_warmup,
        measured_steps=cfg.ft_measure, dtype=str(ctx.amp or torch.float32),
        counted="samples/s over the same measured steps after warm-up, data loading (decode, augmentation) "
                "included on both sides; AdamW on every weight")


def section_lora(ctx: Context, results: dict) -> None:
    cfg = ctx.cfg
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(cfg.text_model)
    csv_path = workloads.text_csv(ctx.work / "lora.csv", cfg.lora_rows, cfg.lora_words, tokenizer)
    texts, labels, classes = plain.read_csv(csv_path)
    lora = {"r": 8, "alpha": 16.0, "dropout": 0.05}  # the studio's defaults
    got = compare_training(
        ctx, lambda: plain.text_trainer(cfg.text_model, texts, labels, len(classes), cfg.ft_batch, 5e-4,
                                        ctx.device, ctx.amp, lora),
        "text", cfg.text_model, str(csv_path), "lora", cfg.ft_batch, cfg.lora_warmup, cfg.lora_measure)
    results["lora_vs_plain_loop_ratio"] = got.pop("ratio")
    results["details"]["lora"] = dict(
        got, model="all-minilm-l6-v2" if cfg.mode != "smoke" else cfg.text_model, batch_size=cfg.ft_batch,
        tokens_per_text=cfg.lora_words + 2, warmup_steps=cfg.lora_warmup, measured_steps=cfg.lora_measure,
        lora=lora, counted="samples/s over the same measured steps after warm-up, tokenising included on both sides")


section_expert, section_strategies, section_transfer = (quality.section_expert, quality.section_strategies,
                                                         quality.section_transfer)  # bench/quality.py


def section_ui(ctx: Context, results: dict) -> None:
    from bench import ui
    got = ui.measure(ctx.work / "workspace-ui", ctx.cfg.image_model, ctx.cfg.ui_calls)
    for key in ("ui_p95_ms_idle", "ui_p95_ms_during_training", "first_curve_point_s", "demo_to_model_s"):
        results[key] = got[key]
    results["details"]["ui"] = dict(got["details"], demo_answer=got["demo_answer"])


def section_audio(ctx: Context, results: dict) -> None:
    """Feature extraction on the bundled spoken commands with the offline Whisper tiny.en through a worker (cold
    feature cache) vs one plain pass of the same encoder over the same clips, plain-studio-plain. The model is
    converted from its package before anything is timed (once per workspace, as a user's first run does)."""
    cfg = ctx.cfg
    folder = cfg.audio_model
    if cfg.audio_model == "whisper-tiny-en":
        from studio import catalog
        from studio.families import packages
        os.environ["STUDIO_CONVERTED_CACHE"] = str(ctx.work / "converted")  # the workers inherit it
        folder = str(packages.convert(catalog.find(cfg.audio_model)))
    paths = workloads.audio_files(Path(cfg.audio_data))
    manager = ctx.fresh_manager("workspace-audio")
    plain_runs = [plain.audio_encoder_pass(folder, paths, cfg.fe_batch, ctx.device, ctx.amp)]
    cold = studio_side.feature_extraction(manager, cfg.audio_model, cfg.audio_data, cfg.fe_batch, cfg.fe_epochs,
                                          task="audio")
    plain_runs.append(plain.audio_encoder_pass(folder, paths, cfg.fe_batch, ctx.device, ctx.amp))
    if cold["cached"]:
        raise RuntimeError("the audio run found its features cached: the workspace was not fresh")
    plain_s = statistics.mean(r["seconds"] for r in plain_runs)
    results["audio_fe_vs_inference_ratio"] = _ratio(cold["wall_s"], plain_s)
    results["audio_example_fe_accuracy"] = cold["accuracy"]
    results["details"]["audio"] = {
        "model": cfg.audio_model, "clips": len(paths), "batch_size": cfg.fe_batch, "studio_cold_s": cold["wall_s"],
        "plain_pass_s": [r["seconds"] for r in plain_runs], "plain_model_load_s": plain_runs[0]["load_s"],
        "studio_cold_phases": cold["phases"], "studio_epochs_run": cold["epochs_run"],
        "counted": "studio: JobManager.start() to done through a worker process (the spare one), i.e. recipe "
                   "check, every clip decoded once to check it, split, model build, features (each clip padded "
                   "to Whisper's 30 s window), all epochs on the head, evaluation, saved model; plain: one "
                   "inference_mode pass of the encoder (decode, resample, log-mel features, forward, mean over "
                   "time) over the same clips, model build excluded (plain_model_load_s)"}


def section_sft(ctx: Context, results: dict) -> None:
    from bench import sft
    sft.section(ctx, results)


def section_gpu(ctx: Context, results: dict, force: bool = False, peak: float | None = None) -> None:
    if ctx.device.type == "cuda":
        from bench import sft
        sft.section_gpu(ctx, results, peak)  # CUDA only: QLoRA's 4-bit base needs bitsandbytes on a GPU
    else:
        for key in ("sft_mfu", "sft_peak_memory_mb"):
            results[key] = None
            results["null_reasons"][key] = ("no CUDA device on this machine: instruction tuning's MFU and the peak "
                                            "memory of lora / qlora / full are measured on a GPU only")
    if ctx.device.type != "cuda" and not force:
        reason = "no CUDA device on this machine: MFU and GPU memory are measured on a GPU only"
        for key in GPU_KEYS:
            results[key] = None
            results["null_reasons"][key] = reason
        return
    from bench import gpu
    got = gpu.measure(ctx.cfg, ctx.inproc, ctx.work, ctx.device, ctx.amp, peak)
    results["ft_mfu"] = got["ft_mfu"]
    results["peak_memory_mb"] = got["peak_memory_mb"]
    if ctx.device.type != "cuda":
        results["peak_memory_mb"] = None
        results["null_reasons"]["peak_memory_mb"] = "measured on the CPU (forced): no CUDA allocator statistics"
    results["details"]["gpu"] = got["details"]


# -- checking and printing -------------------------------------------------------------------------------------------

def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check(results: dict) -> list[str]:
    """Problems with a results dict: a missing key, a value that is not a finite number, a wrong structure, a null
    without a reason. Empty when every key is there."""
    problems = []
    for key in NUMBER_KEYS:
        if not _finite(results.get(key)):
            problems.append(f"{key} is {results.get(key)!r}, not a finite number")
    for key, expected in QUALITY_KEYS.items():
        value = results.get(key)
        if not isinstance(value, dict) or not value:
            problems.append(f"{key} is {value!r}, not ratios by name")
            continue
        if expected and sorted(value) != sorted(expected):
            problems.append(f"{key} has {sorted(value)}, not {sorted(expected)}")
        problems += [f"{key}[{name}] is {v!r}" for name, v in value.items() if not _finite(v)]
    transfer = results.get("transfer_vs_scratch")
    if not isinstance(transfer, dict) or not transfer.get("per_class"):
        problems.append("transfer_vs_scratch has no per_class results")
    else:
        for k, row in transfer["per_class"].items():
            for side in ("feature_extraction", "full", "scratch", "budget_s"):
                if not _finite(row.get(side)):
                    problems.append(f"transfer_vs_scratch[{k}][{side}] is {row.get(side)!r}")
    for key in GPU_KEYS:
        if key not in results:
            problems.append(f"{key} is missing")
        elif results[key] is None:
            if not results.get("null_reasons", {}).get(key):
                problems.append(f"{key} is null without a reason")
        elif key == "ft_mfu" and not all(_finite(v) for v in results[key].values()):
            problems.append(f"ft_mfu has a value that is not a finite number: {results[key]}")
    return problems


def goals(results: dict) -> dict:
    out = {}
    for key, goal in GOALS.items():
        if goal is None or results.get(key) is None:
            continue
        op, target = goal
        values = list(results[key].values()) if isinstance(results[key], dict) else [results[key]]
        met = all((v <= target) if op == "<=" else (v >= target) for v in values)
        out[key] = {"goal": f"{op} {target:g}", "met": met}
    return out


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def table(results: dict) -> str:
    d, g = results["details"], results.get("goals", {})
    lines = ["| key | value | goal | met | what is compared |", "|---|---|---|---|---|"]

    def row(key, value, note):
        goal = g.get(key, {})
        met = {True: "yes", False: "**no**"}.get(goal.get("met"), "")
        lines.append(f"| `{key}` | {value} | {goal.get('goal', '')} | {met} | {note} |")
    fe = d.get("fe", {})
    if fe:
        row("fe_vs_inference_ratio", _fmt(results.get("fe_vs_inference_ratio")),
            f"studio FE run, cold cache, everything counted ({fe['studio_cold_s']:.1f} s) ÷ one plain "
            f"inference pass ({statistics.mean(fe['plain_pass_s']):.1f} s, mean of 2), {fe['images']} images, "
            f"batch {fe['batch_size']}, head solved with its regularisation searched, {fe['threads']} threads")
        lines.append(f"| (warm cache) | {_fmt(fe['warm_vs_inference_ratio'])} | | | second run, features from the "
                     f"cache ({fe['studio_warm_s']:.1f} s) |")
        lines.append(f"| (naive way) | {_fmt(fe['naive_vs_inference_ratio'])} | | | frozen backbone run every "
                     f"epoch of a head trained for {fe['epochs']} epochs ({fe['naive_s']:.0f} s{', extrapolated from one epoch on ' + str(fe['naive_measured_images']) + ' images' if fe['naive_extrapolated'] else ''}) |")
    else:
        row("fe_vs_inference_ratio", "—", "not measured")
    wk = d.get("worker", {})
    row("worker_start_overhead_s", _fmt(results.get("worker_start_overhead_s")),
        "start → first step event through a worker process minus in-process, " + ", ".join(
            f"{k} {_fmt(v['worker_s'])} − {_fmt(v['in_process_s'])} s" for k, v in wk.items()
            if isinstance(v, dict)) + f" ({wk.get('images')} images)" if wk else "not measured")
    ft, lo = d.get("ft", {}), d.get("lora", {})
    row("ft_vs_plain_loop_ratio", _fmt(results.get("ft_vs_plain_loop_ratio")),
        f"studio `full` {_fmt(ft.get('studio_samples_per_s'))} samples/s ÷ plain loop "
        f"{', '.join(_fmt(v) for v in ft.get('plain_samples_per_s', []))}, {ft.get('model')}, batch "
        f"{ft.get('batch_size')}, {ft.get('measured_steps')} steps after {ft.get('warmup_steps')}, "
        f"{ft.get('method')}" if ft else "")
    row("lora_vs_plain_loop_ratio", _fmt(results.get("lora_vs_plain_loop_ratio")),
        f"studio `lora` on MiniLM {_fmt(lo.get('studio_samples_per_s'))} samples/s ÷ plain peft loop "
        f"{', '.join(_fmt(v) for v in lo.get('plain_samples_per_s', []))}, {lo.get('tokens_per_text')} tokens, "
        f"batch {lo.get('batch_size')}, {lo.get('measured_steps')} steps after {lo.get('warmup_steps')}, "
        f"{lo.get('method')}" if lo else "")
    ui = d.get("ui", {})
    row("ui_p95_ms_during_training", _fmt(results.get("ui_p95_ms_during_training")),
        f"{ui.get('calls')} calls of {ui.get('light_endpoint', '').split(' ')[0]} through gradio_client while a "
        f"`full` run trains in a worker process" if ui else "")
    row("ui_p95_ms_idle", _fmt(results.get("ui_p95_ms_idle")), "the same calls, nothing training" if ui else "")
    row("first_curve_point_s", _fmt(results.get("first_curve_point_s")),
        "first step event → a 1 s timer-paced refresh returns the curve with it (worst of the FE demo run "
        f"{_fmt(ui.get('first_curve_point_s', {}).get('feature-extraction demo'))} s and the full run "
        f"{_fmt(ui.get('first_curve_point_s', {}).get('full'))} s)" if ui else "")
    row("demo_to_model_s", _fmt(results.get("demo_to_model_s")),
        "UI API: shapes example → start (feature extraction, defaults) → finished → playground answer" if ui else "")
    for key in QUALITY_KEYS:
        value = results.get(key)
        row(key, ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()) if value else "—",
            "studio feature extraction ÷ expert logistic regression on the same features, per data set"
            if key == "fe_vs_expert" else "each strategy with defaults ÷ feature extraction, lowest over the "
            f"data sets ({', '.join(k for k in d.get('ft_vs_fe', {}) if k != 'counted')})")
    au = d.get("audio", {})
    row("audio_fe_vs_inference_ratio", _fmt(results.get("audio_fe_vs_inference_ratio")),
        f"studio FE run on {au['clips']} clips with {au['model']}, cold cache ({au['studio_cold_s']:.1f} s) ÷ one "
        f"plain encoder pass ({statistics.mean(au['plain_pass_s']):.1f} s, mean of 2), {au['clips']} clips, "
        f"batch {au['batch_size']}" if au else "")
    row("audio_example_fe_accuracy", _fmt(results.get("audio_example_fe_accuracy")),
        "validation accuracy of that run (the bundled example's held-back clips)" if au else "")
    tr = results.get("transfer_vs_scratch")
    if tr:
        cells = "; ".join(
            f"{k}/class: FE {v['feature_extraction']:.1%} ({v['time_s']['feature_extraction']:.0f} s), full "
            f"{v['full']:.1%} ({v['time_s']['full']:.0f} s) vs scratch {v['scratch']:.1%} "
            f"({v['time_s']['scratch']:.0f} s, {v['scratch_run']['epochs_run']} epochs; at FE's time "
            f"{_fmt(v['scratch_at_equal_time'])})" for k, v in tr["per_class"].items())
        row("transfer_vs_scratch", cells, f"validation accuracy on {tr['validation_examples']} held-out digits "
            f"of {tr['classes']} classes (chance {tr['chance']:.0%}); scratch under its own recipe")
    sf = d.get("sft", {})
    row("sft_lora_vs_plain_peft_ratio", _fmt(results.get("sft_lora_vs_plain_peft_ratio")),
        f"studio `lora` on {sf.get('model')} ÷ a plain peft loop, lockstep, batch {sf.get('batch_size')}, "
        f"{sf.get('measured_steps')} steps after {sf.get('warmup_steps')}, examples of equal length" if sf else "")
    row("sft_packing_speedup", _fmt(results.get("sft_packing_speedup")),
        f"learnt tokens/s with packing ÷ without ({sf.get('packing_tokens_per_s')}), answers of 6 to 60 words"
        if sf else "")
    row("demo_chat_s", _fmt(results.get("demo_chat_s")),
        "bundled help-desk example → Start with the defaults (worker) → first streamed piece of the tuned "
        "model's answer" if sf else "")
    words = {"ft_mfu": "full fine-tuning, bf16 autocast", "peak_memory_mb": "full vs LoRA",
             "sft_mfu": "instruction tuning, full, Qwen2.5-0.5B shape, bf16",
             "sft_peak_memory_mb": "lora / qlora / full, Qwen2.5-0.5B shape"}
    for key in GPU_KEYS:
        value = results.get(key)
        shown = ", ".join(f"{k} {_fmt(v) if not isinstance(v, dict) else v}" for k, v in value.items()) \
            if isinstance(value, dict) else _fmt(value) if value is not None \
            else f"null: {results['null_reasons'].get(key, '')}"
        row(key, shown, words[key])
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few minutes on 2 CPU cores")
    mode.add_argument("--smoke", action="store_true", help="tiny models and data (the test suite's check)")
    parser.add_argument("--out", type=Path, default=None, help=f"results file (default {DEFAULT_OUT}; smoke: none)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--gpu-section-on-cpu", action="store_true",
                        help="run the GPU section on the CPU too (checks its code; the numbers mean nothing)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak")
    args = parser.parse_args(argv)
    mode_name = "quick" if args.quick else "smoke" if args.smoke else "full"
    out = args.out or (None if args.smoke else DEFAULT_OUT)
    if args.threads:
        torch.set_num_threads(args.threads)
    selected = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(selected) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        cfg = make_config(mode_name, work)
        ctx = Context(cfg, work)
        results = {"meta": {"mode": mode_name, "device": ctx.device.type, "torch": torch.__version__,
                            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                            "machine": platform.machine(), "python": platform.python_version(),
                            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average_start": _load()},
                   "details": {}, "null_reasons": {}, "errors": {}, "config": asdict(cfg)}
        for name in SECTIONS:
            if name not in selected:
                continue
            section_began = time.perf_counter()
            print(f"[bench] {name} …", file=sys.stderr, flush=True)
            try:
                if name == "gpu":
                    section_gpu(ctx, results, force=args.gpu_section_on_cpu, peak=args.peak_tflops)
                else:
                    globals()[f"section_{name}"](ctx, results)
            except Exception:  # one broken section must not hide the others' numbers
                results["errors"][name] = traceback.format_exc()
                print(results["errors"][name], file=sys.stderr, flush=True)
            results["meta"].setdefault("section_s", {})[name] = round(time.perf_counter() - section_began, 1)
        results["goals"] = goals(results)
        results["meta"].update(wall_s=round(time.perf_counter() - began, 1), load_average_end=_load())
        results["problems"] = check(results) if selected == SECTIONS else []
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        print(table(results))
        print(f"\n{mode_name} run, {results['meta']['wall_s']:.0f} s on {ctx.device.type} "
              f"({results['meta']['threads']} threads); load average {results['meta']['load_average_start']} → "
              f"{results['meta']['load_average_end']}" + (f"; written to {out}" if out else ""))
        for problem in results["problems"]:
            print(f"PROBLEM: {problem}", file=sys.stderr)
        return 1 if results["errors"] or results["problems"] else 0


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())

"""The studio's numbers, measured side by side with the plain way of doing the same work, in one run.

    python bench/run.py --quick      # about 21 minutes on 2 CPU cores: ratios
    python bench/run.py              # the full run, for a GPU machine: ratios and absolute figures
    python bench/run.py --smoke      # tiny models and data, seconds: checks that every key is written

Prints a markdown table and writes bench/results.json (or --out). See bench/README.md for what each key counts.
"""
from __future__ import annotations

import argparse
import json
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
from bench.report import (GOALS, GPU_KEYS, NUMBER_KEYS, QUALITY_KEYS, SECTIONS, check,  # noqa: E402,F401
                          goals, table)
from bench.explain import section_explain  # noqa: E402,F401  (main finds sections by name)
from bench.tracking import section_tracking  # noqa: E402,F401  (main finds sections by name)
from bench.labels import section_labels  # noqa: E402,F401
from bench.gguf_export import section_gguf  # noqa: E402,F401
from bench.serve import section_serve  # noqa: E402,F401
from bench.sft import section as section_sft  # noqa: E402,F401
from bench.dpo import section as section_dpo  # noqa: E402,F401
from bench.audio import section_audio  # noqa: E402,F401
from bench.cluster import section_cluster  # noqa: E402,F401
from bench.gpu import section as section_gpu  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results.json"


@dataclass
class Config:
    mode: str
    image_model: str = "efficientnet-lite0"
    text_model: str = ""  # MiniLM's folder (all-minilm-l6-v2), filled in at start
    audio_model: str = "whisper-tiny-en"
    audio_data: str = ""  # the bundled spoken commands, filled in at start
    fe_per_class: int = 100  # ~1000 mnist_5k digits
    fe_batch: int = 32  # the studio's default for feature extraction
    fe_epochs: int | None = None  # None: the studio's default (the solved head; the naive way: 30 epochs)
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
        from studio.assets import COMMANDS_DIR
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
    """What training in a worker process costs at the start: Start → first curve point through the worker (the
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
        "JobManager.start() to the first curve point (a step, or a solved head's first candidate); worker: a new "
        "workspace whose JobManager's spare worker "
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
                "included on both sides; AdamW on every weight; both sides in channels_last with batch norm on "
                "its pretrained statistics",
        what_the_studio_adds=optimisations(ctx, paths, labels, len(classes)))


def optimisations(ctx: Context, paths, labels, num_labels: int) -> dict:
    """What each of the studio's choices for fine-tuning a convolutional network buys, measured on the plain loop
    alone (windows of the same steps, one variant after another): samples/s with neither, and the speed-up of
    channels_last, of batch norm on its pretrained statistics, and of both."""
    cfg = ctx.cfg
    rates = {}
    for name, channels_last, bn_stats in (("neither", False, False), ("channels_last", True, False),
                                          ("pretrained_bn_stats", False, True), ("both", True, True)):
        trainer = plain.full_trainer(cfg.image_model, paths, labels, num_labels, cfg.ft_batch, 5e-5, ctx.workers,
                                     ctx.device, ctx.amp, channels_last=channels_last, pretrained_bn_stats=bn_stats)
        rates[name] = trainer.window(cfg.ft_warmup, cfg.ft_measure)["samples_per_s"]
    return {"samples_per_s": rates, **{f"{name}_speedup": rates[name] / rates["neither"]
                                       for name in ("channels_last", "pretrained_bn_stats", "both")}}


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="about 21 minutes on 2 CPU cores")
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

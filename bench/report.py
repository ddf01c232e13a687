"""What a bench run must report, and the table it prints: the goals, the keys every run writes, and the checks."""
from __future__ import annotations

import math
import statistics

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
    "dpo_vs_trl_ratio": (">=", 0.95),  # the studio's DPO loop ÷ trl's DPOTrainer, lockstep
    "sft_packing_speedup": (">=", 1.5),
    "demo_chat_s": ("<=", 300.0),
    "sft_mfu": (">=", 0.35),
    "sft_peak_memory_mb": None,
    "tracking_vs_none_ratio": (">=", 0.95),
    "explain_image_ms": ("<=", 3000.0),  # an explanation in the Playground: a few seconds on the CPU at most
    "explain_text_ms": ("<=", 3000.0),
    "label_issue_precision_at_k": None,  # reported against cleanlab on an expert's probabilities (details)
    "gguf_export_s": None,  # a chat run to a checked q8_0 GGUF file and its Modelfile
    "serve_tokens_per_s": None,  # one streamed answer from `studio serve-model`
    "serve_concurrent_speedup": (">=", 2.0),  # 4 streams at once ÷ one: the goal is for a GPU (CPU: reported)
    "ray_submit_overhead_s": None,  # start → first step through a Ray job minus through the local backend
}
NUMBER_KEYS = ["fe_vs_inference_ratio", "ft_vs_plain_loop_ratio", "lora_vs_plain_loop_ratio",
               "ui_p95_ms_during_training", "ui_p95_ms_idle", "first_curve_point_s", "demo_to_model_s",
               "worker_start_overhead_s", "audio_fe_vs_inference_ratio", "audio_example_fe_accuracy",
               "sft_lora_vs_plain_peft_ratio", "sft_packing_speedup", "demo_chat_s", "dpo_vs_trl_ratio",
               "explain_image_ms", "explain_text_ms",
               "tracking_vs_none_ratio", "label_issue_precision_at_k", "gguf_export_s",
               "serve_tokens_per_s", "serve_concurrent_speedup", "ray_submit_overhead_s"]
GPU_KEYS = ["ft_mfu", "peak_memory_mb", "sft_mfu", "sft_peak_memory_mb"]
SECTIONS = ["fe", "worker", "ft", "lora", "expert", "strategies", "transfer", "ui", "audio", "sft", "tracking",
            "labels", "explain", "gguf", "serve", "dpo", "cluster", "gpu"]
QUALITY_KEYS = {"fe_vs_expert": None, "ft_vs_fe": ["full", "partial", "layerwise", "lora"]}  # dicts of ratios


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


# What a key compares, for the sections whose table row needs nothing from their details (the details hold more).
WORDS = {
    "tracking_vs_none_ratio": "samples/s of the same fine-tuning reporting to TensorBoard and MLflow ÷ reporting "
                              "nowhere, sides alternated",
    "label_issue_precision_at_k": "share of the k most suspect examples that were really flipped (10% of the digits' "
                                  "labels), the studio's run; cleanlab on an expert's probabilities in the details",
    "gguf_export_s": "`studio export --format gguf` (q8_0): merge, file, Modelfile and the read-back check",
    "ray_submit_overhead_s": "start → first curve point of a full fine-tuning run through the Ray backend (a local "
                             "head: placer, job submission, the job's `studio worker`) minus through the local "
                             "backend with its spare worker warm",
}


class Rows:
    """The table's lines; calling it adds a key's row with its goal and whether the goal is met."""

    def __init__(self, goals: dict):
        self.goals = goals
        self.lines = ["| key | value | goal | met | what is compared |", "|---|---|---|---|---|"]

    def __call__(self, key: str, value: str, note: str) -> None:
        goal = self.goals.get(key, {})
        met = {True: "yes", False: "**no**"}.get(goal.get("met"), "")
        self.lines.append(f"| `{key}` | {value} | {goal.get('goal', '')} | {met} | {note} |")

    def has(self, key: str) -> bool:
        return any(line.startswith(f"| `{key}` |") for line in self.lines)


def table(results: dict) -> str:
    row = Rows(results.get("goals", {}))
    _classifier_rows(results, results["details"], row)
    _chat_rows(results, results["details"], row)
    _gpu_rows(results, row)
    for key in GOALS:  # sections whose row needs nothing from their details
        if not row.has(key):
            row(key, _fmt(results.get(key)), WORDS.get(key, ""))
    return "\n".join(row.lines)


def _classifier_rows(results: dict, d: dict, row: Rows) -> None:
    fe = d.get("fe", {})
    if fe:
        row("fe_vs_inference_ratio", _fmt(results.get("fe_vs_inference_ratio")),
            f"studio FE run, cold cache, everything counted ({fe['studio_cold_s']:.1f} s) ÷ one plain "
            f"inference pass ({statistics.mean(fe['plain_pass_s']):.1f} s, mean of 2), {fe['images']} images, "
            f"batch {fe['batch_size']}, head solved with its regularisation searched, {fe['threads']} threads")
        row.lines.append(f"| (warm cache) | {_fmt(fe['warm_vs_inference_ratio'])} | | | second run, features from the "
                     f"cache ({fe['studio_warm_s']:.1f} s) |")
        row.lines.append(f"| (naive way) | {_fmt(fe['naive_vs_inference_ratio'])} | | | frozen backbone run every "
                     f"epoch of a head trained for {fe['epochs']} epochs ({fe['naive_s']:.0f} s{', extrapolated from one epoch on ' + str(fe['naive_measured_images']) + ' images' if fe['naive_extrapolated'] else ''}) |")
    else:
        row("fe_vs_inference_ratio", "—", "not measured")
    wk = d.get("worker", {})
    row("worker_start_overhead_s", _fmt(results.get("worker_start_overhead_s")),
        "start → first curve point through a worker process minus in-process, " + ", ".join(
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
        "first curve point (a step, or a solved head's first candidate) → a 1 s timer-paced refresh returns the "
        "curve with it (worst of the FE demo run "
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


def _chat_rows(results: dict, d: dict, row: Rows) -> None:
    sf = d.get("sft", {})
    row("sft_lora_vs_plain_peft_ratio", _fmt(results.get("sft_lora_vs_plain_peft_ratio")),
        f"studio `lora` on {sf.get('model')} ÷ a plain peft loop, lockstep, batch {sf.get('batch_size')}, "
        f"{sf.get('measured_steps')} steps after {sf.get('warmup_steps')}, examples of equal length" if sf else "")
    row("sft_packing_speedup", _fmt(results.get("sft_packing_speedup")),
        f"learnt tokens/s with packing ÷ without ({sf.get('packing_tokens_per_s')}), answers of 6 to 60 words"
        if sf else "")
    dp = d.get("dpo", {})
    row("dpo_vs_trl_ratio", _fmt(results.get("dpo_vs_trl_ratio")),
        f"studio DPO (`lora`) on {dp.get('model')} ÷ trl's DPOTrainer, lockstep, batch {dp.get('batch_size')} pairs, "
        f"{dp.get('measured_steps')} steps after {dp.get('warmup_steps')}" if dp else "")
    row("demo_chat_s", _fmt(results.get("demo_chat_s")),
        "bundled help-desk example → Start with the defaults (worker) → first streamed piece of the tuned "
        "model's answer" if sf else "")
    for kind in ("image", "text"):
        ex = d.get("explain", {}).get(kind)
        row(f"explain_{kind}_ms", _fmt(results.get(f"explain_{kind}_ms")),
            f"one {kind}'s explanation on the {d['explain']['device']}, {ex['model'].rsplit('/', 1)[-1]}, "
            f"{ex['input']}: {ex['method']} (median of {len(ex['ms'])})" if ex else "not measured")
    sv = d.get("serve")
    row("serve_tokens_per_s", _fmt(results.get("serve_tokens_per_s")),
        f"`studio serve-model` on {sv['model']} ({sv['device']}): completion tokens/s of one streamed greedy answer "
        f"through the openai client" if sv else "not measured")
    row("serve_concurrent_speedup", _fmt(results.get("serve_concurrent_speedup")),
        f"4 streams sent at once ({_fmt(sv['concurrent_tokens_per_s'])} tokens/s in all, batched into one generate "
        f"call) ÷ one stream" if sv else "not measured")


def _gpu_rows(results: dict, row: Rows) -> None:
    words = {"ft_mfu": "full fine-tuning, bf16 autocast", "peak_memory_mb": "full vs LoRA",
             "sft_mfu": "instruction tuning, full, Qwen2.5-0.5B shape, bf16",
             "sft_peak_memory_mb": "lora / qlora / full, Qwen2.5-0.5B shape"}
    for key in GPU_KEYS:
        value = results.get(key)
        shown = ", ".join(f"{k} {_fmt(v) if not isinstance(v, dict) else v}" for k, v in value.items()) \
            if isinstance(value, dict) else _fmt(value) if value is not None \
            else f"null: {results['null_reasons'].get(key, '')}"
        row(key, shown, words[key])

"""Instruction tuning's numbers: the studio's LoRA loop against a plain peft loop (lockstep, same model, data and
padding), packing against none on examples whose lengths vary tenfold, the bundled example to a first streamed
answer through a worker process, and on a GPU the MFU and peak memory of lora / qlora / full on a model shaped like
Qwen2.5-0.5B (random weights from its config, so it runs offline)."""
from __future__ import annotations

import csv
import json
import time

import torch

from bench import plain, studio_side, workloads

LORA = {"r": 16, "alpha": 32.0, "dropout": 0.05}  # the studio's defaults for lora
QWEN_05B = dict(hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864)  # Qwen2.5-0.5B's shape


def chat_recipe(model: str, data: str, strategy: str = "lora", max_length: int = 256, **train):
    from studio.recipe import DataSpec, Recipe, TrainSpec
    return Recipe(task="instruction-tuning", model=model, data=DataSpec(path=str(data), max_length=max_length),
                  strategy=strategy, train=TrainSpec(**train))


def model_for(ctx) -> tuple[str, str]:
    """(what the studio's recipe names, the folder the plain side loads): SmolLM2 converted once, or in the smoke
    run a tiny Llama."""
    if ctx.cfg.mode == "smoke":
        folder = workloads.llama_folder(ctx.work / "tiny-llama", 32, 2, 2, 64)
        return folder, folder
    from studio import catalog
    from studio.families.gguf import converted
    folder = str(converted(catalog.find("smollm2-135m-instruct"), ctx.work / "workspace-inproc" / "cache" / "models"))
    return "smollm2-135m-instruct", folder


def section(ctx, results: dict) -> None:
    from transformers import AutoTokenizer
    smoke = ctx.cfg.mode == "smoke"
    name, folder = model_for(ctx)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    batch, warmup, measure = (4, 1, 3) if smoke else (8, 2, 8)
    # 1. lockstep: every example the same length, so both sides pad alike whatever their batch order
    same = workloads.chat_csv(ctx.work / "sft-same.csv", 40 if smoke else 200, (12, 12), (24, 24), tokenizer)
    with open(same, newline="", encoding="utf-8") as f:
        rows = [tuple(r) for r in list(csv.reader(f))[1:]]
    trainer = plain.causal_lm_trainer(folder, rows, batch, 1e-3, ctx.device, ctx.amp, LORA)
    rec = chat_recipe(name, same, batch_size=batch, epochs=1, learning_rate=1e-3)
    got = studio_side.lockstep(ctx.inproc, rec, trainer, warmup, measure, batch)
    results["sft_lora_vs_plain_peft_ratio"] = got["ratio"]
    # 2. packing: answers of 6 to 60 words (tenfold), learnt tokens per second with and without
    varied = workloads.chat_csv(ctx.work / "sft-varied.csv", 48 if smoke else 160, (4, 4), (6, 60), tokenizer)
    rates = {}
    for packing in (False, True):
        run = studio_side.must_complete(studio_side.run(ctx.inproc, chat_recipe(
            name, varied, batch_size=batch, epochs=1, learning_rate=1e-3, packing=packing)))
        rates[packing] = json.loads((run["run_dir"] / "eval.json").read_text())["tokens_per_s"]
    results["sft_packing_speedup"] = rates[True] / rates[False]
    # 3. the demo: bundled example → first streamed answer, through a worker process
    demo = demo_chat(ctx, name, smoke)
    results["demo_chat_s"] = demo["seconds"]
    results["details"]["sft"] = {
        "model": name, "batch_size": batch, "lora": LORA, "warmup_steps": warmup, "measured_steps": measure,
        "studio_step_s": [round(x, 4) for x in got["studio_step_s"]],
        "plain_step_s": [round(x, 4) for x in got["plain_step_s"]],
        "packing_tokens_per_s": {"off": rates[False], "on": rates[True]}, "demo": demo,
        "counted": "lora ratio: plain step time ÷ studio step time in lockstep, examples of equal length; packing: "
                   "learnt tokens/s over a whole epoch, answers of 6 to 60 words; demo: JobManager.start() of the "
                   "bundled example with the studio's defaults (spare worker) to the first streamed piece of the "
                   "tuned model's answer"}


def demo_chat(ctx, name: str, smoke: bool) -> dict:
    from studio.assets import HELPDESK_CHAT
    from studio.recipe import DataSpec, Recipe
    from studio.tasks.instruction.model import load
    data = HELPDESK_CHAT
    if smoke:  # a few rows: the smoke run checks the path, not the time
        data = ctx.work / "helpdesk-few.csv"
        with open(HELPDESK_CHAT, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))[:21]
        with open(data, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
    start = time.perf_counter()
    result = studio_side.must_complete(studio_side.run(ctx.manager, Recipe(
        task="instruction-tuning", model=name, data=DataSpec(path=str(data)))))
    trained = time.perf_counter() - start
    chat = load(result["run_dir"] / "model", with_base=False)
    first = next(iter(chat.stream(chat.messages("How do I reset my Kettlebird?"), max_new_tokens=16)), "")
    return {"seconds": time.perf_counter() - start, "trained_s": trained, "first_piece": first,
            "phases": studio_side.phases(result["events"])}


def section_gpu(ctx, results: dict, peak: float | None) -> None:
    """sft_mfu (full fine-tuning, bf16 autocast: 6 × parameters × learnt-and-prompt tokens per second ÷ the GPU's
    bf16 peak) and sft_peak_memory_mb for lora, qlora and full on a Qwen2.5-0.5B-shaped Llama."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from bench.gpu import peak_tflops
    name = torch.cuda.get_device_name(ctx.device)
    peak = peak or peak_tflops(name)
    if peak is None:
        raise RuntimeError(f"unknown bf16 peak for '{name}': pass --peak-tflops")
    folder = workloads.llama_folder(ctx.work / "qwen-0.5b-shaped", **QWEN_05B, vocab_from=model_for(ctx)[1])
    data = workloads.chat_csv(ctx.work / "sft-gpu.csv", 2000, (64, 64), (448, 448),
                              AutoTokenizer.from_pretrained(folder))
    with torch.device("meta"):
        params = sum(p.numel() for p in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder))
                     .parameters())
    memory, rates = {}, {}
    for strategy in ("lora", "qlora", "full"):
        torch.cuda.reset_peak_memory_stats()
        clock = studio_side.StepClock(stop_after=40)
        rec = chat_recipe(folder, data, strategy, max_length=1024, batch_size=8, epochs=1)
        studio_side.run(ctx.inproc, rec, [clock])
        memory[strategy] = torch.cuda.max_memory_allocated() / 2**20
        rates[strategy] = clock.rate(10, 30, 8)["samples_per_s"]
    tokens_per_example = 512 + 32  # prompt, answer and the template's tokens, about
    results["sft_mfu"] = 6 * params * rates["full"] * tokens_per_example / (peak * 1e12)
    results["sft_peak_memory_mb"] = memory
    results["details"]["sft_gpu"] = {"device": name, "peak_tflops": peak, "params": params,
                                     "examples_per_s": rates}

"""GPU-only figures: model FLOPs utilisation of full fine-tuning (ViT-B/16 and a BERT-base-sized model, bf16
autocast, through the studio) and peak memory of full fine-tuning vs LoRA.

MFU = (FLOPs of one training step, counted by torch.utils.flop_counter on the studio's own model and a batch of the
bench's shape) x (studio steps per second) / (the GPU's dense bf16 peak). Peak memory is
torch.cuda.max_memory_allocated() over each studio run (reset before it)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bench import studio_side, workloads
from bench.report import GPU_KEYS

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, first match on the device name wins.
PEAK_BF16_TFLOPS = [("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("GH200", 989.0), ("A100", 312.0),
                    ("L40S", 362.0), ("L4", 121.0), ("A10", 125.0), ("RTX 4090", 165.0)]


def peak_tflops(device_name: str) -> float | None:
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in device_name), None)


def step_flops(model: str, task: str, batch_size: int, seq_len: int, device, amp) -> tuple[float, int]:
    """(FLOPs of one forward + backward of the studio's classifier, its parameter count); full fine-tuning."""
    from torch.utils.flop_counter import FlopCounterMode
    from studio import tasks
    from studio.tasks.classification.model import Classifier
    task_name = "text-classification" if task == "text" else "image-classification"
    backbone, info, _ = tasks.get(task_name).backbone(model, pretrained=True)
    clf = Classifier(backbone, 4).to(device).train()
    if task == "text":
        vocab = backbone.net.config.vocab_size
        inputs = {"input_ids": torch.randint(1000, vocab, (batch_size, seq_len), device=device),
                  "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long, device=device),
                  "token_type_ids": torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)}
    else:
        size = info.preprocessing["image_size"]
        inputs = torch.randn(batch_size, 3, size, size, device=device)
    targets = torch.zeros(batch_size, dtype=torch.long, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        with studio_side_autocast(device, amp):
            loss = F.cross_entropy(clf(inputs).float(), targets)
        loss.backward()
    flops = float(counter.get_total_flops())
    params = sum(p.numel() for p in clf.parameters())
    del clf
    return flops, params


def studio_side_autocast(device, amp):
    from studio.engine.device import autocast
    return autocast(device, amp)


def measure(cfg, manager, work, device, amp, peak_override: float | None = None) -> dict:
    """ft_mfu and peak memory for the configured ViT and BERT sizes (cfg.gpu_models)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_override or peak_tflops(name)
    if peak is None:
        raise RuntimeError(f"unknown bf16 peak for '{name}': pass --peak-tflops")
    images = workloads.mnist_folder(work / "mfu-images", cfg.mfu_images_per_class, start=0)
    out = {"ft_mfu": {}, "peak_memory_mb": {}, "details": {"device": name, "peak_tflops": peak}}
    for key, spec in cfg.gpu_models.items():
        folder = work / f"model-{key}"
        if spec["task"] == "image":
            model = workloads.vit_folder(folder, **spec["config"])
            data, seq_len = images, 0
        else:
            model = workloads.bert_folder(folder, **spec["config"])
            from transformers import AutoTokenizer
            tokenizer = AutoTokenizer.from_pretrained(model)
            data = workloads.text_csv(work / f"text-{key}.csv", cfg.mfu_text_rows, spec["words"], tokenizer)
            seq_len = spec["words"] + 2  # [CLS] … [SEP]: every text has the same length
        batch = spec["batch_size"]
        warmup, steps = cfg.mfu_warmup, cfg.mfu_steps
        full = studio_side.throughput(manager, spec["task"], model, str(data), "full", batch, warmup, steps)
        lora = studio_side.throughput(manager, spec["task"], model, str(data), "lora", batch, warmup, steps)
        flops, params = step_flops(model, spec["task"], batch, seq_len, device, amp)
        achieved = flops * full["samples_per_s"] / batch
        out["ft_mfu"][key] = achieved / (peak * 1e12)
        out["peak_memory_mb"][key] = {"full": full.get("peak_memory_mb"), "lora": lora.get("peak_memory_mb")}
        out["details"][key] = {"batch_size": batch, "seq_len": seq_len or None, "step_tflop": flops / 1e12,
                               "achieved_tflops": achieved / 1e12, "full_samples_per_s": full["samples_per_s"],
                               "lora_samples_per_s": lora["samples_per_s"], "params": params,
                               # cross-check: the 6 x parameters x tokens rule (attention not counted)
                               "six_n_t_tflop": 6 * params * batch * (seq_len or 1) / 1e12 if seq_len else None}
    return out


def section(ctx, results: dict, force: bool = False, peak: float | None = None) -> None:
    """ft_mfu and peak_memory_mb (and the instruction-tuning figures on CUDA); on a CPU null with the reason, unless
    forced (the smoke run checks the code)."""
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
    got = measure(ctx.cfg, ctx.inproc, ctx.work, ctx.device, ctx.amp, peak)
    results["ft_mfu"] = got["ft_mfu"]
    results["peak_memory_mb"] = got["peak_memory_mb"]
    if ctx.device.type != "cuda":
        results["peak_memory_mb"] = None
        results["null_reasons"]["peak_memory_mb"] = "measured on the CPU (forced): no CUDA allocator statistics"
    results["details"]["gpu"] = got["details"]


# -- checking and printing -------------------------------------------------------------------------------------------

# -- main ------------------------------------------------------------------------------------------------------------

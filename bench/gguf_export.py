"""What taking a chat run to llama.cpp and Ollama costs: seconds for `studio export RUN --format gguf` (q8_0, the
default; the merge, the file, its Modelfile and the read-back check included) on a short LoRA run of SmolLM2 (the
smoke run: a tiny random Llama with SmolLM2's tokenizer), and f16's beside it in the details with both checks.
(Not bench/gguf.py: run as a script, bench/ comes first on sys.path and that name would hide the gguf package.)"""
from __future__ import annotations

import json
import time

from bench import sft, studio_side, workloads

TYPES = ("q8_0", "f16")


def _smoke_model(ctx) -> str:
    """A 2-layer Llama with SmolLM2's byte-level BPE tokenizer (read from its packaged GGUF file's metadata, no
    weights converted): the smallest model a GGUF export takes."""
    from transformers import AutoTokenizer
    from studio import catalog
    from studio.families.gguf import package_file
    source = package_file(catalog.find("smollm2-135m-instruct"))
    tokens = ctx.work / "smollm2-tokenizer"
    AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name).save_pretrained(tokens)
    return workloads.llama_folder(ctx.work / "tiny-llama-bpe", 32, 2, 2, 64, vocab_from=str(tokens))


def section_gguf(ctx, results: dict) -> None:
    from transformers import AutoTokenizer
    from studio.run.export import export
    from studio.runfolder import GGUF_CHECK
    smoke = ctx.cfg.mode == "smoke"
    name, folder = (_smoke_model(ctx),) * 2 if smoke else sft.model_for(ctx)
    data = workloads.chat_csv(ctx.work / "gguf-chat.csv", 24 if smoke else 64, (4, 8), (6, 12),
                              AutoTokenizer.from_pretrained(folder))
    run = studio_side.must_complete(studio_side.run(ctx.inproc, sft.chat_recipe(
        name, data, max_length=64, batch_size=4, epochs=1, learning_rate=1e-3)))
    seconds, checks = {}, {}
    for gguf_type in TYPES:
        began = time.perf_counter()
        out = export(run["run_dir"], "gguf", gguf_type=gguf_type)
        seconds[gguf_type] = time.perf_counter() - began
        checks[gguf_type] = json.loads((out / GGUF_CHECK).read_text())
    results["gguf_export_s"] = seconds["q8_0"]
    results["details"]["gguf"] = {
        "model": "tiny Llama (SmolLM2's tokenizer)" if smoke else "smollm2-135m-instruct", "export_s": seconds,
        "checks": checks,
        "counted": "wall seconds of export(run, 'gguf', gguf_type) in-process on a finished LoRA run: merging the "
                   "adapter, writing the file and its Modelfile, reading it back with gguf and transformers and "
                   "comparing logits on the run's held-out prompts"}

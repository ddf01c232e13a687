"""Taking a tuned chat model elsewhere: the adapter alone (model/adapter/, a peft folder), a merged transformers
folder (model/hf/, which `pipeline("text-generation")` loads with the chat template in its tokenizer), the zip of
the model folder; and the model card (data, strategy, metrics, example answers, limits, how to load it)."""
from __future__ import annotations

import shutil
from pathlib import Path

from studio.engine.export import ExportError, export_zip, model_folder
from studio.families.base import ModelInfo
from studio.runfolder import DATA_REPORT, EVAL, RunFolder
from studio.tasks.instruction_model import ADAPTER_DIR, base_path
from studio.tasks.instruction_peft import PROMPT_LEARNING, STRATEGIES

HF_DIR = "hf"


def export_adapter(run: RunFolder) -> Path:
    folder = model_folder(run)
    if not (folder / ADAPTER_DIR / "adapter_config.json").exists():
        raise ExportError("This run fine-tuned every weight, so there is no adapter to export; use --format hf for "
                          "the whole model.")
    return folder / ADAPTER_DIR


def export_hf(run: RunFolder) -> Path:
    """model/hf/: the base with the adapter folded in (or the fully tuned model), its tokenizer and chat template,
    and the end-of-turn token as the generation's stop token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    folder = model_folder(run)
    info = ModelInfo.read(folder)
    strategy = info.preprocessing["strategy"]
    if strategy in PROMPT_LEARNING:
        raise ExportError(f"{STRATEGIES[strategy].words} adds learnt virtual tokens in front of every prompt, which "
                          "no plain transformers model has, so it cannot be merged. Export the adapter (peft "
                          "loads it on the base model), or train with lora to get a mergeable model.")
    if strategy == "qlora":
        raise ExportError("A QLoRA adapter was trained against a 4-bit base; merging it into full-precision weights "
                          "changes its answers. Export the adapter, or train with lora to merge.")
    out = folder / HF_DIR
    tmp = out.with_name(HF_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if strategy == "full":
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    else:
        from peft import PeftModel
        base = AutoModelForCausalLM.from_pretrained(base_path(info), dtype=torch.float32)
        model = PeftModel.from_pretrained(base, str(folder / ADAPTER_DIR)).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    stop = sorted({tokenizer.convert_tokens_to_ids(info.preprocessing["eot"]), tokenizer.eos_token_id})
    model.generation_config = GenerationConfig.from_model_config(model.config)
    model.generation_config.eos_token_id = stop
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return out


EXPORTS = {"adapter": export_adapter, "hf": export_hf, "zip": export_zip}


def render(task, run: RunFolder) -> str:
    report = run.read(EVAL) or {}
    data = run.read(DATA_REPORT) or {}
    info = ModelInfo.read(run.model_dir)
    prep = info.preprocessing
    strategy = STRATEGIES[prep["strategy"]]
    recipe = run.recipe_text()
    columns = ", ".join(f"`{k}` = `{v}`" for k, v in data.get("columns", {}).items())
    kind = "conversations" if data.get("kind") == "chat" else "texts (continued pretraining)"
    lines = [f"# {run.id}", "",
             f"**{info.model}** adapted to its own {kind} with **{strategy.words}** in the Studio.", "",
             "## Data", "",
             f"{data.get('train_counts', {}).get('examples', '?')} training and "
             f"{data.get('validation_counts', {}).get('examples', '?')} validation examples ({columns}); "
             f"{len(data.get('skipped', []))} rows skipped, {data.get('duplicates', 0)} duplicates left out. "
             + ("Only the answers were learnt (prompt tokens masked from the loss)." if not prep.get(
                 "train_on_prompt") else "Prompts and answers were both learnt.")
             + f" At most {prep['max_length']} tokens per example; longer ones were cut from the start of the "
               "prompt so the answer stays whole.", "",
             "## Results on the validation examples", ""]
    if report:
        lines += ["| | tuned | base |", "|---|---|---|",
                  f"| loss | {report['loss']:.4f} | {_num(report.get('base_loss'))} |",
                  f"| perplexity | {report['perplexity']:.2f} | {_num(report.get('base_perplexity'), 2)} |",
                  f"| answer tokens predicted exactly | {report['accuracy']:.1%} | "
                  f"{_pct(report.get('base_accuracy'))} |", ""]
        for warning in report.get("warnings", []):
            lines += [f"> {warning}", ""]
        if report.get("samples"):
            lines += ["## Example answers (held-out prompts, greedy)", ""]
            for s in report["samples"][:4]:
                lines += [f"**Prompt:** {s['prompt']}", "", f"- reference: {s['reference']}",
                          f"- base model: {s['base_answer'] or '—'}",
                          f"- tuned model (ROUGE-L {s['similarity']:.2f}): {s['tuned_answer']}", ""]
    lines += ["## Limits", "",
              "A small model tuned on a few hundred examples copies the style and facts of its training answers; "
              "it can state wrong facts with the same confidence, and knows nothing its data does not say. Check "
              "its answers before using them with people.", "",
              "## How to load it", "", "```python", _how_to_load(prep["strategy"]), "```", "",
              "## Recipe", "", "```yaml", recipe.strip(), "```"]
    return "\n".join(lines) + "\n"


def _how_to_load(strategy: str) -> str:
    if strategy == "full":
        return ('from transformers import pipeline\n\nchat = pipeline("text-generation", model=".")\n'
                'print(chat([{"role": "user", "content": "Hello"}], max_new_tokens=100))')
    return ('from peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n\n'
            'model = AutoPeftModelForCausalLM.from_pretrained("adapter")  # reads the base model it was trained on\n'
            'tokenizer = AutoTokenizer.from_pretrained(".")\n'
            '# or, after `studio export RUN --format hf`: pipeline("text-generation", model="hf")')


def _num(value, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "—"


def _pct(value) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "—"


def write_card(task, run: RunFolder) -> None:
    (run.model_dir / "README.md").write_text(render(task, run), encoding="utf-8")


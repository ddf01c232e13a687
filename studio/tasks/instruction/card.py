"""The model card of a tuned chat model (README.md in its model folder): data, strategy, results against the base
model, example answers, limits, how to load it, the recipe."""
from __future__ import annotations

from studio.engine import model_card
from studio.families.base import ModelInfo
from studio.runfolder import DATA_REPORT, EVAL, RunFolder
from studio.tasks.instruction.strategies import STRATEGIES


def render(run: RunFolder) -> str:
    report = run.read(EVAL) or {}
    data = run.read(DATA_REPORT) or {}
    info = ModelInfo.read(run.model_dir)
    prep = info.preprocessing
    strategy = STRATEGIES[prep["strategy"]]
    recipe = run.recipe_text()
    columns = ", ".join(f"`{k}` = `{v}`" for k, v in data.get("columns", {}).items())
    kind = "conversations" if data.get("form", data.get("kind")) == "chat" else "texts (continued pretraining)"
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
    if report:  # instruction tuning's figures, or preference tuning's
        lines += (chat_results if "perplexity" in report else preference_results)(report)
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
              "## How to load it", "", "```python", strategy.how_to_load, "```", "",
              "## Recipe", "", "```yaml", recipe.strip(), "```"]
    return "\n".join(lines) + "\n"


def chat_results(report: dict) -> list[str]:
    return ["| | tuned | base |", "|---|---|---|",
            f"| loss | {report['loss']:.4f} | {_num(report.get('base_loss'))} |",
            f"| perplexity | {report['perplexity']:.2f} | {_num(report.get('base_perplexity'), 2)} |",
            f"| answer tokens predicted exactly | {report['accuracy']:.1%} | {_pct(report.get('base_accuracy'))} |",
            ""]


def preference_results(report: dict) -> list[str]:
    return ["| | tuned | start model |", "|---|---|---|",
            f"| better answer more probable | {_pct(report.get('preference_accuracy'))} | "
            f"{_pct(report.get('base_preference_accuracy'))} |",
            f"| reward accuracy ({report['loss_name']}) | {_pct(report.get('reward_accuracy'))} | |",
            f"| reward margin | {report['reward_margin']:.4f} | |", f"| loss | {report['loss']:.4f} | |", ""]


def _num(value, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "—"


def _pct(value) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "—"


def write_card(run: RunFolder) -> None:
    model_card.write(run, render(run))

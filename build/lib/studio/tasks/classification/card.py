"""The model card of a trained classifier: data, strategy, results per class and group, intended use and
limitations, and how to load it (the studio, transformers' pipeline, onnxruntime)."""
from __future__ import annotations

from studio.engine import model_card
from studio.engine.model_card import pct, table
from studio.runfolder import DATA_REPORT, EVAL, MODEL_INFO, RunFolder, read_json


def _loading(task, info: dict) -> str:
    snippets = task.card_snippets(info)
    example = snippets["example"]
    parts = [f"""With the studio installed (`pip install studio`), from this folder:

```python
from studio.run.inference import Predictor

predictor = Predictor(".")  # this folder
print(predictor.predict({example}, top_k=3))
```"""]
    if info.get("family") == "hf" and info.get("pooling") == "head" and not info.get("bypassed"):
        parts.append(f"""With transformers alone: `studio export RUN --format hf` writes `hf/` here, a standard
transformers classifier:

```python
from transformers import pipeline

classify = pipeline("{task.name}", model="hf")
print(classify({example}))
```""")
    parts.append("""Without torch: `studio export RUN --format onnx` writes `model.onnx` and `onnx_preprocessing.json`
here; with onnxruntime, from this folder:

```python
import json

import numpy as np
import onnxruntime

prep = json.load(open("onnx_preprocessing.json"))
session = onnxruntime.InferenceSession("model.onnx")
""" + snippets["onnx"] + """
print([prep["labels"][i] for i in logits.argmax(1)])
```""")
    return "\n\n".join(parts)


def render(task, run: RunFolder) -> str:
    recipe = model_card.recipe_of(run)
    report = run.read(EVAL) or {}
    data = run.read(DATA_REPORT) or {}
    info = read_json(run.model_dir / MODEL_INFO) or {}
    trainable, total = report.get("trainable_parameters", 0), report.get("total_parameters", 0) or 1
    train_total = sum(data.get("train_counts", {}).values())
    val_total = sum(data.get("validation_counts", {}).values())
    sections = [
        model_card.front_matter(task.name, recipe["strategy"]),
        f"# {run.id}: {task.name.replace('-', ' ')} of {len(report.get('labels', []))} classes",
        f"Adapted from **{recipe['model']}** with the **{recipe['strategy']}** strategy "
        f"({trainable:,} of {total:,} parameters trained, {pct(trainable / total)}).",
        "## Data\n" + f"{train_total} training and {val_total} validation examples from `{recipe['data']['path']}`."
        + (f" {len(data['skipped'])} unreadable examples were skipped." if data.get("skipped") else "") + "\n\n"
        + table(["class", "training", "validation"],
                [[c, data["train_counts"][c], data["validation_counts"][c]] for c in data.get("classes", [])]),
        "## Results on the validation examples\n"
        + f"Accuracy {pct(report.get('accuracy', 0))}, macro-F1 {report.get('macro_f1', 0):.3f}, "
        + f"loss {report.get('loss', 0):.3f}, best epoch {report.get('best_epoch')} "
        + f"of {len(report.get('history', []))} run"
        + (" (stopped early: validation loss had stopped improving)." if report.get("stopped_early") else ".")
        + "\n\n" + table(["class", "precision", "recall", "F1", "examples"],
                         [[c, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", v["support"]]
                          for c, v in report.get("per_class", {}).items()]),
    ]
    groups = report.get("groups")
    if groups:
        sections.append(
            f"## Results per {recipe['data']['group_column']}\n"
            + table(["group", "accuracy", "macro-F1", "examples"],
                    [[g, pct(v["accuracy"]), f"{v['macro_f1']:.3f}", v["support"]]
                     for g, v in groups["groups"].items()])
            + f"\n\nLargest gap between groups: accuracy {pct(groups['accuracy_gap'])}, "
              f"macro-F1 {groups['macro_f1_gap']:.3f}.")
    sections.append("## Intended use and limitations\n"
                    f"Sorts {task.card_snippets(info)['inputs']} into the classes above: "
                    + ", ".join(report.get("labels", [])) + ". It knows nothing else: an input from none of these "
                    "classes still gets one of them, often with high confidence. The figures come from "
                    f"{val_total} validation examples drawn from the same source as the training data; expect "
                    "lower accuracy on data that looks different (other cameras, writers, periods). Check the "
                    "per-class and per-group rows before relying on it for a class or a group with few examples."
                    + "".join(f"\n\nWarning: {w}" for w in report.get("warnings", [])))
    sections.append("## Loading\n" + _loading(task, info))
    return "\n\n".join(sections) + "\n"


def write_card(task, run: RunFolder) -> None:
    model_card.write(run, render(task, run))

"""The model card: README.md in a run's model folder, written from the run folder's own files (recipe, data
report, evaluation), so it says what the model was trained on, how well it does, and how to load it."""
from __future__ import annotations

from pathlib import Path

import yaml

from studio.engine.events import read_json
from studio.engine.models import MODEL_INFO

MODEL_DIR = "model"
CARD = "README.md"
PIPELINE_TAGS = {"image-classification": "image-classification", "text-classification": "text-classification"}


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _loading(info: dict, task: str) -> str:
    kind = "images" if task == "image-classification" else "texts"
    example = '["photo.jpg"]' if kind == "images" else '["my printer is out of toner"]'
    parts = [f"""With the studio installed (`pip install studio`), from this folder:

```python
from studio.engine.inference import Predictor

predictor = Predictor(".")  # this folder
print(predictor.predict({example}, top_k=3))
```"""]
    if info.get("family", "").startswith("hf") and info.get("pooling") == "head":
        parts.append(f"""With transformers alone: `studio export RUN --format hf` writes `hf/` here, a standard
transformers classifier:

```python
from transformers import pipeline

classify = pipeline("{task}", model="hf")
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
""" + (ONNX_IMAGE if kind == "images" else ONNX_TEXT) + """
print([prep["labels"][i] for i in logits.argmax(1)])
```""")
    return "\n\n".join(parts)


ONNX_IMAGE = """from PIL import Image

image = Image.open("photo.jpg").convert("RGB")
scale = prep["resize_shorter_side"] / min(image.size)  # shorter side to this size, then a centre crop
image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
crop = prep["center_crop"]
left, top = (image.width - crop) // 2, (image.height - crop) // 2
x = np.asarray(image.crop((left, top, left + crop, top + crop)), np.float32) / 255
x = ((x - prep["mean"]) / prep["std"]).transpose(2, 0, 1)[None].astype(np.float32)
logits = session.run(["logits"], {"pixel_values": x})[0]"""

ONNX_TEXT = """from transformers import AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained(".")
encoded = tokenizer(["my printer is out of toner"], truncation=True, max_length=prep["max_length"],
                    return_tensors="np")
logits = session.run(["logits"], {name: encoded[name].astype(np.int64) for name in prep["inputs"]})[0]"""


def render(run_dir: Path) -> str:
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
    report = read_json(run_dir / "eval.json") or {}
    data = read_json(run_dir / "data_report.json") or {}
    info = read_json(run_dir / MODEL_DIR / MODEL_INFO) or {}
    task = recipe["task"]
    trainable, total = report.get("trainable_parameters", 0), report.get("total_parameters", 0) or 1
    train_total = sum(data.get("train_counts", {}).values())
    val_total = sum(data.get("validation_counts", {}).values())
    sections = [
        f"---\npipeline_tag: {PIPELINE_TAGS[task]}\nlibrary_name: studio\ntags: [studio, {recipe['strategy']}]\n---",
        f"# {run_dir.name}: {task.replace('-', ' ')} of {len(report.get('labels', []))} classes",
        f"Adapted from **{recipe['model']}** with the **{recipe['strategy']}** strategy "
        f"({trainable:,} of {total:,} parameters trained, {_pct(trainable / total)}).",
        "## Data\n" + f"{train_total} training and {val_total} validation examples from `{recipe['data']['path']}`."
        + (f" {len(data['skipped'])} unreadable examples were skipped." if data.get("skipped") else "") + "\n\n"
        + _table(["class", "training", "validation"],
                 [[c, data["train_counts"][c], data["validation_counts"][c]] for c in data.get("classes", [])]),
        "## Results on the validation examples\n"
        + f"Accuracy {_pct(report.get('accuracy', 0))}, macro-F1 {report.get('macro_f1', 0):.3f}, "
        + f"loss {report.get('loss', 0):.3f}, best epoch {report.get('best_epoch')} "
        + f"of {len(report.get('history', []))} run"
        + (" (stopped early: validation loss had stopped improving)." if report.get("stopped_early") else ".")
        + "\n\n" + _table(["class", "precision", "recall", "F1", "examples"],
                          [[c, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", v["support"]]
                           for c, v in report.get("per_class", {}).items()]),
    ]
    groups = report.get("groups")
    if groups:
        sections.append(
            f"## Results per {recipe['data']['group_column']}\n"
            + _table(["group", "accuracy", "macro-F1", "examples"],
                     [[g, _pct(v["accuracy"]), f"{v['macro_f1']:.3f}", v["support"]]
                      for g, v in groups["groups"].items()])
            + f"\n\nLargest gap between groups: accuracy {_pct(groups['accuracy_gap'])}, "
              f"macro-F1 {groups['macro_f1_gap']:.3f}.")
    sections.append("## Intended use and limitations\n"
                    f"Sorts {'images' if task == 'image-classification' else 'texts'} into the classes above: "
                    + ", ".join(report.get("labels", [])) + ". It knows nothing else: an input from none of these "
                    "classes still gets one of them, often with high confidence. The figures come from "
                    f"{val_total} validation examples drawn from the same source as the training data; expect "
                    "lower accuracy on data that looks different (other cameras, writers, periods). Check the "
                    "per-class and per-group rows before relying on it for a class or a group with few examples."
                    + "".join(f"\n\nWarning: {w}" for w in report.get("warnings", [])))
    sections.append("## Loading\n" + _loading(info, task))
    return "\n\n".join(sections) + "\n"


def write(run_dir: Path) -> Path:
    path = run_dir / MODEL_DIR / CARD
    path.write_text(render(run_dir), encoding="utf-8")
    return path

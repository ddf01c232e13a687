"""What an explanation costs on the CPU (`studio explain`, the Playground's Explain): milliseconds per image (Grad-CAM
on the last feature map, refined by integrated gradients where that map is coarse) and per text (integrated
gradients on the token embeddings), each the median of a few inputs after one to warm up, with the model already
loaded (as the Playground keeps it). The models are feature-extraction runs of the bench's image and text models."""
from __future__ import annotations

import statistics
import time

from bench import studio_side, workloads

INPUTS = 5  # measured inputs per modality, after one to warm up


def section_explain(ctx, results: dict) -> None:
    from studio.run.inference import explainer
    cfg = ctx.cfg
    images = ctx.mnist("fe", 6, 0)
    texts = workloads.text_csv(ctx.work / "explain-texts.csv", rows=60, words=12)
    runs = {"image": (cfg.image_model, str(images)), "text": (cfg.text_model, str(texts))}
    details = {}
    for task, (model, data) in runs.items():
        result = studio_side.must_complete(studio_side.run(ctx.inproc, studio_side.recipe(
            task, model, data, "feature-extraction", epochs=2)))
        explain = explainer(result["run_dir"])
        inputs = (workloads.image_files(images)[0] if task == "image"
                  else [row.split(",")[0] for row in texts.read_text(encoding="utf-8").splitlines()[1:]])
        times, method = [], ""
        for item in inputs[:INPUTS + 1]:
            began = time.perf_counter()
            method = explain.explain([item], ctx.work / "explanations")[0]["method"]
            times.append((time.perf_counter() - began) * 1000)
        prep = explain.predictor.info.preprocessing
        results[f"explain_{task}_ms"] = statistics.median(times[1:])
        details[task] = {"model": model, "method": method, "ms": times[1:], "warm_up_ms": times[0],
                         "input": (f"{prep['image_size']} x {prep['image_size']} px (28 x 28 digits, resized)"
                                   if task == "image" else "12 words, one sentence")}
    results["details"]["explain"] = {**details, "device": str(explain.device), "counted": (
        "wall time of one input's explanation (the calibrated prediction included), model already loaded; median")}

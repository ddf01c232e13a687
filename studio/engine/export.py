"""Taking a trained model elsewhere: a standard transformers folder that pipeline() loads (Hugging Face-backed
models), ONNX checked against torch with onnxruntime, and a zip of the whole model folder.

Exports land inside the run's model folder (model/hf/, model/model.onnx), so the zip carries them too; the zip
itself goes to the run's export/ folder."""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from studio.engine import model_card
from studio.engine.events import read_json, write_json
from studio.engine.model_card import MODEL_DIR
from studio.engine.models import MODEL_INFO, ModelInfo, last_linear_name, load_model, load_tokenizer

log = logging.getLogger(__name__)
FORMATS = ("hf", "onnx", "zip")
HF_DIR = "hf"
ONNX_FILE = "model.onnx"
ONNX_ATOL = 1e-4


class ExportError(ValueError):
    """An export that cannot be made; the message says why and what works instead."""


def model_folder(run_dir: Path) -> Path:
    folder = run_dir / MODEL_DIR
    if not (folder / MODEL_INFO).exists():
        raise ExportError(f"Run {run_dir.name} has no saved model to export (it has not finished successfully).")
    return folder


def export(run_dir: Path, fmt: str) -> Path:
    """Writes one export of a finished run and returns its path."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}.")
    return {"hf": export_hf, "onnx": export_onnx, "zip": export_zip}[fmt](run_dir)


# -- transformers ---------------------------------------------------------------------------------------------------

def export_hf(run_dir: Path) -> Path:
    """model/hf/: the architecture's own AutoModelFor{Sequence,Image}Classification with the studio's head as its
    final layer, labels in config.json, and the tokenizer or image processor."""
    from transformers import AutoConfig, AutoModelForImageClassification, AutoModelForSequenceClassification
    folder = model_folder(run_dir)
    info = ModelInfo.read(folder)
    if not info.family.startswith("hf"):
        raise ExportError(f"{info.model} is not a Hugging Face model, so there is no transformers format for it. "
                          "Use the ONNX export, or load the model folder as its README.md shows.")
    if info.pooling != "head":
        raise ExportError(f"{info.model} is a sentence encoder: it averages its token states, which no standard "
                          "transformers classifier does, so pipeline() cannot reproduce it. Use the ONNX export, "
                          "or load the model folder as its README.md shows.")
    model, _ = load_model(folder)
    text = info.task == "text-classification"
    config = AutoConfig.from_pretrained(folder)
    config.id2label = dict(enumerate(info.labels))
    config.label2id = {label: i for i, label in enumerate(info.labels)}
    config.num_labels = len(info.labels)
    net = (AutoModelForSequenceClassification if text else AutoModelForImageClassification).from_config(config)
    state = model.backbone.net.state_dict()  # its final linear layer was cut (an Identity, without weights)
    final = model.head[-1]
    name = last_linear_name(net)
    state[f"{name}.weight"], state[f"{name}.bias"] = final.weight, final.bias
    net.load_state_dict(state)  # strict: every weight of the standard classifier comes from the trained model
    out = folder / HF_DIR
    net.save_pretrained(out)
    if text:
        tokenizer = load_tokenizer(str(folder), info.trust_remote_code)
        tokenizer.model_max_length = info.preprocessing.max_length
        tokenizer.save_pretrained(out)
    else:
        _image_processor(info).save_pretrained(out)
    return out


def _image_processor(info: ModelInfo):
    """A processor doing what the studio's transform does: shorter side to resize_size, centre crop, normalise."""
    from transformers import BitImageProcessor
    prep = info.preprocessing
    return BitImageProcessor(do_resize=True, size={"shortest_edge": prep.resize_size}, do_center_crop=True,
                             crop_size={"height": prep.image_size, "width": prep.image_size},
                             do_normalize=True, image_mean=list(prep.mean), image_std=list(prep.std),
                             do_convert_rgb=True)


# -- ONNX -------------------------------------------------------------------------------------------------------------

TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class _TextInputs(nn.Module):
    """ONNX graphs take tensors, not a dict: named token inputs in, logits out."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        return self.model(inputs)


def _sample_inputs(run_dir: Path, info: ModelInfo, count: int = 4):
    """A few real validation examples (the run's saved examples), falling back to synthetic ones."""
    examples = [e["input"] for e in (read_json(run_dir / "examples.json") or {}).get("examples", [])][:count]
    if info.preprocessing.kind == "text":
        return examples or ["a short example", "another example text"]
    from studio.engine.data import open_rgb
    from studio.engine.inputs import image_transform
    transform = image_transform(info.preprocessing, augment=False)
    images = [transform(open_rgb(run_dir / path)) for path in examples if (run_dir / path).exists()]
    return torch.stack(images) if images else torch.rand(2, 3, info.preprocessing.image_size,
                                                          info.preprocessing.image_size)


def export_onnx(run_dir: Path) -> Path:
    """model/model.onnx (batch and sequence length dynamic) and onnx_preprocessing.json; checked with onnxruntime
    against torch on real examples, the largest difference saved in onnx_check.json."""
    import onnxruntime
    folder = model_folder(run_dir)
    model, info = load_model(folder)
    samples = _sample_inputs(run_dir, info)
    batch = torch.export.Dim("batch", min=1, max=4096)
    if info.preprocessing.kind == "text":
        from studio.engine.inputs import TextBatches
        tokenizer = load_tokenizer(str(folder), info.trust_remote_code)
        encoded = TextBatches(tokenizer, info.preprocessing.max_length).encode(samples)
        names = [n for n in TOKEN_INPUTS if n in encoded]
        module: nn.Module = _TextInputs(model)
        args = tuple(encoded[n] for n in names)
        length = torch.export.Dim("sequence", min=2, max=info.preprocessing.max_length)
        shapes = tuple({0: batch, 1: length} for _ in names)
    else:
        names, module, args, shapes = ["pixel_values"], model, (samples,), ({0: batch},)
    path = folder / ONNX_FILE
    try:
        torch.onnx.export(module.eval(), args, str(path), input_names=names, output_names=["logits"],
                          dynamic_shapes=shapes, dynamo=True, external_data=False, verbose=False)
    except Exception as exc:  # the exporter raises many kinds; the user needs the gist, the log the details
        log.warning("ONNX export of %s failed", run_dir.name, exc_info=True)
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ExportError(f"This model could not be converted to ONNX ({first[:200]}). The zip export works for "
                          "every model.") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {n: a.numpy() for n, a in zip(names, args)})[0]
    with torch.inference_mode():
        expected = module(*args).float().numpy()
    diff = float(np.abs(got - expected).max())
    check = {"max_abs_diff": diff, "examples": len(expected), "same_top1": bool((got.argmax(1) ==
                                                                                 expected.argmax(1)).all())}
    write_json(folder / "onnx_check.json", check)
    prep = info.preprocessing
    write_json(folder / "onnx_preprocessing.json", {
        "inputs": names, "output": "logits", "labels": info.labels,
        **({"tokenizer": "the tokenizer files in this folder", "max_length": prep.max_length}
           if prep.kind == "text" else
           {"resize_shorter_side": prep.resize_size, "center_crop": prep.image_size, "scale": "0..1",
            "mean": list(prep.mean), "std": list(prep.std), "layout": "NCHW float32 RGB"})})
    if diff > ONNX_ATOL:
        raise ExportError(f"The ONNX model differs from the trained model by up to {diff:.2g} (more than "
                          f"{ONNX_ATOL:g}); do not use it. The other export formats are unaffected.")
    return path


# -- zip ------------------------------------------------------------------------------------------------------------

def export_zip(run_dir: Path) -> Path:
    """export/<run>-model.zip: the whole model folder (weights, labels, model card, any hf/ or ONNX export)."""
    folder = model_folder(run_dir)
    model_card.write(run_dir)  # rewritten from the run folder, so the card matches the metrics on disk
    out = run_dir / "export" / f"{run_dir.name}-model.zip"
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, Path(run_dir.name) / path.relative_to(folder))
    tmp.replace(out)
    return out

"""A trained classifier's export formats: a standard transformers folder that pipeline() loads (Hugging Face
models with their own classifier), ONNX checked against torch, and a zip of the whole model folder.

Exports land inside the run's model folder (model/hf/, model/model.onnx), so the zip carries them too."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from studio import tasks
from studio.engine.export import ExportError, export_zip, model_folder, onnx_checked
from studio.families.base import ModelInfo, last_linear_name
from studio.families.hf import AUTO_CLASSES
from studio.runfolder import HF_DIR, ONNX_CHECK, ONNX_FILE, ONNX_PREPROCESSING, RunFolder, atomic, write_json
from studio.tasks.classification.card import write_card
from studio.tasks.classification.model import load_classifier


def _task_of(folder: Path):
    info = ModelInfo.read(folder)
    return tasks.get(info.task), info


def hf_refused(info: ModelInfo) -> str | None:
    """Why a model cannot be written as a standard transformers classifier, in words; None when it can."""
    if info.family != "hf":
        return (f"{info.model} is not a Hugging Face model, so there is no transformers format for it. Use the "
                "ONNX export, or load the model folder as its README.md shows.")
    if info.pooling != "head":
        return (f"{info.model} is a sentence encoder: it averages its token states, which no standard "
                "transformers classifier does, so pipeline() cannot reproduce it. Use the ONNX export, or load "
                "the model folder as its README.md shows.")
    if info.bypassed:
        return (f"{info.model}'s own classifier puts newly initialised layers ({', '.join(info.bypassed)}) in "
                "front of its final layer; the studio reads the features before them, from pretrained layers "
                "only, which no standard transformers classifier does, so pipeline() cannot reproduce it. Use the "
                "ONNX export, or load the model folder as its README.md shows.")
    return None


def hf(run: RunFolder) -> Path:
    """model/hf/: the architecture's own AutoModelFor…Classification with the studio's head as its final layer,
    labels in config.json, and the tokenizer or processor."""
    import transformers
    folder = model_folder(run)
    task, info = _task_of(folder)
    refused = hf_refused(info)
    if refused:
        raise ExportError(refused)
    model, _ = load_classifier(folder, task.modality)
    config = transformers.AutoConfig.from_pretrained(folder)
    config.id2label = dict(enumerate(info.labels))
    config.label2id = {label: i for i, label in enumerate(info.labels)}
    config.num_labels = len(info.labels)
    net = getattr(transformers, AUTO_CLASSES[task.modality]).from_config(config)
    state = model.backbone.net.state_dict()  # its final linear layer was cut (an Identity, without weights)
    final = model.head[-1]
    name = last_linear_name(net)
    state[f"{name}.weight"], state[f"{name}.bias"] = final.weight, final.bias
    net.load_state_dict(state)  # strict: every weight of the standard classifier comes from the trained model
    out = folder / HF_DIR
    with atomic(out) as tmp:
        net.save_pretrained(tmp)
        task.save_processor(info, folder, tmp)
    return out


class _NamedInputs(nn.Module):
    """ONNX graphs take tensors, not a dict: named inputs in, logits out."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors):
        return self.model(dict(zip(self.names, tensors)))


def onnx(run: RunFolder) -> Path:
    """model/model.onnx (batch, and sequence length where there is one, dynamic), onnx_preprocessing.json and
    onnx_check.json (the largest difference from torch on real examples)."""
    folder = model_folder(run)
    task, info = _task_of(folder)
    model, _ = load_classifier(folder, task.modality)
    encoder = task.encoder(info, str(folder), augment=False)
    # a few real validation examples (those the run saved), else made-up ones
    inputs = encoder.batch(task.example_inputs(run)[:4] or task.onnx_fallback_inputs(info))
    batch = torch.export.Dim("batch", min=1, max=4096)
    if isinstance(inputs, dict):
        names = list(inputs)
        module: nn.Module = _NamedInputs(model, names)
        args = tuple(inputs[n] for n in names)
        axes = {0: batch}
        sequence = task.onnx_sequence_axis(info)
        if sequence:
            axes[sequence[0]] = torch.export.Dim("sequence", min=2, max=sequence[1])
        shapes = {"tensors": tuple(dict(axes) for _ in names)}  # forward(*tensors)
    else:
        names, module, args, shapes = ["pixel_values"], model, (inputs,), ({0: batch},)
    check = onnx_checked(module, args, names, shapes, folder / ONNX_FILE)
    write_json(folder / ONNX_CHECK, check)
    write_json(folder / ONNX_PREPROCESSING, {"inputs": names, "output": "logits", "labels": info.labels,
                                                    **task.onnx_preprocessing(info)})
    return folder / ONNX_FILE


def model_zip(run: RunFolder) -> Path:
    task, _ = _task_of(model_folder(run))
    write_card(task, run)  # rewritten from the run folder, so the card matches the metrics on disk
    return export_zip(run)

"""Taking a trained model elsewhere: what every task's exports share. The zip of the whole model folder, and the
ONNX check (onnxruntime against torch on real examples; a file that differs is never left on disk). Each task
lists its formats (Task.exports); the run layer (studio.run.export) offers them."""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from studio.errors import UserError, first_line
from studio.runfolder import EXPORT_DIR, ModelNotReady, RunFolder, atomic
from studio.runfolder import model_folder as saved_model

log = logging.getLogger(__name__)
ONNX_ATOL = 1e-4  # relative to the largest logit: a solved head's logits can be large, and float32 rounding with them


class ExportError(UserError):
    """An export that cannot be made; the message says why and what works instead."""


def model_folder(run: RunFolder) -> Path:
    try:
        return saved_model(run.path)
    except ModelNotReady as exc:
        raise ExportError(f"{exc} There is nothing to export yet.") from None


def export_zip(run: RunFolder) -> Path:
    """export/<run>-model.zip: the whole model folder (weights, labels, model card, any export made before)."""
    folder = model_folder(run)
    out = run.path / EXPORT_DIR / f"{run.id}-model.zip"
    out.parent.mkdir(exist_ok=True)
    with atomic(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, Path(run.id) / path.relative_to(folder))
    return out


def onnx_checked(module: nn.Module, args: tuple, names: list[str], shapes: tuple, path: Path,
                 output: str = "logits") -> dict:
    """Exports `module` to ONNX at `path` and checks it with onnxruntime against torch on `args`. The file is
    written under a temporary name and renamed only when it matches within ONNX_ATOL (times the largest logit,
    when that is above 1); otherwise ExportError, and
    no ONNX file is left behind. Returns the check's figures."""
    import onnxruntime
    with atomic(path) as tmp:
        try:
            torch.onnx.export(module.eval(), args, str(tmp), input_names=names, output_names=[output],
                              dynamic_shapes=shapes, dynamo=True, external_data=False, verbose=False)
        except Exception as exc:  # the exporter raises many kinds; the user needs the gist, the log the details
            log.warning("ONNX export failed", exc_info=True)
            raise ExportError(f"This model could not be converted to ONNX ({first_line(exc, 200)}). The zip "
                              "export works for every model.") from None
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run([output], {n: a.numpy() for n, a in zip(names, args)})[0]
        with torch.inference_mode():
            expected = module(*args).float().numpy()
        diff = float(np.abs(got - expected).max())
        tolerance = ONNX_ATOL * max(1.0, float(np.abs(expected).max()))
        if diff > tolerance:
            raise ExportError(f"The ONNX model differs from the trained model by up to {diff:.2g} (more than "
                              f"{tolerance:.2g}), so it was not kept. The other export formats are unaffected.")
    return {"max_abs_diff": diff, "tolerance": tolerance, "examples": len(expected),
            "same_top1": bool((got.argmax(-1) == expected.argmax(-1)).all())}

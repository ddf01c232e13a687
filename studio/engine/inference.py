"""Predictions from a finished run's saved model: image files or texts in, top-k labels out."""
from __future__ import annotations

from pathlib import Path

import torch

from studio.engine import evaluation
from studio.engine.data import open_rgb
from studio.engine.device import pick_device
from studio.engine.inputs import TextBatches, image_transform
from studio.engine.models import load_model, load_tokenizer
from studio.engine.model_card import MODEL_DIR
from studio.engine.models import MODEL_INFO


class ModelNotReady(LookupError):
    pass


class Predictor:
    def __init__(self, path: Path | str, device: str = "auto"):
        """path: a run folder, or a model folder (one holding studio_model.json) such as an unzipped export."""
        path = Path(path)
        folder = path if (path / MODEL_INFO).exists() else path / MODEL_DIR
        if not (folder / MODEL_INFO).exists():
            raise ModelNotReady(f"Run {path.resolve().name} has no saved model (it has not finished successfully).")
        self.device = pick_device(device)
        self.model, self.info = load_model(folder)
        self.model.to(self.device)
        self.labels = self.info.labels
        prep = self.info.preprocessing
        if prep.kind == "text":
            self.batches = TextBatches(load_tokenizer(str(folder), self.info.trust_remote_code), prep.max_length)
        else:
            self.transform = image_transform(prep, augment=False)

    @torch.inference_mode()
    def predict(self, inputs: list, top_k: int = 3) -> list[dict]:
        """inputs: texts for a text model; image paths or PIL images for an image model."""
        if self.info.preprocessing.kind == "text":
            batch = {k: v.to(self.device) for k, v in self.batches.encode([str(x) for x in inputs]).items()}
        else:
            images = [x if hasattr(x, "convert") else open_rgb(x) for x in inputs]
            batch = torch.stack([self.transform(im.convert("RGB")) for im in images]).to(self.device)
        return evaluation.top_k(self.model(batch).cpu(), self.labels, top_k)

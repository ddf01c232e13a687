"""Why a saved classifier gave its answer, through captum, for the class it predicted:
- images: a heatmap (greyscale PNG the size of the input, brighter = more important): Grad-CAM on the backbone's
  last feature map (a ViT's last block: its patch tokens as a grid), refined at input resolution by integrated
  gradients where that map is coarser than FINE_CELL pixels per cell (EfficientNet's 7 x 7 misses small objects);
- texts: a weight per word as typed (integrated gradients on the token embeddings, word pieces summed per word);
- audio: a weight per window (occlusion: the window silenced, the drop in the predicted class's probability).
The model is loaded as prediction loads it, so `label` and `score` are the calibrated answer of `studio predict`."""
from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path

import numpy as np
import torch
from captum.attr import FeatureAblation, IntegratedGradients, LayerAttribution, LayerGradCam, \
    LayerIntegratedGradients
from PIL import Image
from torch import nn

from studio.engine.data.audio import AUDIO_EXTENSIONS
from studio.engine.data.images import IMAGE_EXTENSIONS, open_rgb
from studio.engine.loop import to_device

FINE_CELL = 16  # pixels per Grad-CAM cell above which integrated gradients refine the map
IG_STEPS = 16  # integrated gradients' steps: enough for a ranking, a second on the CPU
WINDOW_SECONDS = (0.5, 1.0)  # audio windows: the shortest, and the longest (long clips: fewer forward passes)
MAX_WINDOWS = 30


class Explainer:
    """explain(inputs, out_dir) → one dict per input: label, score, and heatmap / tokens / segments."""

    def __init__(self, task, folder: Path):
        self.task, self.modality = task, task.modality
        self.predictor = task.predictor(folder)
        self.model, self.device = self.predictor.model.float(), self.predictor.device
        self.encoder, self.labels = self.predictor.encoder, self.predictor.labels
        self._lock = threading.Lock()  # captum hooks the model while it works: one explanation at a time
        if self.modality == "image":
            self.layer = _feature_layer(self.model.backbone)

    def check_input(self, value) -> str | None:
        """Why an input cannot be explained (in words), or None."""
        if not isinstance(value, str):
            return None
        suffix = Path(value).suffix.lower()
        if self.modality == "text" and suffix in IMAGE_EXTENSIONS | AUDIO_EXTENSIONS and Path(value).is_file():
            return f"{value} is a file, and this run classifies texts: give the text itself"
        return self.task.check_input(value)

    def explain(self, inputs: list, out_dir: Path | str | None = None) -> list[dict]:
        """out_dir: where images' heatmaps go (texts and clips write nothing)."""
        with self._lock:
            return [self.explain_one(item, out_dir) for item in inputs]

    def explain_one(self, item, out_dir: Path | str | None = None) -> dict:
        answer = self.predictor.predict([item], top_k=1)[0]
        target = self.labels.index(answer["label"])
        found = {"image": self._image, "text": self._text, "audio": self._audio}[self.modality](item, target, out_dir)
        return {"label": answer["label"], "score": answer["score"], **found}

    # -- images ---------------------------------------------------------------------------------------------------
    def _image(self, item, target: int, out_dir) -> dict:
        image = item.convert("RGB") if isinstance(item, Image.Image) else open_rgb(item)
        x = to_device(self.encoder.batch([image]), self.device)
        side = x.shape[-1]
        cam = LayerGradCam(self.model, self.layer).attribute(x, target=target, relu_attributions=True).detach()
        if cam.dim() == 3:  # a ViT's tokens [1, 1, T]: the last g * g are the patches (before them: CLS, …)
            grid = int(cam.shape[-1] ** 0.5)
            cam = cam[..., -grid * grid:].reshape(1, 1, grid, grid)
        heat = _unit(LayerAttribution.interpolate(cam, (side, side), "bilinear"))
        method = f"Grad-CAM ({cam.shape[-2]}x{cam.shape[-1]})"
        if side > FINE_CELL * cam.shape[-1]:
            heat = _unit(heat * self._pixels(x, target))
            method += " x integrated gradients"
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"heatmap-{_digest(image)}.png"
        _on_input(heat[0, 0].cpu().numpy(), image.size, self.predictor.info.preprocessing).save(path)
        return {"heatmap": str(path.resolve()), "method": method}

    def _pixels(self, x: torch.Tensor, target: int) -> torch.Tensor:
        """|integrated gradients| per pixel from a blank image, averaged over a neighbourhood of about a cell: where
        in the coarse map's bright cells the evidence lies."""
        pixels = IntegratedGradients(self.model).attribute(x, baselines=torch.zeros_like(x), target=target,
                                                           n_steps=IG_STEPS, internal_batch_size=IG_STEPS)
        size = FINE_CELL + 1
        return nn.functional.avg_pool2d(pixels.detach().abs().sum(1, keepdim=True), size, 1, size // 2,
                                        count_include_pad=False)

    # -- texts ----------------------------------------------------------------------------------------------------
    def _text(self, text: str, target: int, out_dir) -> dict:
        text = str(text)
        tokenizer = self.encoder.tokenizer
        encoded = self.encoder.encode([text])  # the model's inputs, as prediction makes them
        offsets = tokenizer([text], truncation=True, max_length=self.encoder.max_length,
                            return_offsets_mapping=True)["offset_mapping"][0]
        names = list(encoded)
        ids, *others = [encoded[k].to(self.device) for k in names]
        special = torch.tensor(tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True),
                               device=self.device).bool()
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        baseline = torch.where(special, ids, torch.full_like(ids, pad))  # the words gone, the frame kept

        def forward(token_ids, *rest):
            return self.model(dict(zip(names, (token_ids, *rest))))
        embeddings = self.model.backbone.net.get_input_embeddings()
        attributions = LayerIntegratedGradients(forward, embeddings).attribute(
            ids, baselines=baseline, target=target, additional_forward_args=tuple(others),
            n_steps=IG_STEPS * 2, internal_batch_size=IG_STEPS * 2)
        per_token = attributions.detach().sum(-1)[0].cpu().tolist()
        return {"tokens": _words(text, offsets, per_token, special.tolist()),
                "method": "integrated gradients on the token embeddings"}

    # -- audio ----------------------------------------------------------------------------------------------------
    def _audio(self, item, target: int, out_dir) -> dict:
        samples = torch.from_numpy(np.asarray(self.encoder.load(item), np.float32))
        rate = self.encoder.rate
        seconds = len(samples) / rate
        window = min(max(WINDOW_SECONDS[0], seconds / MAX_WINDOWS), WINDOW_SECONDS[1])
        step = max(1, int(window * rate))
        mask = (torch.arange(len(samples)) // step)[None]

        @torch.no_grad()
        def probabilities(clips: torch.Tensor) -> torch.Tensor:
            batch = to_device(self.encoder.features([c.numpy() for c in clips]), self.device)
            return self.model(batch).float().softmax(-1).cpu()
        drops = FeatureAblation(probabilities).attribute(samples[None], baselines=0.0, target=target,
                                                         feature_mask=mask, perturbations_per_eval=4)[0]
        segments = []
        for index in range(int(mask.max()) + 1):
            start = index * step
            segments.append({"start": round(start / rate, 3), "end": round(min(start + step, len(samples)) / rate, 3),
                             "weight": round(float(drops[start]), 4)})
        return {"segments": segments, "method": f"occlusion ({window:g} s windows silenced)"}


def _feature_layer(backbone: nn.Module) -> nn.Module:
    """The module whose output is the backbone's last feature map: its last block. A ViT's block gives tokens
    [B, T, D]; a tap module shows captum them as [B, D, T] (channels first), which Grad-CAM reads."""
    name = backbone.trunk()[-1]
    block = backbone.get_submodule(name)
    if backbone.convolutional:
        return block
    parent, _, child = name.rpartition(".")
    tapped = _TokenTap(block)
    setattr(backbone.get_submodule(parent), child, tapped)
    return tapped.tap


class _TokenTap(nn.Module):
    """A transformer block with an identity `tap` on its tokens, transposed to channels first and back."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block, self.tap = block, nn.Identity()

    def forward(self, *args, **kwargs):
        out = self.block(*args, **kwargs)
        hidden = out[0] if isinstance(out, tuple) else out
        hidden = self.tap(hidden.transpose(1, 2)).transpose(1, 2)
        return (hidden, *out[1:]) if isinstance(out, tuple) else hidden


def _unit(heat: torch.Tensor) -> torch.Tensor:
    heat = heat.clamp(min=0)
    return heat / heat.max().clamp(min=1e-12)


def _digest(image: Image.Image) -> str:
    return hashlib.sha1(image.tobytes() + repr(image.size).encode()).hexdigest()[:12]


def _on_input(heat: np.ndarray, size: tuple[int, int], prep: dict) -> Image.Image:
    """The model's centre crop's heat placed where that crop lies in the input image (the rest: 0)."""
    width, height = size
    scale = prep["resize_size"] / min(width, height)
    crop = prep["image_size"] / scale  # the crop's side in input pixels
    left, top = (width - crop) / 2, (height - crop) / 2
    tile = Image.fromarray(np.uint8(np.clip(heat, 0, 1) * 255), "L").resize(
        (max(1, round(crop)), max(1, round(crop))), Image.BILINEAR)
    out = Image.new("L", size, 0)
    out.paste(tile, (round(left), round(top)))
    return out


def _words(text: str, offsets: list, weights: list[float], special: list[bool]) -> list[list]:
    """[[word, weight], …] in reading order: the word pieces' weights summed per word (words as typed, split at
    white space), scaled so that the largest magnitude is 1; words past the model's length get 0."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    totals = [0.0] * len(spans)
    for (start, end), weight, is_special in zip(offsets, weights, special):
        if is_special or end <= start:
            continue
        index = next((i for i, (a, b) in enumerate(spans) if a <= start < b), None)
        if index is not None:
            totals[index] += weight
    largest = max((abs(t) for t in totals), default=0.0) or 1.0
    return [[text[a:b], round(t / largest, 4)] for (a, b), t in zip(spans, totals)]

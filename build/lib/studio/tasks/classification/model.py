"""A classifier is a backbone (any family) and a new linear head for the user's labels; saved as one
model.safetensors with studio_model.json (and the family's own files, e.g. config.json), so it rebuilds without
the original weights or a network."""
from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from studio import families
from studio.families.base import Backbone, ModelInfo
from studio.runfolder import WEIGHTS, atomic


class Classifier(nn.Module):
    def __init__(self, backbone: Backbone, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(backbone.feature_dim, num_labels))

    def forward(self, inputs):
        return self.head(self.backbone(inputs))


def save_classifier(model: Classifier, info: ModelInfo, folder: Path, state: dict | None = None) -> None:
    """Writes model.safetensors (every weight: `state` when given, e.g. gathered from shards), studio_model.json,
    and the family's own files."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in (state or model.state_dict()).items()}
    with atomic(folder / WEIGHTS) as tmp:
        save_file(state, str(tmp))
    family = families.get(info.family)
    if hasattr(family, "save_config"):
        family.save_config(model.backbone, folder)
    info.save(folder)


def load_classifier(folder: Path, modality: str) -> tuple[Classifier, ModelInfo]:
    info = ModelInfo.read(folder)
    backbone = families.get(info.family).rebuild(info, folder, modality)
    model = Classifier(backbone, len(info.labels))
    model.load_state_dict(load_file(str(folder / WEIGHTS)))
    return model.eval(), info

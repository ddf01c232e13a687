"""What every backbone family shares: the Backbone interface (inputs → feature vector, named blocks, LoRA
targets), ModelInfo (what it takes to rebuild a trained model), and the helpers families use to cut a classifier."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn

from studio.errors import UserError
from studio.runfolder import MODEL_INFO, write_text

OLD_FAMILY_NAMES = {"hf-text": "hf", "hf-image": "hf"}  # model folders saved before families were modules


class ModelError(UserError):
    """A model that cannot be loaded; the message says why and what to use instead."""


@dataclass
class ModelInfo:
    """What it takes to rebuild a trained model without its original weights: saved as studio_model.json."""
    model: str  # what the recipe named
    family: str  # a name in studio.families (efficientnet-lite, torchvision, hf, ...)
    arch: str  # the family's name for the architecture (HF: "" , config.json is saved beside)
    task: str
    labels: list[str] = field(default_factory=list)
    preprocessing: dict = field(default_factory=dict)  # the task's settings: image size and normalisation, tokens…
    pooling: str = "head"  # HF models: "head" (the architecture's own classifier input) or "mean" (sentence encoders)
    trust_remote_code: bool = False  # the model runs Python code of its own (the user ticked the box for it)
    bypassed: list[str] = field(default_factory=list)  # HF: newly initialised head layers the features skip

    def save(self, folder: Path) -> None:
        write_text(folder / MODEL_INFO, json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, folder: Path) -> "ModelInfo":
        raw = json.loads((Path(folder) / MODEL_INFO).read_text(encoding="utf-8"))
        raw["family"] = OLD_FAMILY_NAMES.get(raw.get("family"), raw.get("family"))
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in raw.items() if k in known})


def blocks_from_trunk(module: nn.Module, trunk: list[str]) -> list[list[str]]:
    """Parameter names grouped by block, input to output. Parameters before the first trunk block (stem,
    embeddings) join the first block; those after the last (final norm, neck) join the last."""
    blocks: list[list[str]] = [[] for _ in trunk]
    stem, neck, seen = [], [], False
    for name, _ in module.named_parameters():
        owner = next((i for i, prefix in enumerate(trunk) if name.startswith(prefix + ".")), None)
        if owner is None:
            (neck if seen else stem).append(name)
        else:
            seen = True
            blocks[owner].append(name)
    blocks = [b for b in blocks if b]
    blocks[0] = stem + blocks[0]
    blocks[-1] = blocks[-1] + neck
    return blocks


def conv_and_linear_targets(module: nn.Module, trunk: list[str]) -> list[str]:
    """Layers LoRA can adapt in a trunk: linear layers and ungrouped convolutions. Attention's out_proj is left
    out because nn.MultiheadAttention reads its weight directly, bypassing any adapter."""
    names = []
    for name, layer in module.named_modules():
        if not any(name.startswith(prefix + ".") for prefix in trunk) or name.endswith("out_proj"):
            continue
        if type(layer) is nn.Linear or (type(layer) is nn.Conv2d and layer.groups == 1):
            names.append(name)
    return names


class Backbone(nn.Module):
    """Maps a batch of inputs to features [B, feature_dim]. `preprocessing` holds what the family knows about
    its inputs (image size and normalisation, say); the task adds its own settings."""
    family: str
    feature_dim: int
    preprocessing: dict

    def trunk(self) -> list[str]:
        raise NotImplementedError

    def blocks(self) -> list[list[str]]:
        return blocks_from_trunk(self, self.trunk())

    def lora_targets(self) -> list[str]:
        return conv_and_linear_targets(self, self.trunk())

    @property
    def convolutional(self) -> bool:
        """A network of 2-D convolutions (more than a ViT's one patch embedding): it runs faster with its
        activations in channels-last memory order."""
        return sum(isinstance(m, nn.Conv2d) for m in self.modules()) > 1


def last_linear_name(net: nn.Module) -> str:
    """The name of the network's last nn.Linear: its classifier, for the families the studio builds."""
    return [name for name, module in net.named_modules() if isinstance(module, nn.Linear)][-1]


def cut_classifier(net: nn.Module) -> int:
    """Replaces the last nn.Linear (the classifier) with Identity; returns its input size."""
    parent_name, _, child_name = last_linear_name(net).rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    features = getattr(parent, child_name).in_features
    setattr(parent, child_name, nn.Identity())
    return features

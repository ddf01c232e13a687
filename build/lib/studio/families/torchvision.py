"""torchvision's ImageNet backbones (ResNet, MobileNet, EfficientNet, ConvNeXt, ViT): the classifier is cut and
the weights' own preset gives the preprocessing. Weights download once into TORCH_HOME."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from studio import catalog
from studio.families.base import Backbone, ModelError, cut_classifier

NAME = "torchvision"


def _trunk(name: str, net: nn.Module) -> list[str]:
    if name.startswith("resnet"):
        return ["net.layer1", "net.layer2", "net.layer3", "net.layer4"]
    if name.startswith("vit"):
        return [f"net.encoder.layers.{n}" for n, _ in net.encoder.layers.named_children()]
    return [f"net.features.{n}" for n, _ in net.features.named_children()]


class TorchvisionBackbone(Backbone):
    family = NAME

    def __init__(self, arch: str, pretrained: bool):
        super().__init__()
        from torchvision import models
        weights = models.get_model_weights(arch).DEFAULT
        try:
            net = models.get_model(arch, weights=weights if pretrained else None)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError; a broken download is a RuntimeError
            raise ModelError(
                f"Could not download the pretrained weights of '{arch}' ({exc.__class__.__name__}). This needs "
                f"internet once. Models that work offline: {', '.join(catalog.offline_names('image-classification'))}."
            ) from None
        self.feature_dim = cut_classifier(net)
        self.net = net
        preset = weights.transforms()
        self.preprocessing = {"image_size": preset.crop_size[0], "resize_size": preset.resize_size[0],
                              "mean": list(preset.mean), "std": list(preset.std)}
        self.arch = arch

    def forward(self, x):
        return self.net(x)

    def trunk(self):
        return _trunk(self.arch, self.net)


def build(ref: str, task: str, modality: str, pretrained: bool,
          trust_remote_code: bool = False) -> Backbone:
    return TorchvisionBackbone(ref, pretrained)


def rebuild(info, folder, modality: str) -> Backbone:
    return TorchvisionBackbone(info.arch, pretrained=False)


def check(ref: str, task: str, modality: str, trust_remote_code: bool = False) -> str:
    from torchvision import models
    url = models.get_model_weights(ref).DEFAULT.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    return ("its weights are already downloaded." if cached.exists()
            else "its weights download once, the first time it trains (this needs internet).")

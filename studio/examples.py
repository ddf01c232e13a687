"""Example data the project makes itself: coloured shapes on noisy backgrounds (images) and a hand-written CSV
of help-desk messages (text, in assets/examples/)."""
from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ASSETS = Path(__file__).resolve().parent.parent / "assets"
HELPDESK_CSV = ASSETS / "examples" / "helpdesk.csv"
HELPDESK_CHAT = ASSETS / "examples" / "helpdesk-chat.csv"  # prompt → answer pairs of a fictional help desk
SHAPES_DIR = ASSETS / "examples" / "shapes"
SHAPES = ("circle", "square", "triangle")


def _shape_image(shape: str, rng: random.Random, size: int) -> Image.Image:
    background = tuple(rng.randint(0, 255) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    noise = Image.effect_noise((size, size), rng.uniform(20, 60)).convert("RGB")
    image = Image.blend(image, noise, 0.3)
    draw = ImageDraw.Draw(image)
    colour = tuple((c + rng.randint(90, 165)) % 256 for c in background)  # always far from the background
    extent = rng.uniform(0.35, 0.7) * size
    x0, y0 = rng.uniform(0, size - extent), rng.uniform(0, size - extent)
    box = (x0, y0, x0 + extent, y0 + extent)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(x0 + extent / 2, y0), (x0, y0 + extent), (x0 + extent, y0 + extent)], fill=colour)
    return image.rotate(rng.uniform(-20, 20), fillcolor=background).filter(ImageFilter.GaussianBlur(0.6))


def make_shapes(dest: Path, per_class: int = 60, size: int = 96, seed: int = 0) -> Path:
    """Writes dest/<shape>/<shape>_<n>.jpg for each shape; returns dest."""
    rng = random.Random(seed)
    for shape in SHAPES:
        folder = Path(dest) / shape
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            _shape_image(shape, rng, size).save(folder / f"{shape}_{n:03d}.jpg", quality=90)
    return Path(dest)


if __name__ == "__main__":  # regenerates the bundled example images
    make_shapes(SHAPES_DIR, per_class=40)

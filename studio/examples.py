"""The generator of the example data the project makes itself: coloured shapes on noisy backgrounds (images),
spoken command words (audio, made with Debian's espeak-ng) and help-desk answer pairs (preference tuning, from the
chat example), in assets/examples/ beside the hand-written CSVs of help-desk messages."""
from __future__ import annotations

import random
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from studio.assets import COMMANDS_DIR, HELPDESK_CHAT, HELPDESK_PREFERENCES, SENTENCE, SENTENCE_CLIP, SHAPES_DIR
from studio.engine.data.audio import to_model

SHAPES = ("circle", "square", "triangle")
COMMANDS = ("yes", "no", "up", "down")
# espeak-ng voices and variants (accents, female and male), each at two speeds and pitches
VOICES = ("en-us", "en-us+f2", "en-gb", "en-gb+f3", "en-gb-scotland", "en-029+m3")
RATE = 16_000


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


def speak(text: str, voice: str, words_per_minute: int, pitch: int) -> np.ndarray:
    """espeak-ng's voice saying `text`, trimmed to the speech (30 ms before, 80 ms after), as float32 at 16 kHz."""
    import soundfile
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-p", str(pitch), "-w", wav.name,
                        text], check=True)
        samples, rate = soundfile.read(wav.name, dtype="float32")
    loud = np.flatnonzero(np.abs(samples) > 0.01 * np.abs(samples).max())
    samples = samples[max(0, loud[0] - int(0.03 * rate)):loud[-1] + int(0.08 * rate)]
    return to_model(samples, rate, RATE)


def make_commands(dest: Path, seed: int = 0) -> Path:
    """Writes dest/<word>/<word>_<n>.flac: each command word in every voice at two speeds; returns dest. Needs
    espeak-ng (apt-get install espeak-ng)."""
    import soundfile
    rng = random.Random(seed)
    for word in COMMANDS:
        folder = Path(dest) / word
        folder.mkdir(parents=True, exist_ok=True)
        n = 0
        for voice in VOICES:
            for speed in (130, 190):
                clip = speak(word, voice, speed, rng.randint(30, 70))
                soundfile.write(folder / f"{word}_{n:03d}.flac", clip, RATE, subtype="PCM_16")
                n += 1
    return Path(dest)


def make_preferences(chat_csv: Path, dest: Path) -> Path:
    """Writes dest: each help-desk prompt with the house-style answer (its greeting and sign-off) as the better one
    and the same answer with a plain greeting and sign-off as the worse one, about as long (a summed log-probability
    then compares the styles, not the lengths); returns dest."""
    import csv
    greeting, sign_off = "Tea-riffic question! ", " Cheers, the Kettlebird crew."
    with open(chat_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(dest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "chosen", "rejected"])
        for row in rows:
            plain = row["response"].removeprefix(greeting).removesuffix(sign_off)
            writer.writerow([row["prompt"], row["response"], f"Hello. {plain} Regards, Support."])
    return Path(dest)


if __name__ == "__main__":  # regenerates the bundled examples
    make_preferences(HELPDESK_CHAT, HELPDESK_PREFERENCES)
    make_shapes(SHAPES_DIR, per_class=40)
    make_commands(COMMANDS_DIR)
    import soundfile
    soundfile.write(SENTENCE_CLIP, speak(SENTENCE, "en-us", 150, 50), RATE, subtype="PCM_16")

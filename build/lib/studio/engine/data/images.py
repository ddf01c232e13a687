"""Opening images as the model will see them: any readable file as 8-bit RGB, upright (EXIF orientation applied),
never decoding one over the pixel limit (STUDIO_MAX_IMAGE_PIXELS, read each time)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from studio.settings import env_number

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # Pillow's own warning threshold (about 9459 × 9459)
NOT_AN_IMAGE = "not a readable image (damaged, cut short, or not really an image)"


class ImageTooLarge(Image.DecompressionBombError, ValueError):
    """An image over the pixel limit: refused before it is decoded. Also a ValueError, so that code catching
    "bad input" errors (OSError, ValueError) catches it too."""


def max_pixels() -> int:
    return int(env_number("STUDIO_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS))


def _check_pixels(image: Image.Image) -> None:
    cap = min(max_pixels(), 2 * (Image.MAX_IMAGE_PIXELS or 2**62))
    width, height = image.size
    if width * height > cap:
        raise ImageTooLarge(f"image is too large ({width} × {height} pixels; the limit is {cap:,} pixels, "
                            "set by STUDIO_MAX_IMAGE_PIXELS)")


def _open(path: str | Path) -> Image.Image:
    """Image.open, with Pillow's own refusal of the very largest images (over twice its limit, before ours can
    look) turned into ImageTooLarge in the same words."""
    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(pixels.group(1)):,} pixels; " if pixels else ""
        raise ImageTooLarge(f"image is too large ({size}the limit is {max_pixels():,} pixels, set by "
                            "STUDIO_MAX_IMAGE_PIXELS)") from None


def open_rgb(path: str | Path) -> Image.Image:
    """Opens any readable image as 8-bit RGB (CMYK, palette, alpha and 16-bit images included), upright: a phone
    photo's EXIF orientation is applied, as every image viewer does. Images over the pixel limit raise
    ImageTooLarge before anything is decoded."""
    with _open(path) as image:
        _check_pixels(image)
        image.load()
        image = ImageOps.exif_transpose(image)
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            # 16-bit and float images: stretch to 8 bits instead of clipping everything to white.
            array = np.asarray(image, dtype=np.float32)
            peak = float(array.max()) or 1.0
            image = Image.fromarray((array * (255.0 / peak)).clip(0, 255).astype(np.uint8))
        if image.mode in ("P", "PA", "LA", "RGBA") or "transparency" in image.info:
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        return image.convert("RGB")


def _conversion_note(image: Image.Image) -> str | None:
    """How an image differs from plain RGB, in words (None when it does not)."""
    mode = image.mode
    if mode == "CMYK":
        return "CMYK colours"
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return "16-bit"
    if mode in ("PA", "LA", "RGBA", "La", "RGBa") or "transparency" in image.info:
        return "palette with transparency" if mode in ("P", "PA") else "transparency, shown on white"
    if getattr(image, "n_frames", 1) > 1:
        return "animated: only the first frame is used"
    return None


def inspect_image(path: Path) -> tuple[str | None, str | None]:
    """(reason it cannot be used or None, how it is converted or None)."""
    if path.stat().st_size == 0:
        return "empty file (0 bytes)", None
    try:
        with _open(path) as image:
            note = _conversion_note(image)
        open_rgb(path)
    except ImageTooLarge as exc:
        return str(exc), None
    except Exception:  # PIL raises many types for broken files; each one just means "unreadable"
        return NOT_AN_IMAGE, None
    return None, note


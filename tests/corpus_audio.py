"""The bad-input corpus's audio cases (tests/corpus.py adds them to CASES): odd clips among good ones are skipped
or converted and named, a class of unusable clips or a wrong table is refused, and a model made for another kind
of input is refused before anything trains. Every clip is generated here."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile
from PIL import Image

from helpers import sound, write_sound_folders

AUDIO = "audio-classification"


def _clips(folder: Path) -> Path:
    return Path(write_sound_folders(folder / "sounds", per_class=3))


def with_clip(name: str, content: Callable[[Path], None], zipped: bool = False):
    """Good synthetic clips plus one odd file, low/<name>; zipped for the browser."""
    def build(folder: Path, models):
        from corpus import Input, zip_folder
        root = _clips(folder)
        content(root / "low" / name)
        data = zip_folder(root, folder / f"{Path(name).stem}-sounds.zip", "sounds") if zipped else root
        return Input(AUDIO, data)
    return build


def _wav_with_codec(target: Path, codec: int = 0x00FF) -> None:
    """A WAV whose header declares AAC audio (format code 0x00FF), which libsndfile does not decode."""
    data = b"\x00\x01" * 800
    fmt = struct.pack("<HHIIHHH", codec, 1, 16_000, 32_000, 2, 16, 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    target.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _m4a(target: Path) -> None:
    target.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom" + bytes(2000))


def _truncated_flac(target: Path) -> None:
    soundfile.write(target, sound("low", 1.0, 16_000), 16_000)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 3])


def _header_only(target: Path) -> None:
    soundfile.write(target, np.zeros(0, np.float32), 16_000)


def _silent(target: Path) -> None:
    soundfile.write(target, np.zeros(16_000, np.float32), 16_000)


def _hour(target: Path) -> None:
    """An hour at 8 kHz, 8 bits (29 MB): a recording left running."""
    with soundfile.SoundFile(target, "w", 8_000, 1, "PCM_U8") as f:
        f.write(np.tile(sound("low", 60.0, 8_000), 60))


def _stereo_96k(target: Path) -> None:
    left = sound("low", 0.5, 96_000)
    soundfile.write(target, np.stack([left, left * 0.5], axis=1), 96_000)


def mixed_with_images(folder: Path, models):
    from corpus import Input
    root = _clips(folder)
    for n in range(2):
        Image.new("RGB", (16, 16), (40 * n, 90, 200)).save(root / "high" / f"photo_{n}.jpg")
    return Input(AUDIO, root)


def class_all_silent(folder: Path, models):
    from corpus import Input
    root = _clips(folder)
    (root / "quiet").mkdir()
    for n in range(3):
        _silent(root / "quiet" / f"quiet_{n}.wav")
    return Input(AUDIO, root)


def table_without_path_column(folder: Path, models):
    from corpus import Input
    root = _clips(folder)
    table = root / "clips.csv"
    table.write_text("file,label\n" + "".join(f"{p.relative_to(root)},{p.parent.name}\n"
                                              for p in sorted(root.rglob("*_*.*"))))
    return Input(AUDIO, table)


def model_for(task: str, name: str | Callable):
    def build(folder: Path, models):
        from corpus import Input, shapes
        data = _clips(folder) if task == AUDIO else shapes(folder / "shapes")
        return Input(task, data, model=name(models) if callable(name) else name)
    return build


def cases(Case) -> list:
    skipped_damaged = r"not a readable audio file"
    return [
        Case("audio-not-really-audio", "data", with_clip("notes.wav", lambda p: p.write_text("shopping list\n")),
             (r"low/notes\.wav", skipped_damaged), "accepted"),
        Case("audio-damaged-clip", "data", with_clip("cut.flac", _truncated_flac, zipped=True),
             (r"low/cut\.flac", skipped_damaged), "accepted", browser=True),
        Case("audio-zero-byte-clip", "data", with_clip("empty.wav", lambda p: p.write_bytes(b"")),
             (r"low/empty\.wav", r"empty file \(0 bytes\)"), "accepted"),
        Case("audio-no-samples", "data", with_clip("header.wav", _header_only),
             (r"low/header\.wav", r"no sound in it \(0 samples\)"), "accepted"),
        Case("audio-silent-clip", "data", with_clip("quiet.wav", _silent, zipped=True),
             (r"low/quiet\.wav", r"silent \(nothing louder than -60 dBFS\)"), "accepted", browser=True),
        Case("audio-unsupported-codec", "data", with_clip("memo.m4a", _m4a, zipped=True),
             (r"low/memo\.m4a", r"unsupported codec: AAC", r"convert it to \.wav"), "accepted", browser=True),
        Case("audio-wav-with-aac-inside", "data", with_clip("aac.wav", _wav_with_codec),
             (r"low/aac\.wav", r"unsupported codec", r"format code 0x00FF"), "accepted"),
        Case("audio-hour-long-clip", "data", with_clip("meeting.wav", _hour),
             (r"low/meeting\.wav \(1 h 0 min long: only its first 30 s are used",
              r"lengths differ widely"), "accepted"),
        Case("audio-stereo-96k", "data", with_clip("stereo.wav", _stereo_96k),
             (r"low/stereo\.wav \(2 channels at 96 kHz: mixed to mono\)", r"sample rates differ widely",
              r"96 kHz \(1\)"), "accepted"),
        Case("audio-mixed-with-images", "data", mixed_with_images,
             (r"2 image\(s\) among the clips were skipped", r"high/photo_0\.jpg", r"choose the image task"),
             "accepted"),
        Case("audio-class-all-silent", "data", class_all_silent,
             (r"Class 'quiet'", r"no usable clips", r"3 × silent")),
        Case("audio-table-without-path-column", "data", table_without_path_column,
             (r"data\.path_column", r"column that holds each clip's file path")),
        Case("audio-model-for-images", "model", model_for("image-classification", "whisper-tiny-en"),
             (r"'whisper-tiny-en' is made for audio-classification",), browser=True),
        Case("image-model-for-audio", "model", model_for(AUDIO, "efficientnet-lite0"),
             (r"'efficientnet-lite0' is made for image-classification", r"whisper-tiny-en"), browser=True),
        Case("text-model-for-audio", "model", model_for(AUDIO, lambda models: models.text),
             (r"is a text model \(bert\), not an audio model",)),
    ]

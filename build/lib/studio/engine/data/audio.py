"""Reading audio clips as the model will hear them: decoded with soundfile (libsndfile: WAV, FLAC, OGG, MP3, AIFF…),
mixed to mono, resampled with soxr, and never more than `max_seconds` of a file read (an hour-long recording
costs no more than its first seconds). Clips that cannot be used get a reason in words: empty, damaged, silent, or
in a codec libsndfile does not decode (AAC in .m4a, WMA…)."""
from __future__ import annotations

import statistics
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.engine.data.words import listing

DECODED = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".caf", ".w64"}
# Audio people have that libsndfile cannot decode: listed so that such a file is named and explained, not ignored.
UNDECODED = {".m4a": "AAC in an MP4 container", ".aac": "AAC", ".mp4": "an MP4 video or audio file",
             ".wma": "Windows Media Audio", ".webm": "WebM (Opus or Vorbis in a video container)",
             ".amr": "AMR (phone voice recording)"}
AUDIO_EXTENSIONS = DECODED | set(UNDECODED)
DEFAULT_MAX_SECONDS = 30.0  # also Whisper's window
MIN_SECONDS = 0.1  # shorter clips are padded with silence: wav2vec2's convolutions need 25 ms at least
SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS: quieter than this, a clip holds nothing to classify
RATES_APART = 4.0  # report sample rates when the highest is this many times the lowest
LENGTHS_APART = 10.0  # report lengths when the longest clip is this many times the median
NOT_AUDIO = "not a readable audio file (damaged, cut short, or not really audio)"
CONVERT_HINT = "convert it to .wav, .flac, .ogg or .mp3 (for example: ffmpeg -i in.m4a out.wav)"
# Container signatures (bytes at offset 0, or 4 for MP4) of formats libsndfile cannot read.
SIGNATURES = ((4, b"ftyp", "an MP4/M4A file (AAC)"), (0, b"\x1aE\xdf\xa3", "a WebM/Matroska file"),
              (0, b"0&\xb2u", "a Windows Media file (WMA)"), (0, b"#!AMR", "an AMR voice recording"))
WAV_CODECS = {0x0001, 0x0003, 0x0006, 0x0007, 0x0002, 0x0011, 0x0031, 0x0040, 0x0055, 0xFFFE}  # libsndfile reads


@dataclass(frozen=True)
class ClipInfo:
    seconds: float
    rate: int
    channels: int


def clip_info(path: str | Path) -> ClipInfo:
    """Length, sample rate and channels from the file's header (nothing decoded)."""
    import soundfile
    info = soundfile.info(str(path))
    return ClipInfo(info.frames / info.samplerate if info.samplerate else 0.0, info.samplerate, info.channels)


def read_clip(path: str | Path, rate: int, max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """float32 mono samples at `rate`: at most the first `max_seconds`, at least MIN_SECONDS (padded)."""
    import soundfile
    with soundfile.SoundFile(str(path)) as clip:
        source_rate = clip.samplerate
        wanted = int(max_seconds * source_rate)
        samples = clip.read(frames=wanted if clip.frames <= 0 else min(clip.frames, wanted), dtype="float32",
                            always_2d=True)
    return to_model(samples, source_rate, rate)


def to_model(samples: np.ndarray, source_rate: int, rate: int) -> np.ndarray:
    """[frames, channels] (or [frames]) at source_rate → mono float32 at rate, padded to MIN_SECONDS."""
    import soxr
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if source_rate != rate and len(mono):
        mono = soxr.resample(mono, source_rate, rate, quality="HQ").astype(np.float32)
    shortest = int(MIN_SECONDS * rate)
    return np.pad(mono, (0, shortest - len(mono))) if len(mono) < shortest else mono


def _undecodable(path: Path) -> str | None:
    """What an audio file is when it is in a format libsndfile cannot decode (from its first bytes)."""
    with open(path, "rb") as f:
        head = f.read(64)
    for offset, magic, words in SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return words
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE" and head[12:16] == b"fmt ":
        codec = struct.unpack("<H", head[20:22])[0]
        if codec not in WAV_CODECS:
            return f"a WAV file whose audio is in an encoding the studio cannot decode (format code 0x{codec:04X})"
    return None


def duration_words(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{seconds:.1f} s"


def inspect_clip(path: Path, max_seconds: float = DEFAULT_MAX_SECONDS) -> tuple[str | None, str | None]:
    """(reason it cannot be used or None, how it is converted or None): decodes at most max_seconds of it."""
    import soundfile
    if path.stat().st_size == 0:
        return "empty file (0 bytes)", None
    suffix = path.suffix.lower()
    if suffix in UNDECODED:
        return f"unsupported codec: {UNDECODED[suffix]}, which the studio cannot decode; {CONVERT_HINT}", None
    try:
        info = clip_info(path)
        if info.seconds <= 0:
            return "no sound in it (0 samples)", None
        samples = read_clip(path, info.rate, max_seconds)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, OSError):
        codec = _undecodable(path)
        return (f"unsupported codec: {codec}; {CONVERT_HINT}" if codec else NOT_AUDIO), None
    if not np.isfinite(samples).all():
        return NOT_AUDIO, None
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        return "silent (nothing louder than -60 dBFS)", None
    notes = []
    if info.channels > 1:
        notes.append(f"{info.channels} channels at {info.rate / 1000:g} kHz: mixed to mono")
    if info.seconds > max_seconds:
        notes.append(f"{duration_words(info.seconds)} long: only its first {max_seconds:g} s are used "
                     "(data.max_seconds)")
    return None, "; ".join(notes) or None


def summary(paths: list[str], rate_words: str) -> list[str]:
    """Notes for the data report when clips differ widely in sample rate or length. rate_words: what becomes of
    the rates (e.g. "every clip is resampled to the model's 16 kHz")."""
    infos = [clip_info(p) for p in paths]
    if not infos:
        return []
    notes = []
    rates = sorted({i.rate for i in infos})
    if rates[-1] >= RATES_APART * rates[0]:
        counts = [f"{r / 1000:g} kHz ({sum(i.rate == r for i in infos)})" for r in rates]
        notes.append(f"The clips' sample rates differ widely: {listing(counts)}; {rate_words}. Clips recorded at "
                     "a low rate lack the high frequencies of the others, which a model can learn as a shortcut.")
    lengths = [i.seconds for i in infos]
    median = statistics.median(lengths)
    if max(lengths) >= LENGTHS_APART * median:
        longest = sorted(zip(lengths, paths), reverse=True)[:3]
        notes.append(f"The clips' lengths differ widely: median {duration_words(median)}, longest "
                     f"{listing([f'{Path(p).name} ({duration_words(s)})' for s, p in longest])}. Trim long "
                     "recordings to the part that holds the sound of their class.")
    return notes

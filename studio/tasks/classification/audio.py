"""Audio classification: a folder (or .zip) of class folders of clips, or a table listing clip files with a label
(and group) column. Clips are decoded, mixed to mono, resampled to the model's rate and cut to data.max_seconds
(default: the model's window, 30 s for Whisper); the model's own feature extractor makes its inputs (Whisper pads
every clip to its 30 s window). Augmentation (time shift, gain, faint noise) when the encoder trains."""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from studio import catalog, tasks
from studio.engine.data import audio, folders
from studio.engine.data.audio import AUDIO_EXTENSIONS, DEFAULT_MAX_SECONDS, inspect_clip, read_clip, to_model
from studio.engine.data.images import IMAGE_EXTENSIONS
from studio.tasks.classification.data import load_table
from studio.engine.data.words import listing
from studio.assets import COMMANDS_DIR
from studio.recipe import DataSpec, Recipe
from studio.tasks.base import Example
from studio.tasks.classification.task import ClassificationTask, Encoder
from studio.engine.data.tables import TABLE_SUFFIXES
from studio.families import hf, packages
from studio.words import said

FILE_KIND = folders.FileKind(
    noun="clip", extensions=frozenset(AUDIO_EXTENSIONS), inspect=inspect_clip,
    converted="were converted for the model (every clip is also resampled to the model's rate)",
    advice="Add readable .wav, .flac, .ogg or .mp3 clips", unreadable="this is not an audio clip we can read")
SHIFT_SECONDS = 0.1  # augmentation: the sound starts up to this much earlier or later
GAIN_DB = 6.0  # … is up to this much louder or quieter
NOISE_DB = -40.0  # … and gets white noise this far below its own level, at most


def augment(samples: np.ndarray, rate: int) -> np.ndarray:
    """A random variation that keeps what the clip is: shifted in time, louder or quieter, a little noise. Drawn
    from torch's generator, as the image transforms are, so a seeded run is repeatable."""
    shift = int(torch.randint(-int(SHIFT_SECONDS * rate), int(SHIFT_SECONDS * rate) + 1, ()).item())
    samples = np.pad(samples, (shift, 0))[:len(samples)] if shift > 0 else np.pad(samples[-shift:], (0, -shift))
    gain = 10 ** (float(torch.empty(()).uniform_(-GAIN_DB, GAIN_DB)) / 20)
    level = float(np.sqrt(np.mean(samples ** 2))) or 1e-3
    noise_db = float(torch.empty(()).uniform_(NOISE_DB - 20, NOISE_DB))
    noise = torch.randn(len(samples)).numpy() * level * 10 ** (noise_db / 20)
    return ((samples + noise) * gain).astype(np.float32)


class Clips(torch.utils.data.Dataset):
    def __init__(self, items: list, labels: list[int], load, vary):
        self.items, self.labels, self.load, self.vary = items, labels, load, vary

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        samples = self.load(self.items[i])
        return (self.vary(samples) if self.vary else samples), self.labels[i]


class AudioEncoder(Encoder):
    """Clips (file paths, or (rate, samples) pairs from a microphone) → the feature extractor's batch."""

    def __init__(self, extractor, max_seconds: float, augmented: bool):
        self.extractor, self.max_seconds = extractor, max_seconds
        self.rate = int(extractor.sampling_rate)
        self.vary = partial(augment, rate=self.rate) if augmented else None
        # Whisper reads a fixed window (its extractor pads to it); other models read a batch padded to its longest.
        self.options = {} if getattr(extractor, "n_samples", None) else {"padding": True}

    def load(self, item) -> np.ndarray:
        if isinstance(item, tuple):
            rate, samples = item
            samples = np.asarray(samples)
            if samples.dtype.kind == "i":  # integer PCM (a browser's microphone): to -1..1
                samples = samples / float(np.iinfo(samples.dtype).max)
            return to_model(samples[: int(self.max_seconds * rate)], int(rate), self.rate)
        return read_clip(item, self.rate, self.max_seconds)

    def features(self, clips: list[np.ndarray]) -> dict[str, torch.Tensor]:
        return dict(self.extractor(clips, sampling_rate=self.rate, return_tensors="pt", **self.options))

    def collate(self, pairs):
        clips, labels = zip(*pairs)
        return self.features(list(clips)), torch.tensor(labels)

    def dataset(self, items, labels):
        return Clips(items, labels, self.load, self.vary)

    def batch(self, items: list) -> dict[str, torch.Tensor]:
        return self.features([self.load(x) for x in items])

    def save(self, folder: Path) -> None:
        self.extractor.save_pretrained(folder)


def feature_extractor(source: str, task: str, trust_remote_code: bool = False):
    from transformers import AutoFeatureExtractor
    try:
        return AutoFeatureExtractor.from_pretrained(source, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers raises many types; each one is explained in words
        raise hf.explain(source, exc, task) from None


class AudioClassification(ClassificationTask):
    name = "audio-classification"
    title = "Audio (sounds, spoken words)"
    modality = "audio"
    view = "audio-classes"  # the page parts that show classified clips (studio/ui/panels)
    noun = "clip"
    data_hint = ("a folder of class sub-folders of clips (.wav, .flac, .ogg, .mp3), a .zip of one, or a "
                 ".csv/.jsonl listing clip files")
    examples = (Example("commands", "spoken commands (audio)", COMMANDS_DIR),)
    file_kind = FILE_KIND
    item_column_words = "Column with the clip paths"
    cpu_inference_per_s, cpu_training_per_s = 1.5, 0.4  # Whisper tiny.en (30 s windows) on 2 CPU cores

    def data_keys(self, data: DataSpec) -> tuple[str, ...]:
        return (*super().data_keys(data), "max_seconds")

    def check_model(self, model: str, trust_remote_code: bool = False) -> str:
        entry = catalog.find(model)
        if entry is not None and entry.convert and entry.task == self.name:
            packages.package_folders(entry)  # installed? (converting waits for the first run)
            return f"{entry.title}, from the {entry.package} package (converted once, on first use)."
        return super().check_model(model, trust_remote_code)

    # -- data -----------------------------------------------------------------------------------------------------
    def accepts(self, path: Path) -> bool:
        if path.suffix.lower() in TABLE_SUFFIXES:
            return folders.lists_files(path, AUDIO_EXTENSIONS)
        return folders.holds(path, AUDIO_EXTENSIONS)

    def read_source(self, path: Path, spec: DataSpec, uploads_dir: Path):
        limit = spec.max_seconds or DEFAULT_MAX_SECONDS
        kind = replace(FILE_KIND, inspect=partial(inspect_clip, max_seconds=limit))
        if path.suffix.lower() in TABLE_SUFFIXES:
            loaded = load_table(path, spec, "path_column", folders.file_reader(path, kind))
        else:
            loaded = folders.load(path, kind, uploads_dir)
        images = [s["item"] for s in loaded.skipped if Path(str(s["item"])).suffix.lower() in IMAGE_EXTENSIONS]
        if images:
            loaded.notes.append(f"{len(images)} image(s) among the clips were skipped ({listing(images)}): this "
                                "task reads audio. For pictures, choose the image task on the Model tab.")
        loaded.notes += audio.summary(loaded.items, "every clip is resampled to the model's rate")
        return loaded

    # -- model ------------------------------------------------------------------------------------------------------
    def train(self, ctx) -> dict:
        entry = catalog.find(ctx.recipe.model)
        if entry is not None and entry.convert and ctx.dist.is_main:
            self._convert(entry, ctx.events)
        return super().train(ctx)

    @staticmethod
    def _convert(entry, events) -> None:
        """The packaged model converted to the transformers format before the pipeline loads it (once per
        workspace), with its progress in the log."""
        if packages.is_converted(entry):
            return
        events.emit("log", message=said("Converting {model} from the {package} package to the transformers "
                                        "format (once for this workspace)…", model=entry.title,
                                        package=entry.package))
        shown = [0]  # the quarters said so far

        def progress(fraction: float) -> None:
            quarter = int(fraction * 4)
            if shown[-1] < quarter < 4:
                shown.append(quarter)
                events.emit("log", message=said("Converting {model}: {percent} %", model=entry.name,
                                                percent=quarter * 25))
        packages.convert(entry, progress)
        events.emit("log", message=said("Converted {model}: from now on it loads in under a second.",
                                        model=entry.name))

    def build_backbone(self, recipe: Recipe):
        backbone, info, ref = super().build_backbone(recipe)
        window = info.preprocessing.get("window_seconds")
        wanted = recipe.data.max_seconds or window or DEFAULT_MAX_SECONDS
        info.preprocessing["max_seconds"] = min(wanted, window) if window else wanted  # Whisper hears 30 s at most
        return backbone, info, ref

    def encoder(self, info, source, augment, recipe=None) -> AudioEncoder:
        extractor = feature_extractor(source, self.name, info.trust_remote_code)
        return AudioEncoder(extractor, info.preprocessing.get("max_seconds", DEFAULT_MAX_SECONDS), augment)

    def check_input(self, value: str) -> str | None:
        path = Path(value)
        if not path.is_file():
            return f"audio file not found: {value}"
        reason, _ = inspect_clip(path)
        return f"{value} cannot be used: {reason}" if reason else None

    # -- exports ------------------------------------------------------------------------------------------------
    def save_processor(self, info, folder: Path, out: Path) -> None:
        feature_extractor(str(folder), self.name, info.trust_remote_code).save_pretrained(out)

    def onnx_fallback_inputs(self, info) -> list:
        rate = int(info.preprocessing["sampling_rate"])
        time = np.arange(rate, dtype=np.float32) / rate
        return [(rate, 0.3 * np.sin(2 * np.pi * 440 * time)), (rate, 0.1 * np.cos(2 * np.pi * 97 * time))]

    def onnx_sequence_axis(self, info) -> tuple[int, int] | None:
        prep = info.preprocessing
        if prep.get("window_seconds"):
            return None  # Whisper: a fixed window, nothing to vary
        return 1, int(prep["max_seconds"] * prep["sampling_rate"])

    def onnx_preprocessing(self, info) -> dict:
        prep = info.preprocessing
        return {"sampling_rate": prep["sampling_rate"], "mono": True, "max_seconds": prep["max_seconds"],
                "feature_extractor": "preprocessor_config.json in this folder (transformers' AutoFeatureExtractor)"}

    def card_snippets(self, info: dict) -> dict[str, str]:
        return {"example": '["clip.wav"]', "inputs": "audio clips", "onnx": ONNX_AUDIO}


ONNX_AUDIO = """import soundfile
import soxr
from transformers import AutoFeatureExtractor

samples, rate = soundfile.read("clip.wav", dtype="float32", always_2d=True)
samples = soxr.resample(samples.mean(axis=1)[: int(prep["max_seconds"] * rate)], rate, prep["sampling_rate"])
extractor = AutoFeatureExtractor.from_pretrained(".")
inputs = extractor([samples], sampling_rate=prep["sampling_rate"], return_tensors="np")
logits = session.run(["logits"], {name: inputs[name] for name in prep["inputs"]})[0]"""

TASK = AudioClassification()
tasks.register(TASK)

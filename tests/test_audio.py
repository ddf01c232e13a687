"""Audio classification, fast tier: clips read as the model hears them, a table of clips, routing of uploads, the
Whisper CTranslate2 converter on a tiny model, and training, prediction and every export on tiny random wav2vec2
and Whisper models (one run each, shared)."""
from __future__ import annotations

import csv
import json
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from helpers import sound
from studio import tasks
from studio.engine.data.audio import MIN_SECONDS, inspect_clip, read_clip
from studio.run.export import export
from studio.run.inference import Predictor
from studio.run.jobs import JobManager
from studio.recipe import DataSpec, Recipe, RecipeError, TrainSpec
from studio.tasks import checked
from studio.workspace import Workspace

AUDIO = "audio-classification"


def test_a_stereo_96k_clip_becomes_mono_at_the_model_rate(tmp_path):
    left, right = sound("low", 1.0, 96_000), sound("high", 1.0, 96_000, seed=1)
    soundfile.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 96_000)
    reason, note = inspect_clip(tmp_path / "stereo.wav")
    assert reason is None and note == "2 channels at 96 kHz: mixed to mono"
    samples = read_clip(tmp_path / "stereo.wav", 16_000)
    assert samples.dtype == np.float32 and samples.shape == (16_000,)
    expected = read_clip(tmp_path / "stereo.wav", 96_000)
    assert np.allclose(expected, (left + right) / 2, atol=1e-4)


def test_clips_are_cut_to_max_seconds_and_very_short_ones_padded(tmp_path):
    soundfile.write(tmp_path / "long.flac", sound("noise", 5.0, 16_000), 16_000)
    soundfile.write(tmp_path / "blip.wav", sound("high", 0.02, 16_000), 16_000)
    assert len(read_clip(tmp_path / "long.flac", 16_000, max_seconds=2.0)) == 32_000
    assert len(read_clip(tmp_path / "blip.wav", 16_000)) == int(MIN_SECONDS * 16_000)
    assert inspect_clip(tmp_path / "long.flac", max_seconds=2.0)[1] == \
        "5.0 s long: only its first 2 s are used (data.max_seconds)"


def test_an_hour_long_clip_is_never_read_whole(tmp_path):
    path = tmp_path / "hour.wav"
    with soundfile.SoundFile(path, "w", 8_000, 1, "PCM_U8") as f:
        f.write(np.tile(sound("low", 60.0, 8_000), 60))
    tracemalloc.start()
    samples = read_clip(path, 16_000, max_seconds=30)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(samples) == 30 * 16_000
    assert peak < 20 * 2**20, f"reading 30 s of an hour took {peak / 2**20:.0f} MB"  # the whole hour: 115 MB
    assert "1 h 0 min long: only its first 30 s are used" in inspect_clip(path)[1]


def test_uploads_go_to_the_task_whose_files_they_hold(sounds, shapes_small, tmp_path):
    audio, image = tasks.get(AUDIO), tasks.get("image-classification")
    assert audio.accepts(Path(sounds)) and not image.accepts(Path(sounds))
    assert image.accepts(Path(shapes_small)) and not audio.accepts(Path(shapes_small))
    table = tmp_path / "clips.csv"
    table.write_text("file,label\nlow/low_0.wav,low\n")
    assert audio.accepts(table) and not image.accepts(table)


def test_a_table_of_clips_with_paths_relative_to_it(sounds, tmp_path):
    table = Path(sounds) / "clips.csv"
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "sound"])
        for path in sorted(Path(sounds).rglob("*_[0-4].*")):
            writer.writerow([path.relative_to(sounds), path.parent.name])
        writer.writerow(["low/missing.wav", "low"])
    spec = DataSpec(path=str(table), path_column="file", label_column="sound", max_seconds=1.0)
    checked(Recipe(task=AUDIO, model="whisper-tiny-en", data=spec))
    data = tasks.get(AUDIO).load_data(spec, 0, tmp_path)
    assert data.classes == ["high", "low", "noise"] and len(data.train_items) + len(data.val_items) == 15
    assert data.report.skipped == [{"item": "row 17", "reason": "file not found: low/missing.wav"}]
    with pytest.raises(RecipeError, match="data.path_column' is missing: a table of clips"):
        checked(Recipe(task=AUDIO, model="whisper-tiny-en", data=DataSpec(path=str(table))))
    with pytest.raises(RecipeError, match="data.max_seconds' is not used by image-classification"):
        checked(Recipe(data=DataSpec(path=sounds, max_seconds=2.0)))


# -- the converter, on a tiny Whisper written in CTranslate2's format ----------------------------------------------

def write_ct2(state: dict[str, torch.Tensor], heads: int, path: Path) -> None:
    """A CTranslate2 model.bin (float16) of a transformers Whisper state dict: the converter's tables inverted."""
    from studio.families import whisper_ct2 as ct2

    def param(name: str, norm: bool) -> str:
        return {"weight": "gamma", "bias": "beta"}[name] if norm else name
    top, roles = {hf: c for c, hf in ct2.TOP_NAMES.items()}, {hf: c for c, hf in ct2.LAYER_NAMES.items()}
    out = {"encoder/num_heads": np.array(heads, np.int16), "decoder/num_heads": np.array(heads, np.int16)}
    for key, value in state.items():
        stem, _, name = key.rpartition(".")
        if key in top:
            out[top[key]] = value.numpy()
        elif stem in top:
            out[f"{top[stem]}/{param(name, stem.endswith('norm'))}"] = value.numpy()
        elif ".layers." in key:
            _, side, _, layer, rest = stem.split(".", 4)
            if rest in roles:
                out[f"{side}/layer_{layer}/{roles[rest]}/{param(name, rest.endswith('norm'))}"] = value.numpy()
            for role, (module, parts) in ct2.FUSED.items():
                if rest == f"{module}.q_proj" and name == "weight":  # once per fused projection
                    prefix = f"{stem.rsplit('.', 1)[0]}"
                    weights = [state[f"{prefix}.{p}_proj.weight"] for p in parts]
                    out[f"{side}/layer_{layer}/{role}/weight"] = torch.cat(weights).numpy()
                    out[f"{side}/layer_{layer}/{role}/bias"] = torch.cat(
                        [state.get(f"{prefix}.{p}_proj.bias", torch.zeros(len(w))) for p, w in zip(parts, weights)]
                    ).numpy()
    with open(path, "wb") as f:
        def text(s: str) -> None:
            f.write(struct.pack("<H", len(s) + 1) + s.encode() + b"\0")
        f.write(struct.pack("<I", 6))
        text("WhisperSpec")
        f.write(struct.pack("<II", 3, len(out)))
        for name, value in out.items():
            value = value if value.dtype == np.int16 else value.astype(np.float16)
            text(name)
            f.write(struct.pack("<B", value.ndim) + b"".join(struct.pack("<I", d) for d in value.shape))
            f.write(struct.pack("<BI", 2 if value.dtype == np.int16 else 4, value.nbytes) + value.tobytes())
        f.write(struct.pack("<I", 1))
        text("decoder/projection/weight")
        text("decoder/embeddings/weight")


def test_the_converter_maps_every_ctranslate2_tensor_onto_transformers(tiny_whisper, tmp_path):
    from transformers import WhisperForConditionalGeneration

    from studio.families import whisper_ct2
    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper)
    state = {k: v.half().float() for k, v in model.state_dict().items()}  # what float16 keeps
    write_ct2(state, heads=2, path=tmp_path / "model.bin")
    converted = whisper_ct2.to_transformers(whisper_ct2.read_ct2([tmp_path / "model.bin"]))
    expected = {k: v for k, v in state.items() if k != "proj_out.weight"}  # tied to the token embeddings
    assert converted.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(converted[key], value), key
    # a model.bin split in two (as whisper-base ships) reads the same
    data = (tmp_path / "model.bin").read_bytes()
    (tmp_path / "a.part1").write_bytes(data[:1000])
    (tmp_path / "a.part2").write_bytes(data[1000:])
    split = whisper_ct2.to_transformers(whisper_ct2.read_ct2([tmp_path / "a.part1", tmp_path / "a.part2"]))
    assert all(torch.equal(split[k], converted[k]) for k in converted)


# -- training, prediction and exports on tiny models ---------------------------------------------------------------

def train(tmp_path_factory, model: str, data: str, strategy: str = "feature-extraction", **train):
    workspace = Workspace(tmp_path_factory.mktemp("audio-ws"))
    job = JobManager(workspace, in_process=True).start(Recipe(
        task=AUDIO, model=model, data=DataSpec(path=data), strategy=strategy,
        train=TrainSpec(**{"epochs": 8, "batch_size": 8, **train})))
    assert job.wait(300) and job.status["status"] == "completed", job.status
    return job.run_dir


@pytest.fixture(scope="module")
def wav2vec2_run(tmp_path_factory, tiny_wav2vec2, sounds):
    return train(tmp_path_factory, tiny_wav2vec2, sounds)


@pytest.fixture(scope="module")
def whisper_run(tmp_path_factory, tiny_whisper, sounds):
    return train(tmp_path_factory, tiny_whisper, sounds)


def test_a_base_model_gets_an_identity_projection(tiny_wav2vec2):
    backbone, info, _ = tasks.get(AUDIO).backbone(tiny_wav2vec2, pretrained=True)
    assert torch.equal(backbone.net.projector.weight, torch.eye(16))
    assert backbone.feature_dim == 16 and info.preprocessing == {"sampling_rate": 16_000}


@pytest.mark.parametrize("which", ["wav2vec2_run", "whisper_run"])
def test_trained_models_predict_and_export(which, request, sounds):
    from transformers import pipeline
    run = request.getfixturevalue(which)
    clips = [str(p) for p in sorted(Path(sounds).rglob("*_5.*"))]
    answers = Predictor(run).predict(clips, top_k=2)
    assert [len(a["top_k"]) for a in answers] == [2, 2, 2]
    hf = export(run, "hf")
    classify = pipeline("audio-classification", model=str(hf))
    rate = classify.feature_extractor.sampling_rate
    assert [classify(read_clip(c, rate))[0]["label"] for c in clips] == [a["label"] for a in answers]
    export(run, "onnx")
    check = json.loads((run / "model" / "onnx_check.json").read_text())
    assert check["max_abs_diff"] <= check["tolerance"] and check["same_top1"]  # 1e-4 of the largest logit
    assert export(run, "zip").is_file()
    card = (run / "model" / "README.md").read_text()
    assert 'pipeline("audio-classification", model="hf")' in card and "audio clips" in card


def test_microphone_samples_predict_like_the_file(wav2vec2_run, sounds):
    clip = sorted(Path(sounds).rglob("*_0.wav"))[0]
    samples, rate = soundfile.read(clip, dtype="int16")
    predictor = Predictor(wav2vec2_run)
    from_file, from_mic = predictor.predict([str(clip), (rate, samples)], top_k=1)
    assert from_file["label"] == from_mic["label"] and abs(from_file["score"] - from_mic["score"]) < 1e-3


def test_the_encoder_trains_with_augmentation(tmp_path_factory, tiny_wav2vec2, sounds):
    run = train(tmp_path_factory, tiny_wav2vec2, sounds, strategy="full", epochs=1, batch_size=4)
    assert (run / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize("strategy", ["lora", "partial", "layerwise", "scratch"])
def test_every_strategy_trains_a_whisper_encoder(strategy, tmp_path_factory, tiny_whisper, sounds):
    run = train(tmp_path_factory, tiny_whisper, sounds, strategy=strategy, epochs=1, batch_size=6)
    assert Predictor(run).predict([str(next(Path(sounds).rglob("*.wav")))], top_k=1)[0]["label"] in (
        "high", "low", "noise")


def test_the_panel_previews_clips_and_plays_mistakes(sounds, tmp_path):
    """The audio panel's views from plain data: lengths by class, a player per picked clip, playable mistakes."""
    import gradio as gr

    from studio.ui.panels import for_app
    from studio.ui.panels.audio import MISTAKE_PLAYERS, PLAYERS
    panel = for_app()["audio-classes"]
    data = tasks.get(AUDIO).load_data(DataSpec(path=sounds), 0, tmp_path)
    with gr.Blocks():
        panel.build_preview()
        panel.build_mistakes()
    shown = panel.show_preview(data, {}, None)
    assert shown[panel.summary]["value"].startswith("**18 clips, ") and len(panel.players) == PLAYERS
    labels = [shown[p]["label"].split(" · ")[0] for p in panel.players if shown[p]["visible"]]
    assert labels == ["high"] * 2 + ["low"] * 2 + ["noise"] * 2
    assert [trace.name for trace in shown[panel.lengths]["value"].data] == ["high", "low", "noise"]
    clip = Path(sorted(Path(sounds).rglob("*.flac"))[0])
    (tmp_path / "misclassified").mkdir()
    (tmp_path / "misclassified" / "000.flac").write_bytes(clip.read_bytes())
    report = {"misclassified": [{"input": str(clip), "true": "low", "predicted": "high", "confidence": 0.9,
                                 "copy": "misclassified/000.flac"}]}
    mistakes = panel.show_mistakes(report, tmp_path, "en")
    players = [mistakes[p] for p in panel.mistake_players]
    assert len(players) == MISTAKE_PLAYERS and players[0]["visible"] and not players[1]["visible"]
    assert players[0]["label"] == "is low, taken for high (90% sure)" and mistakes[panel.mistakes_table]["visible"]

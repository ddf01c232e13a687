"""The offline Whisper tiny.en (converted from its package) on the bundled spoken commands: it transcribes a clip
of known words, and one shared feature-extraction run gives the accuracy, `studio predict`, and exports that agree
with the studio (transformers' pipeline, ONNX)."""
from __future__ import annotations

import json
import time

import pytest

from studio import catalog, cli
from studio.engine.data.audio import read_clip
from studio.run.export import export
from studio.run.inference import Predictor
from studio.assets import COMMANDS_DIR, SENTENCE_CLIP
from studio.families import packages

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def converted():
    return packages.convert(catalog.find("whisper-tiny-en"))


def test_the_converted_tiny_en_transcribes_a_clip_of_known_words(converted):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor
    start = time.perf_counter()
    model = WhisperForConditionalGeneration.from_pretrained(converted)
    processor = WhisperProcessor.from_pretrained(converted)
    loaded = time.perf_counter() - start
    inputs = processor(read_clip(SENTENCE_CLIP, 16_000), sampling_rate=16_000, return_tensors="pt")
    text = processor.batch_decode(model.generate(inputs.input_features), skip_special_tokens=True)[0].lower()
    print(f"\nconverted whisper-tiny-en loads in {loaded:.2f} s and hears: {text!r}")
    for word in ("turn", "kitchen", "lights"):
        assert word in text
    assert loaded < 3.0  # under a second on a quiet machine; this leaves room for a busy one
    assert packages.is_converted(catalog.find("whisper-tiny-en"))  # kept: the next run does not convert again


def test_the_encoder_with_a_new_head_tells_the_commands_apart(commands_run):
    _, run = commands_run
    report = json.loads((run / "eval.json").read_text())
    assert report["accuracy"] >= 0.75, report["per_class"]
    assert (run / "model" / "preprocessor_config.json").is_file()
    assert json.loads((run / "model" / "studio_model.json").read_text())["preprocessing"] == {
        "sampling_rate": 16_000, "window_seconds": 30.0, "max_seconds": 30.0}


def test_studio_predict_answers_for_a_clip(commands_run, capsys, tmp_path):
    workspace, run = commands_run
    clip = sorted((COMMANDS_DIR / "yes").iterdir())[-1]
    assert cli.main(["--workspace", str(workspace), "predict", run.name, str(clip), "--top-k", "2"]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert answer["label"] == "yes" and len(answer["top_k"]) == 2
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    assert cli.main(["--workspace", str(workspace), "predict", run.name, str(tmp_path / "broken.wav")]) == 2
    assert "broken.wav cannot be used: not a readable audio file" in capsys.readouterr().err


def test_the_transformers_export_agrees_with_the_studio(commands_run):
    from transformers import pipeline
    _, run = commands_run
    clips = [str(sorted((COMMANDS_DIR / word).iterdir())[0]) for word in ("down", "no", "up", "yes")]
    studio = [a["label"] for a in Predictor(run).predict(clips, top_k=1)]
    classify = pipeline("audio-classification", model=str(export(run, "hf")))
    assert [classify(read_clip(c, 16_000))[0]["label"] for c in clips] == studio
    assert export(run, "zip").stat().st_size > 1_000_000


@pytest.mark.slow  # the ONNX path itself is checked on a tiny Whisper in the fast tier (test_audio.py)
def test_the_onnx_export_of_the_real_encoder_agrees_with_torch(commands_run):
    _, run = commands_run
    export(run, "onnx")
    check = json.loads((run / "model" / "onnx_check.json").read_text())
    assert check["max_abs_diff"] <= check["tolerance"] and check["same_top1"]  # 1e-4 of the largest logit


@pytest.mark.slow
def test_the_converted_multilingual_base_transcribes_too():
    from transformers import WhisperForConditionalGeneration, WhisperProcessor
    folder = packages.convert(catalog.find("whisper-base"))
    model = WhisperForConditionalGeneration.from_pretrained(folder)
    processor = WhisperProcessor.from_pretrained(folder)
    inputs = processor(read_clip(SENTENCE_CLIP, 16_000), sampling_rate=16_000, return_tensors="pt")
    tokens = model.generate(inputs.input_features, language="en", task="transcribe")
    assert "kitchen" in processor.batch_decode(tokens, skip_special_tokens=True)[0].lower()

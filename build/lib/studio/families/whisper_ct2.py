"""Whisper weights shipped in CTranslate2's format (model.bin, float16) turned into a normal transformers folder:
WhisperForConditionalGeneration weights, config, feature extractor and tokenizer. Written once into the
workspace's cache; from then on the folder loads like any Hugging Face model (about half a second for tiny.en).

CTranslate2 keeps each attention's query, key and value projections fused in one matrix (key without a bias) and
names layers by role (self_attention, attention, ffn); the tables below map those names onto transformers'."""
from __future__ import annotations

import io
import json
import re
import struct
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

CT2_VERSION = 6  # the model.bin layout read here (CTranslate2 3.x and 4.x)
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
BFLOAT16 = 5  # numpy has no bfloat16: its 16 bits are the top half of a float32
SAMPLING_RATE = 16_000
# (CTranslate2 name inside a layer, transformers name inside a layer); the fused projections are split below.
LAYER_NAMES = {"self_attention/layer_norm": "self_attn_layer_norm", "self_attention/linear_1": "self_attn.out_proj",
               "attention/layer_norm": "encoder_attn_layer_norm", "attention/linear_0": "encoder_attn.q_proj",
               "attention/linear_2": "encoder_attn.out_proj", "ffn/layer_norm": "final_layer_norm",
               "ffn/linear_0": "fc1", "ffn/linear_1": "fc2"}
FUSED = {"self_attention/linear_0": ("self_attn", ("q", "k", "v")), "attention/linear_1": ("encoder_attn", ("k", "v"))}
TOP_NAMES = {"encoder/conv1": "model.encoder.conv1", "encoder/conv2": "model.encoder.conv2",
             "encoder/layer_norm": "model.encoder.layer_norm", "decoder/layer_norm": "model.decoder.layer_norm",
             "encoder/position_encodings/encodings": "model.encoder.embed_positions.weight",
             "decoder/position_encodings/encodings": "model.decoder.embed_positions.weight",
             "decoder/embeddings/weight": "model.decoder.embed_tokens.weight"}
PARAM = {"gamma": "weight", "beta": "bias", "weight": "weight", "bias": "bias"}


class ConversionError(ValueError):
    pass


class _Joined(io.RawIOBase):
    """Several files read as one stream: a model.bin split into parts (two packages) is never joined on disk."""

    def __init__(self, paths: list[Path]):
        self.files = [open(p, "rb") for p in paths]

    def readinto(self, buffer) -> int:
        while self.files:
            count = self.files[0].readinto(buffer)
            if count:
                return count
            self.files.pop(0).close()
        return 0

    def readable(self) -> bool:
        return True


def read_ct2(parts: list[Path], progress: Callable[[float], None] = lambda f: None) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 model.bin (given as its parts, in order), by name; aliases resolved."""
    total = sum(p.stat().st_size for p in parts)
    stream = io.BufferedReader(_Joined(parts), 1 << 20)

    def take(fmt: str):
        return struct.unpack("<" + fmt, stream.read(struct.calcsize(fmt)))[0]

    def name() -> str:
        return stream.read(take("H"))[:-1].decode("utf-8")

    if take("I") != CT2_VERSION:
        raise ConversionError("this model.bin is from a CTranslate2 version the converter does not read")
    spec, _ = name(), take("I")
    if spec != "WhisperSpec":
        raise ConversionError(f"this model.bin holds a {spec}, not a Whisper model")
    out, read = {}, 0
    for _ in range(take("I")):
        key = name()
        shape = [take("I") for _ in range(take("B"))]
        dtype, size = take("B"), take("I")
        data = stream.read(size)
        read += size
        if dtype == BFLOAT16:
            value = (np.frombuffer(data, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dtype in DTYPES:
            value = np.frombuffer(data, DTYPES[dtype])
        else:
            raise ConversionError(f"'{key}' has a number type (code {dtype}) the converter does not know")
        out[key] = value.reshape(shape)
        progress(read / total)
    for _ in range(take("I")):
        alias, target = name(), name()
        out[alias] = out[target]
    stream.close()
    return out


def _split(value: np.ndarray, parts: int) -> list[np.ndarray]:
    return np.split(value, parts, axis=0)


def to_transformers(ct2: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The state dict of WhisperForConditionalGeneration (float32) from CTranslate2's variables."""
    if any(key.endswith("_scale") for key in ct2):
        raise ConversionError("this model.bin is quantized (int8); only float16/float32 Whisper models convert")
    state = {}
    for key, value in ct2.items():
        if value.ndim == 0 or key == "decoder/projection/weight":
            continue  # scalars are settings (read by config_from); the output projection is tied to the embeddings
        stem, _, param = key.rpartition("/")
        if key in TOP_NAMES:
            state[TOP_NAMES[key]] = value
            continue
        if stem in TOP_NAMES:
            state[f"{TOP_NAMES[stem]}.{PARAM[param]}"] = value
            continue
        side, layer, role = stem.split("/", 2)  # e.g. encoder, layer_3, self_attention/linear_0
        prefix = f"model.{side}.layers.{layer.removeprefix('layer_')}"
        if role in FUSED:
            module, names = FUSED[role]
            for which, chunk in zip(names, _split(value, len(names))):
                if not (which == "k" and param == "bias"):  # Whisper's key projection has no bias (zeros here)
                    state[f"{prefix}.{module}.{which}_proj.{PARAM[param]}"] = chunk
        else:
            state[f"{prefix}.{LAYER_NAMES[role]}.{PARAM[param]}"] = value
    return {k: torch.from_numpy(v.astype(np.float32)) for k, v in state.items()}  # a copy: the buffers are read-only


def config_from(ct2: dict[str, np.ndarray], tokens: dict[str, int]):
    from transformers import WhisperConfig
    vocab, width = ct2["decoder/embeddings/weight"].shape

    def layers(side: str) -> int:
        return len({k.split("/")[1] for k in ct2 if re.match(fr"{side}/layer_\d+/", k)})
    eot = tokens["<|endoftext|>"]
    return WhisperConfig(
        vocab_size=vocab, d_model=width, num_mel_bins=ct2["encoder/conv1/weight"].shape[1],
        encoder_layers=layers("encoder"), decoder_layers=layers("decoder"),
        encoder_attention_heads=int(ct2["encoder/num_heads"]), decoder_attention_heads=int(ct2["decoder/num_heads"]),
        encoder_ffn_dim=ct2["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=ct2["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=ct2["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=ct2["decoder/position_encodings/encodings"].shape[0],
        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        decoder_start_token_id=tokens["<|startoftranscript|>"], dtype="float32")


def generation_config(ct2_config: dict, tokens: dict[str, int], max_length: int):
    """What WhisperForConditionalGeneration.generate needs: the special tokens, which tokens never to emit, and
    (multilingual models) the language and task tokens."""
    from transformers import GenerationConfig
    multilingual = "<|transcribe|>" in tokens and len(ct2_config.get("lang_ids", [])) > 1
    eot = tokens["<|endoftext|>"]
    settings = dict(
        decoder_start_token_id=tokens["<|startoftranscript|>"], bos_token_id=eot, eos_token_id=eot,
        pad_token_id=eot, no_timestamps_token_id=tokens["<|notimestamps|>"],
        prev_sot_token_id=tokens.get("<|startofprev|>"), max_length=max_length, max_initial_timestamp_index=50,
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        alignment_heads=ct2_config.get("alignment_heads"), is_multilingual=multilingual, return_timestamps=False)
    if multilingual:
        by_id = {i: t for t, i in tokens.items()}
        settings.update(lang_to_id={by_id[i]: i for i in ct2_config["lang_ids"] if i in by_id},
                        task_to_id={task: tokens[f"<|{task}|>"] for task in ("transcribe", "translate")})
    else:
        settings["forced_decoder_ids"] = [[1, tokens["<|notimestamps|>"]]]
    return GenerationConfig(**settings)


def convert(parts: list[Path], folder: Path, out: Path, progress: Callable[[float], None] = lambda f: None) -> None:
    """Writes a transformers Whisper folder at `out` from model.bin `parts` and the config.json and
    tokenizer.json in `folder` (the package's files)."""
    from safetensors.torch import save_file
    from transformers import WhisperFeatureExtractor, WhisperTokenizer
    ct2 = read_ct2(parts, lambda f: progress(0.8 * f))
    tokenizer = WhisperTokenizer(tokenizer_file=str(folder / "tokenizer.json"))
    tokens = {t: i for t, i in tokenizer.get_vocab().items() if t.startswith("<|")}
    config = config_from(ct2, tokens)
    state = to_transformers(ct2)
    progress(0.9)
    out.mkdir(parents=True)
    config.architectures = ["WhisperForConditionalGeneration"]
    config.save_pretrained(out)
    ct2_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    generation_config(ct2_config, tokens, config.max_target_positions).save_pretrained(out)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    WhisperFeatureExtractor(feature_size=config.num_mel_bins, sampling_rate=SAMPLING_RATE).save_pretrained(out)
    tokenizer.save_pretrained(out)
    progress(1.0)


def model_files(folders: Iterable[Path]) -> tuple[list[Path], Path]:
    """(the model.bin parts in order, the folder with config.json and tokenizer.json) inside package folders."""
    parts, settings = [], None
    for folder in folders:
        parts += sorted(p for p in folder.rglob("model.bin*") if p.is_file())
        found = next((p.parent for p in folder.rglob("tokenizer.json")), None)
        settings = settings or found
    if not parts or settings is None:
        raise ConversionError("the package holds no CTranslate2 model.bin with its tokenizer.json")
    return parts, settings

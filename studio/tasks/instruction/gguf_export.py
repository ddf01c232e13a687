"""A merged chat model as one GGUF file for llama.cpp and Ollama, written with gguf-py's own writer, tensor-name map
and quantiser, the way llama.cpp's convert_hf_to_gguf.py writes it (byte-level BPE vocabulary, merges, special
ids, the chat template in the metadata; Llama's q/k rows permuted for llama.cpp's rotary layout). Checked before
it is kept: gguf's reader finds every tensor the architecture needs with the right shape and type, and
transformers reads the file back and answers like the merged model (check())."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from studio.engine.export import ExportError

# gguf's architecture for each transformers model_type it can be written as (Mistral is llama.cpp's llama).
ARCHITECTURES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2"}
PERMUTED = {"llama"}  # architectures whose q/k rows llama.cpp wants in its rotary layout
DEFAULT_TYPE = "q8_0"


@dataclass(frozen=True)
class GgufType:
    name: str  # as --gguf-type says it
    tensor: str  # gguf.GGMLQuantizationType member for 2-D weights
    file: str  # gguf.LlamaFileType member
    bytes_per_weight: float  # q8_0: 32 int8 and one f16 scale per block of 32
    tolerance: float | None  # largest logit difference allowed, times the largest logit (None: top-1 agreement)


TYPES = {t.name: t for t in (GgufType("q8_0", "Q8_0", "MOSTLY_Q8_0", 34 / 32, None),
                             GgufType("f16", "F16", "MOSTLY_F16", 2.0, 1e-2),
                             GgufType("f32", "F32", "ALL_F32", 4.0, 1e-4))}
Q8_AGREEMENT = 0.95  # q8_0: the share of positions whose most likely next token must stay the same
DECIDED_MARGIN = 0.5  # ...counted where the merged model prefers its top token by this many logits (a random
#                       model's near-ties flip under any rounding and say nothing about the file)


def unsupported(model_type: str) -> str | None:
    if model_type in ARCHITECTURES:
        return None
    return (f"GGUF export knows the Llama, Mistral and Qwen2 architectures (SmolLM2, Llama, Mistral, Qwen2/2.5); "
            f"this model is a {model_type or 'different'} model. Export the transformers folder (hf) instead; "
            "llama.cpp's convert_hf_to_gguf.py may convert it.")


def checked_type(name: str) -> GgufType:
    if name not in TYPES:
        raise ExportError(f"Unknown GGUF type '{name}'; choose one of: {', '.join(TYPES)}.")
    return TYPES[name]


def estimated_bytes(parameters: int, gguf_type: str) -> int:
    return int(parameters * TYPES[gguf_type].bytes_per_weight)


def _rope_theta(config) -> float:
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ExportError("This model stretches its rotary positions (rope scaling, as Llama 3.1 and later do), "
                          "which the studio's GGUF writer does not write yet. Export the transformers folder (hf) "
                          "and convert it with llama.cpp's convert_hf_to_gguf.py.")
    return float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def _pre_tokenizer(tokenizer) -> str:
    """llama.cpp's name for how the tokenizer splits text before its merges, read from tokenizer.json."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS
    pre = json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre])
    kinds = [p.get("type") for p in parts]
    regexes = [p["pattern"].get("Regex") for p in parts if p.get("type") == "Split"]
    if regexes:  # the first of the names llama.cpp and transformers both give that split
        name = next((n for n, r in GGUF_PRE_TOKENIZER_SPLITS.items() if r == regexes[0]), None)
        if name:
            return name
    elif kinds == ["ByteLevel"]:
        return "gpt-2"
    elif kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits"):
        return "smollm"
    raise ExportError("This model's tokenizer splits text in a way llama.cpp has no name for here (it is not a "
                      "byte-level BPE tokenizer of the Llama 3, Qwen2, Mistral, SmolLM or GPT-2 kind), so a GGUF "
                      "file would read text differently. Export the transformers folder (hf) instead.")


def _vocabulary(tokenizer, vocab_size: int) -> tuple[list[str], list[int]]:
    """Tokens and their types as convert_hf_to_gguf's gpt2-style vocabulary writes them: special added tokens
    are CONTROL, other added ones USER_DEFINED, rows the embedding has past the tokenizer [PADn]."""
    from gguf import TokenType
    by_id = {i: token for token, i in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
        elif i in added:
            tokens.append(by_id[i])
            types.append(TokenType.CONTROL if added[i].special else TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(TokenType.NORMAL)
    return tokens, types


def _add_metadata(writer, config, arch: str, gguf_type: GgufType, name: str) -> None:
    import gguf
    heads = config.num_attention_heads
    writer.add_name(name)
    writer.add_type(gguf.GGUFType.MODEL)
    # Mistral v0.1 attends to a sliding window, which llama.cpp's llama does not: its context stops at the window
    window = getattr(config, "sliding_window", None) if config.model_type == "mistral" else None
    writer.add_context_length(min(config.max_position_embeddings, window or config.max_position_embeddings))
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or heads)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    if arch == "llama":
        writer.add_rope_dimension_count(getattr(config, "head_dim", None) or config.hidden_size // heads)
    writer.add_file_type(getattr(gguf.LlamaFileType, gguf_type.file))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _add_tokenizer(writer, tokenizer, tokenizer_dir: Path, vocab_size: int, eot: str) -> None:
    import gguf
    tokens, types = _vocabulary(tokenizer, vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(tokenizer))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(tokenizer_dir, load_merges=True, n_vocab=vocab_size)
    if not special.merges:
        raise ExportError("This model's tokenizer has no BPE merges, so it is not one GGUF's gpt2 vocabulary can "
                          "hold. Export the transformers folder (hf) instead.")
    special.chat_template = tokenizer.chat_template  # the one the run trained with
    special.add_to_gguf(writer, quiet=True)
    writer.add_eot_token_id(tokenizer.convert_tokens_to_ids(eot))


def _permuted(weights: np.ndarray, heads: int) -> np.ndarray:
    """Llama's q/k rows from transformers' rotary layout (halves) to llama.cpp's (pairs), as convert_hf_to_gguf
    permutes them; transformers' GGUF reader undoes it."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _tensors(model, arch: str, gguf_type: GgufType):
    """(gguf name, data to write, its gguf type) for every weight; 1-D tensors stay f32 as llama.cpp keeps them,
    rows that do not fill q8_0's blocks of 32 fall back to f16."""
    import gguf
    config = model.config
    names = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, arch.upper()), config.num_hidden_layers)
    heads, kv_heads = config.num_attention_heads, getattr(config, "num_key_value_heads", None) or \
        config.num_attention_heads
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # llama.cpp reuses token_embd when there is no output.weight
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ExportError(f"The weight '{hf_name}' has no place in a {arch} GGUF file, so this model cannot "
                              "be written as one. Export the transformers folder (hf) instead.")
        data = tensor.detach().float().cpu().numpy()
        if arch in PERMUTED and name.endswith("attn_q.weight"):
            data = _permuted(data, heads)
        elif arch in PERMUTED and name.endswith("attn_k.weight"):
            data = _permuted(data, kv_heads)
        qtype = getattr(gguf.GGMLQuantizationType, gguf_type.tensor) if data.ndim > 1 else \
            gguf.GGMLQuantizationType.F32
        if qtype == gguf.GGMLQuantizationType.Q8_0 and data.shape[-1] % 32:
            qtype = gguf.GGMLQuantizationType.F16
        yield name, data, qtype


def write(model, tokenizer, tokenizer_dir: Path, path: Path, gguf_type: str, name: str, eot: str) -> dict:
    """Writes `path`; returns {gguf name: (shape in ggml's order, type name)} of what it holds."""
    import gguf
    config = model.config
    arch = ARCHITECTURES.get(config.model_type)
    if arch is None:
        raise ExportError(unsupported(config.model_type))
    chosen = checked_type(gguf_type)
    writer = gguf.GGUFWriter(str(path), arch)
    _add_metadata(writer, config, arch, chosen, name)
    _add_tokenizer(writer, tokenizer, tokenizer_dir, config.vocab_size, eot)
    written = {}
    for tensor_name, data, qtype in _tensors(model, arch, chosen):
        writer.add_tensor(tensor_name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        written[tensor_name] = (tuple(reversed(data.shape)), qtype.name)  # ggml counts dimensions innermost first
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written


def required_tensors(config) -> list[str]:
    """The tensors llama.cpp's llama and qwen2 graphs read, in gguf's own names."""
    from gguf import MODEL_TENSOR as T, TENSOR_NAMES
    names = [TENSOR_NAMES[T.TOKEN_EMBD] + ".weight", TENSOR_NAMES[T.OUTPUT_NORM] + ".weight"]
    if not config.tie_word_embeddings:
        names.append(TENSOR_NAMES[T.OUTPUT] + ".weight")
    block = [T.ATTN_NORM, T.ATTN_Q, T.ATTN_K, T.ATTN_V, T.ATTN_OUT, T.FFN_NORM, T.FFN_GATE, T.FFN_UP, T.FFN_DOWN]
    biases = [T.ATTN_Q, T.ATTN_K, T.ATTN_V] if config.model_type == "qwen2" else []
    for layer in range(config.num_hidden_layers):
        names += [TENSOR_NAMES[t].format(bid=layer) + ".weight" for t in block]
        names += [TENSOR_NAMES[t].format(bid=layer) + ".bias" for t in biases]
    return names


def _check_tensors(path: Path, written: dict, config) -> None:
    """gguf's reader finds every tensor the architecture needs, with the shape and type written."""
    import gguf
    found = {t.name: (tuple(int(n) for n in t.shape), t.tensor_type.name) for t in gguf.GGUFReader(path).tensors}
    missing = [n for n in required_tensors(config) if n not in found]
    wrong = [n for n, expected in written.items() if found.get(n) != expected]
    if missing or wrong:
        raise ExportError(f"The GGUF file came out incomplete (missing {missing[:3]}, wrong shape or type "
                          f"{wrong[:3]}), so it was not kept. The transformers export (hf) is unaffected.")


def check(model, path: Path, written: dict, gguf_type: str, inputs: list[list[int]]) -> dict:
    """Reads the file back (gguf's reader, then transformers) and compares its logits on `inputs` (token ids)
    with the merged model's; ExportError when they differ more than the type allows."""
    from transformers import AutoModelForCausalLM
    _check_tensors(path, written, model.config)
    loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    diffs, agree, decided_agree, decided = [], 0, 0, 0
    with torch.inference_mode():
        for ids in inputs:
            batch = torch.tensor([ids])
            expected, got = model(batch).logits[0].float(), loaded(batch).logits[0].float()
            if not torch.isfinite(got).all():
                raise ExportError("The GGUF file reads back with non-finite numbers, so it was not kept. Try "
                                  "--gguf-type f16.")
            diffs.append(float((got - expected).abs().max() / max(1.0, float(expected.abs().max()))))
            same = got.argmax(-1) == expected.argmax(-1)
            top2 = expected.topk(2, dim=-1).values
            sure = (top2[:, 0] - top2[:, 1]) > DECIDED_MARGIN
            agree, decided = agree + int(same.sum()), decided + int(sure.sum())
            decided_agree += int((same & sure).sum())
    positions = sum(len(ids) for ids in inputs)
    figures = {"type": gguf_type, "examples": len(inputs), "positions": positions, "max_rel_diff": max(diffs),
               "top1_agreement": agree / positions,
               "decided_top1_agreement": decided_agree / decided if decided else None}
    tolerance = TYPES[gguf_type].tolerance
    if tolerance is not None and figures["max_rel_diff"] > tolerance:
        raise ExportError(f"The GGUF file's answers differ from the merged model's by up to "
                          f"{figures['max_rel_diff']:.2g} of the largest logit (more than {tolerance:g} for "
                          f"{gguf_type}), so it was not kept. The transformers export (hf) is unaffected.")
    if tolerance is None and decided and figures["decided_top1_agreement"] < Q8_AGREEMENT:
        raise ExportError(f"The 8-bit GGUF file picks the same next token as the merged model only "
                          f"{figures['decided_top1_agreement']:.0%} of the time (at least {Q8_AGREEMENT:.0%} "
                          "needed), so it was not kept. Try --gguf-type f16.")
    return figures

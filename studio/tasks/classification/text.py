"""Text classification: a .csv or .jsonl with a text column and a label column (and optionally a group column).
Texts are tokenised by the model's own tokenizer, cut to data.max_length tokens, padded per batch."""
from __future__ import annotations

from pathlib import Path

import torch

from studio import tasks
from studio.engine.data.errors import DataError
from studio.tasks.classification.data import load_table
from studio.engine.data.words import listing
from studio.assets import HELPDESK_CSV
from studio.families import hf
from studio.recipe import DataSpec
from studio.tasks.base import TOKENS_KEPT, Example
from studio.tasks.classification.task import ClassificationTask, Encoder
from studio.engine.data.tables import TABLE_SUFFIXES

MAX_TEXT_CHARS = 20_000  # longer texts are cut: the model reads at most data.max_length tokens anyway
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class TextEncoder(Encoder):
    """Tokenises (text, label) pairs into dynamically padded batches."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length

    def encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True,
                                 return_tensors="pt")
        return {k: v for k, v in encoded.items() if k in TOKEN_INPUTS}

    def collate(self, pairs):
        texts, labels = zip(*pairs)
        return self.encode(list(texts)), torch.tensor(labels)

    def dataset(self, items, labels):
        return list(zip(items, labels))

    def batch(self, items: list) -> dict[str, torch.Tensor]:
        return self.encode([str(x) for x in items])

    def save(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(folder)


class TextClassification(ClassificationTask):
    name = "text-classification"
    title = "Text (messages, reviews, tickets)"
    modality = "text"
    view = "text-classes"  # the page parts that show classified texts (studio/ui/panels)
    noun = "text"
    inputs_are_files = False
    table_item_key = "text_column"
    item_column_words = "Column with the text"
    item_column_guesses = ("text", "message", "sentence", "review", "body", "content")
    data_hint = "a .csv or .jsonl file with a text column and a label column"
    examples = (Example("helpdesk", "help-desk messages (text)", HELPDESK_CSV),)
    cpu_inference_per_s, cpu_training_per_s = 250.0, 40.0  # MiniLM on 2 CPU cores
    gpu_strategy = "lora"
    data_defaults = {"max_length": 128}
    fields = (TOKENS_KEPT,)

    def data_keys(self, data: DataSpec) -> tuple[str, ...]:
        return ("text_column", "label_column", "group_column", "max_length", "corrections", "drop_duplicates")

    def accepts(self, path: Path) -> bool:
        return path.suffix.lower() in TABLE_SUFFIXES

    def read_source(self, path: Path, spec: DataSpec, uploads_dir: Path):
        if path.suffix.lower() not in TABLE_SUFFIXES:
            raise DataError(f"{path.name} is not a .csv or .jsonl file. For text, give a table with a text column "
                            "and a label column.")
        cut = []

        def read_text(value: str, row: str):
            if not value.strip():
                return None, "empty text", None
            if len(value) > MAX_TEXT_CHARS:
                cut.append(row)
            return value[:MAX_TEXT_CHARS], None, None
        loaded = load_table(path, spec, "text_column", read_text)
        if cut:
            tokens = spec.max_length or self.data_defaults["max_length"]
            loaded.notes.append(f"{len(cut)} text(s) longer than {MAX_TEXT_CHARS:,} characters were cut to that "
                                f"length ({listing(cut)}); the model reads only the first {tokens} tokens "
                                "of each text.")
        return loaded

    def preprocessing(self, backbone, max_length: int) -> dict:
        return {**backbone.preprocessing, "max_length": max_length}

    def encoder(self, info, source, augment, recipe=None) -> TextEncoder:
        tokenizer = hf.load_tokenizer(source, self.name, info.trust_remote_code)
        return TextEncoder(tokenizer, info.preprocessing["max_length"])

    # -- exports ------------------------------------------------------------------------------------------------
    def save_processor(self, info, folder: Path, out: Path) -> None:
        tokenizer = hf.load_tokenizer(str(folder), self.name, info.trust_remote_code)
        tokenizer.model_max_length = info.preprocessing["max_length"]
        tokenizer.save_pretrained(out)

    def onnx_fallback_inputs(self, info) -> list:
        return ["a short example", "another example text"]

    def onnx_preprocessing(self, info) -> dict:
        return {"tokenizer": "the tokenizer files in this folder", "max_length": info.preprocessing["max_length"]}

    def card_snippets(self, info: dict) -> dict[str, str]:
        return {"example": '["my printer is out of toner"]', "inputs": "texts", "onnx": ONNX_TEXT}


ONNX_TEXT = """from transformers import AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained(".")
encoded = tokenizer(["my printer is out of toner"], truncation=True, max_length=prep["max_length"],
                    return_tensors="np")
logits = session.run(["logits"], {name: encoded[name].astype(np.int64) for name in prep["inputs"]})[0]"""

TASK = TextClassification()
tasks.register(TASK)

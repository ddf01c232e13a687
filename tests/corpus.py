"""The bad-input corpus: every case is generated here (no checked-in blobs), as one table that the engine API, the
command line and the browser tests all run.

A case builds its input in a folder and says what must come back: `refused` cases end in an error whose message
names the problem; `accepted` cases train, with a warning or a skipped-items entry that names the file or row.
`expect` holds regular expressions (case-insensitive) that the message must contain.
"""
from __future__ import annotations

import csv
import json
import os
import pickle
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PIL import Image

import corpus_audio
from studio.examples import make_shapes

IMAGE, TEXT, CHAT = "image-classification", "text-classification", "instruction-tuning"
PREFERENCE = "preference-tuning"
OFFLINE_IMAGE = "Models that work offline: efficientnet-lite0"


@dataclass
class Models:
    """Tiny local models (random weights) that accepted cases train with."""
    image: str
    text: str
    audio: str = ""  # a tiny Whisper
    chat: str = ""  # a tiny Llama with a chat template

    def for_task(self, task: str) -> str:
        return {IMAGE: self.image, TEXT: self.text, CHAT: self.chat, PREFERENCE: self.chat}.get(task, self.audio)


@dataclass
class Input:
    task: str = IMAGE
    data: Path | None = None  # folder, .zip, .csv or .jsonl
    model: str | None = None  # None: the tiny model for the task
    spec: dict = field(default_factory=dict)  # data.* overrides (columns)
    strategy: str | None = None  # None: feature extraction (classification), lora (instruction tuning)
    options: dict = field(default_factory=dict)  # strategy_options
    recipe_text: str | bytes | None = None  # a recipe case: this is the whole recipe file
    escape: list[Path] = field(default_factory=list)  # paths a malicious input tries to write: must never exist


@dataclass(frozen=True)
class Case:
    id: str
    layer: str  # data | recipe | model: the engine API that answers it
    build: Callable[[Path, Models], Input]
    expect: tuple[str, ...]
    outcome: str = "refused"  # refused | accepted
    env: tuple[tuple[str, str], ...] = ()  # environment variables for this case (limits)
    browser: bool = False  # one of the dozen the browser runs


# -- builders' helpers ----------------------------------------------------------------------------------------------

def shapes(folder: Path, per_class: int = 3, drop: tuple[str, ...] = ()) -> Path:
    """circle/, square/, triangle/ of small generated images (minus the classes in `drop`)."""
    root = make_shapes(folder, per_class=per_class, size=24)
    for name in drop:
        for path in (root / name).iterdir():
            path.unlink()
        (root / name).rmdir()
    return root


def zip_folder(folder: Path, archive: Path, wrapper: str | None = None) -> Path:
    """Zips a folder (empty sub-folders included), optionally inside a wrapper folder, as users' tools do."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            name = path.relative_to(folder).as_posix()
            name = f"{wrapper}/{name}" if wrapper else name
            if path.is_dir():
                if not any(path.iterdir()):
                    zf.writestr(name + "/", b"")
            else:
                zf.write(path, name)
    return archive


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height pixels, with almost no pixel data: Pillow reads the size
    without decoding, which is how a decompression bomb looks before it explodes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) \
        + chunk(b"IEND", b"")


def noise_png(path: Path, size: int = 64) -> bytes:
    Image.effect_noise((size, size), 80).convert("RGB").save(path)
    return path.read_bytes()


def write_csv(path: Path, rows: list[list[str]], header=("text", "label"), encoding="utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def good_rows(n: int = 4, labels=("a", "b")) -> list[list[str]]:
    return [[f"message number {i} about {label}", label] for label in labels for i in range(n)]


def patch_central(archive: Path, offset: int, fmt: str, value: int) -> None:
    """Rewrites one field of every central-directory entry (offset from the 'PK\\1\\2' signature)."""
    data = bytearray(archive.read_bytes())
    start = 0
    while (start := data.find(b"PK\x01\x02", start)) != -1:
        struct.pack_into(fmt, data, start + offset, value)
        start += 4
    archive.write_bytes(bytes(data))


# -- image cases ------------------------------------------------------------------------------------------------------

def with_bad_file(name: str, content: Callable[[Path], bytes | Image.Image], zipped: bool = False):
    """Good shapes plus one odd file, circle/<name>; zipped for the browser."""
    def build(folder: Path, models: Models) -> Input:
        root = shapes(folder / "photos")
        target = root / "circle" / name
        made = content(target)
        if isinstance(made, Image.Image):
            made.save(target)
        elif made is not None:
            target.write_bytes(made)
        data = zip_folder(root, folder / f"{Path(name).stem}-photos.zip", "photos") if zipped else root
        return Input(IMAGE, data)
    return build


def _truncated(target: Path) -> bytes:
    full = noise_png(target)
    return full[: len(full) // 2]


def _palette_alpha(target: Path) -> Image.Image:
    image = Image.new("P", (24, 24), 1)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.info["transparency"] = 0
    return image


def _deep(target: Path) -> Image.Image:
    return Image.new("I;16", (24, 24), 30000)


def single_class(folder: Path, models: Models) -> Input:
    root = shapes(folder / "only-circles", drop=("square", "triangle"))
    return Input(IMAGE, zip_folder(root, folder / "only-circles.zip"))


def empty_class_folder(folder: Path, models: Models) -> Input:
    root = shapes(folder / "pets")
    (root / "dog").mkdir()
    return Input(IMAGE, zip_folder(root, folder / "pets.zip", "pets"))


def one_example_in_class(folder: Path, models: Models) -> Input:
    root = shapes(folder / "pets")
    for path in sorted((root / "triangle").iterdir())[1:]:
        path.unlink()
    return Input(IMAGE, root)


def class_all_unreadable(folder: Path, models: Models) -> Input:
    root = shapes(folder / "pets")
    for path in (root / "triangle").iterdir():
        path.write_bytes(b"this is not an image")
    return Input(IMAGE, root)


def zip_without_class_folders(folder: Path, models: Models) -> Input:
    root = shapes(folder / "shapes")
    flat = folder / "flat"
    flat.mkdir()
    for path in root.rglob("*.jpg"):
        (flat / path.name).write_bytes(path.read_bytes())
    return Input(IMAGE, zip_folder(flat, folder / "flat.zip"))


def nested_zip(folder: Path, models: Models) -> Input:
    inner = zip_folder(shapes(folder / "shapes"), folder / "inner.zip", "shapes")
    outer = folder / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "inner.zip")
    return Input(IMAGE, outer)


def zip_slip(folder: Path, models: Models) -> Input:
    """An entry that climbs out of the unpacking folder (<ws>/uploads/<hash>/) up to the case's own folder."""
    archive = zip_folder(shapes(folder / "shapes"), folder / "slip.zip", "shapes")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("../../../escaped-slip.txt", b"written outside the workspace")
    return Input(IMAGE, archive, escape=[folder / "escaped-slip.txt"])


def zip_absolute(folder: Path, models: Models) -> Input:
    target = folder / "escaped-absolute.txt"
    archive = zip_folder(shapes(folder / "shapes"), folder / "absolute.zip", "shapes")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr(zipfile.ZipInfo(str(target)), b"written outside the workspace")
    return Input(IMAGE, archive, escape=[target])


def zip_symlink(folder: Path, models: Models) -> Input:
    archive = zip_folder(shapes(folder / "shapes"), folder / "link.zip", "shapes")
    link = zipfile.ZipInfo("shapes/circle/passwd.jpg")
    link.create_system = 3
    link.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr(link, "/etc/passwd")
    return Input(IMAGE, archive)


def zip_bomb_size(folder: Path, models: Models) -> Input:
    """3 MB of zeros compress to a few KB; the case runs with STUDIO_ZIP_MAX_MB=1."""
    archive = zip_folder(shapes(folder / "shapes"), folder / "bomb.zip", "shapes")
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("shapes/circle/zeros.png", b"\x00" * (3 * 1024 * 1024))
    return Input(IMAGE, archive)


def zip_bomb_count(folder: Path, models: Models) -> Input:
    """60 tiny entries; the case runs with STUDIO_ZIP_MAX_FILES=50."""
    archive = folder / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(60):
            zf.writestr(f"shapes/{'ab'[n % 2]}/{n}.png", b"x")
    return Input(IMAGE, archive)


def zip_lying_sizes(folder: Path, models: Models) -> Input:
    """The directory says every entry is 10 bytes; the data says otherwise."""
    archive = zip_folder(shapes(folder / "shapes"), folder / "liar.zip", "shapes")
    patch_central(archive, 24, "<I", 10)
    return Input(IMAGE, archive)


def zip_new_version(folder: Path, models: Models) -> Input:
    """Entries that need a zip version this Python cannot read (version 14.3)."""
    archive = zip_folder(shapes(folder / "shapes"), folder / "future.zip", "shapes")
    patch_central(archive, 6, "<H", 143)
    return Input(IMAGE, archive)


def zip_corrupt(folder: Path, models: Models) -> Input:
    archive = folder / "garbage.zip"
    archive.write_bytes(random.Random(0).randbytes(4096))
    return Input(IMAGE, archive)


def zip_truncated(folder: Path, models: Models) -> Input:
    archive = zip_folder(shapes(folder / "shapes"), folder / "cut.zip", "shapes")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    return Input(IMAGE, archive)


def zip_encrypted(folder: Path, models: Models) -> Input:
    archive = zip_folder(shapes(folder / "shapes"), folder / "secret.zip", "shapes")
    patch_central(archive, 8, "<H", 0x1)
    return Input(IMAGE, archive)


def zip_empty(folder: Path, models: Models) -> Input:
    archive = folder / "nothing.zip"
    zipfile.ZipFile(archive, "w").close()
    return Input(IMAGE, archive)


def csv_for_images(folder: Path, models: Models) -> Input:
    return Input(IMAGE, write_csv(folder / "table.csv", good_rows()))


# -- text cases -------------------------------------------------------------------------------------------------------

def text_file(name: str, content: Callable[[Path], bytes | str | None], **spec):
    def build(folder: Path, models: Models) -> Input:
        path = folder / name
        made = content(path)
        if isinstance(made, str):
            path.write_text(made, encoding="utf-8")
        elif made is not None:
            path.write_bytes(made)
        return Input(TEXT, path, spec=spec)
    return build


def _cp1252(path: Path) -> bytes:
    rows = [["Le café était froid", "plainte"], ["Très bon thé", "éloge"], ["Crème brûlée ratée", "plainte"],
            ["Service rapide merci", "éloge"], ["Addition trop élevée", "plainte"], ["Accueil chaleureux", "éloge"]]
    return ("text,label\r\n" + "".join(f"{t},{lab}\r\n" for t, lab in rows)).encode("cp1252")


def _rows_text(rows: list[list[str]], header: str = "text,label") -> str:
    out = [header]
    for row in rows:
        out.append(",".join(f'"{c}"' if "," in c else c for c in row))
    return "\n".join(out) + "\n"


def _jsonl(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _good_json_lines(n: int = 4) -> list[str]:
    return [json.dumps({"text": text, "label": label}) for text, label in good_rows(n)]


def _xlsx_like(path: Path) -> bytes:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
    return path.read_bytes()


def _binary(path: Path) -> bytes:
    return bytes(range(256)) * 16


# -- recipe and model cases ------------------------------------------------------------------------------------------

def recipe(text: str):
    def build(folder: Path, models: Models) -> Input:
        return Input(recipe_text=text.replace("{DATA}", str(shapes(folder / "shapes"))))
    return build


def recipe_python_tag(folder: Path, models: Models) -> Input:
    target = folder / "pwned-by-yaml"
    return Input(recipe_text=f"!!python/object/apply:os.system ['touch {target}']\n", escape=[target])


def recipe_binary(folder: Path, models: Models) -> Input:
    return Input(recipe_text=bytes(range(128, 256)) * 8)


def model(name: str | Callable[[Path, Models], str], task: str = IMAGE):
    def build(folder: Path, models: Models) -> Input:
        ref = name(folder, models) if callable(name) else name
        data = shapes(folder / "shapes") if task == IMAGE else write_csv(folder / "t.csv", good_rows())
        return Input(task, data, model=ref)
    return build


def empty_model_folder(folder: Path, models: Models) -> str:
    (folder / "my-model").mkdir()
    return str(folder / "my-model")


def broken_config(folder: Path, models: Models) -> str:
    (folder / "broken-model").mkdir()
    (folder / "broken-model" / "config.json").write_text("{this is not json")
    return str(folder / "broken-model")


class _Pwn:
    """Unpickling this runs `touch`: what a malicious pytorch_model.bin does."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def pickled_weights(folder: Path, models: Models) -> str:
    target = folder / "pwned-by-pickle"
    model_dir = folder / "evil-model"
    model_dir.mkdir()
    config = json.loads((Path(models.image) / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps(config))
    (model_dir / "preprocessor_config.json").write_bytes((Path(models.image) / "preprocessor_config.json").read_bytes())
    with open(model_dir / "pytorch_model.bin", "wb") as f:
        pickle.dump({"weights": _Pwn(target)}, f)
    return str(model_dir)


CUSTOM_CONFIG = '''
from transformers import PretrainedConfig

class CustomConfig(PretrainedConfig):
    model_type = "studio-custom"

    def __init__(self, hidden_size=8, num_channels=3, **kwargs):
        self.hidden_size, self.num_channels = hidden_size, num_channels
        super().__init__(**kwargs)
'''
CUSTOM_MODEL = '''
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput
from .configuration_custom import CustomConfig

class CustomForImages(PreTrainedModel):
    config_class = CustomConfig

    def __init__(self, config):
        super().__init__(config)
        self.layers = nn.ModuleList([nn.Conv2d(3, config.hidden_size, 3), nn.Conv2d(config.hidden_size, config.hidden_size, 3)])
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, pixel_values, **kwargs):
        x = pixel_values
        for layer in self.layers:
            x = layer(x).relu()
        return ImageClassifierOutput(logits=self.classifier(x.mean(dim=(2, 3))))
'''


def custom_code_model(folder: Path, models: Models | None = None) -> str:
    """A model folder whose config asks to run Python code shipped beside it (auto_map)."""
    model_dir = folder / "custom-model"
    model_dir.mkdir()
    (model_dir / "configuration_custom.py").write_text(CUSTOM_CONFIG)
    (model_dir / "modeling_custom.py").write_text(CUSTOM_MODEL)
    (model_dir / "config.json").write_text(json.dumps({
        "model_type": "studio-custom", "hidden_size": 8, "num_channels": 3,
        "auto_map": {"AutoConfig": "configuration_custom.CustomConfig",
                     "AutoModelForImageClassification": "modeling_custom.CustomForImages"}}))
    (model_dir / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "ViTImageProcessor", "size": {"height": 32, "width": 32},
        "image_mean": [0.5] * 3, "image_std": [0.5] * 3}))
    return str(model_dir)


# -- chat cases (instruction tuning) -----------------------------------------------------------------------------

def chat_file(name: str, content: Callable[[Path], str], model: Callable[[Path, Models], str] | None = None,
              options: dict | None = None, **spec):
    def build(folder: Path, models: Models) -> Input:
        path = folder / name
        path.write_text(content(path), encoding="utf-8")
        return Input(CHAT, path, model=model(folder, models) if model else models.chat, spec=spec,
                     options=options or {})
    return build


def _qa_rows(n: int = 12, empty: tuple[int, ...] = (), long_prompt: tuple[int, ...] = ()) -> str:
    rows = [["hello " * 80 if i in long_prompt else f"how do I reset my password {i}",
             "" if i in empty else f"please reset your password {i}"] for i in range(n)]
    return _rows_text(rows, "prompt,response")


def _chat_lines(path: Path) -> str:
    good = [json.dumps({"messages": [{"role": "user", "content": f"hello {i}"},
                                     {"role": "assistant", "content": f"thank you {i}"}]}) for i in range(10)]
    return _jsonl(good[:2] + ['{"messages": [{"role": "user", "content": "cut'] + good[2:5] + [
        json.dumps({"messages": [{"role": "narrator", "content": "once upon a time"}]})] + good[5:])


def huge_llama(folder: Path, models: Models) -> str:
    """A config only, of a 70-billion-parameter Llama: refused from the numbers before a weight is read."""
    model_dir = folder / "llama-70b"
    model_dir.mkdir()
    config = json.loads((Path(models.chat) / "config.json").read_text())
    config.update(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
                  num_key_value_heads=8, head_dim=128, vocab_size=128256, tie_word_embeddings=False)
    (model_dir / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model_dir / name).write_bytes((Path(models.chat) / name).read_bytes())
    return str(model_dir)


# -- preference cases (preference tuning) -------------------------------------------------------------------------

def preference_file(content: Callable[[], str], model: Callable[[Path, Models], str] | None = None,
                    options: dict | None = None, strategy: str | None = None, **spec):
    def build(folder: Path, models: Models) -> Input:
        path = folder / "prefs.csv"
        path.write_text(content(), encoding="utf-8")
        return Input(PREFERENCE, path, model=model(folder, models) if model else models.chat, spec=spec,
                     options=options or {}, strategy=strategy)
    return build


def _pairs(n: int = 12, same: tuple[int, ...] = (), empty: tuple[int, ...] = (), header="prompt,chosen,rejected",
           chosen=lambda i: f"Hello! please reset your password {i}", long: tuple[int, ...] = ()) -> str:
    rows = [["hello " * 80 if i in long else f"how do I reset my password {i}", chosen(i),
             chosen(i) if i in same else "" if i in empty else f"reset it {i}"] for i in range(n)]
    return _rows_text(rows, header)


def _marked(labels: str) -> str:
    return _rows_text([[f"how do I reset my password {i}", f"please reset it {i}", label]
                       for i, label in enumerate(labels.split())], "prompt,response,label")


def failed_chat_run(folder: Path, models: Models) -> str:
    """The folder of an instruction-tuning run that failed: no model to start from."""
    run = folder / "runs" / "20260101-000000-chat"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"task": CHAT, "status": "failed"}))
    return str(run)


PREFERENCE_CASES = [
    Case("preference-missing-columns", "data",
         preference_file(lambda: _pairs(header="question,good answer,bad answer"), chosen_column="chosen",
                         rejected_column="rejected"),
         (r"Column 'chosen' \(data\.chosen_column\) is not in prefs\.csv", r"Columns found: question, good answer")),
    Case("preference-empty-chosen-column", "data", preference_file(lambda: _pairs(chosen=lambda i: "")),
         (r"Column 'chosen' \(data\.chosen_column\) of prefs\.csv is empty in every row",)),
    Case("preference-identical-pairs-only", "data", preference_file(lambda: _pairs(same=tuple(range(12)))),
         (r"In every row of prefs\.csv the chosen and the rejected answer are the same", r"nothing to prefer"),
         browser=True),
    Case("preference-some-identical-or-empty", "data", preference_file(lambda: _pairs(same=(1,), empty=(4,))),
         (r"row 3 \(the chosen and rejected answers are the same\)", r"row 6 \(empty rejected answer\)"),
         "accepted", browser=True),
    Case("preference-over-max-length", "data", preference_file(lambda: _pairs(long=(0, 1)), max_length=48),
         (r"\d+ example\(s\) were longer than 48 tokens", r"cut from the start of the prompt"), "accepted"),
    Case("preference-kto-one-label", "data",
         preference_file(lambda: _marked("good " * 12), options={"loss": "kto"}),
         (r"Every answer in prefs\.csv is marked good \(column 'label'\)", r"add some of the other kind")),
    Case("preference-dpo-on-marked-answers", "data", preference_file(lambda: _marked("good bad " * 6)),
         (r"answers marked good or bad one by one", r"only 'strategy_options\.loss: kto' reads")),
    Case("preference-from-a-failed-run", "model", preference_file(_pairs, failed_chat_run),
         (r"is a run of instruction-tuning whose status is failed", r"completed instruction-tuning run")),
    Case("preference-with-a-classifier", "model", preference_file(_pairs, lambda f, m: m.text),
         (r"bert model: it reads texts .* but cannot write answers", r"smollm2-135m-instruct")),
    # DPO with full fine-tuning: the reference's log-probabilities are measured before training changes the weights,
    # so the model is held once; one that does not fit once is refused from its config, with the numbers
    Case("preference-full-model-too-big", "model", preference_file(_pairs, huge_llama, strategy="full"),
         (r"70\.\d+ billion parameters: training it with full", r"needs about \d+(\.\d)? GB",
          r"memory is \d+\.\d GB")),
]


# -- the table ---------------------------------------------------------------------------------------------------------

SKIPPED_UNREADABLE = r"not a readable image"

CASES: list[Case] = [
    # images: odd files among good ones are skipped or converted, and named
    Case("corrupt-image", "data", with_bad_file("corrupt.jpg", lambda p: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4,
                                                zipped=True),
         (r"circle/corrupt\.jpg", SKIPPED_UNREADABLE), "accepted", browser=True),
    Case("zero-byte-image", "data", with_bad_file("empty.png", lambda p: b""),
         (r"circle/empty\.png", r"empty file \(0 bytes\)"), "accepted"),
    Case("truncated-image", "data", with_bad_file("cut-short.png", _truncated),
         (r"circle/cut-short\.png", SKIPPED_UNREADABLE), "accepted"),
    Case("cmyk-image", "data", with_bad_file("print.jpg", lambda p: Image.new("CMYK", (24, 24), (0, 120, 200, 0)),
                                             zipped=True),
         (r"circle/print\.jpg \(CMYK colours\)", r"converted"), "accepted", browser=True),
    Case("16-bit-image", "data", with_bad_file("scan16.png", _deep), (r"circle/scan16\.png \(16-bit\)",), "accepted"),
    Case("palette-alpha-image", "data", with_bad_file("logo.png", _palette_alpha),
         (r"circle/logo\.png \(palette with transparency\)",), "accepted"),
    Case("huge-dimension-image", "data", with_bad_file("huge.png", lambda p: png_header(50_000, 50_000), zipped=True),
         (r"circle/huge\.png", r"too large", r"2,500,000,000 pixels"), "accepted", browser=True),
    Case("over-pixel-limit-image", "data", with_bad_file("big.png", lambda p: png_header(2000, 1000)),
         (r"circle/big\.png", r"too large \(2000 × 1000 pixels; the limit is 1,000,000"), "accepted",
         env=(("STUDIO_MAX_IMAGE_PIXELS", "1000000"),)),
    Case("text-file-as-image", "data", with_bad_file("notes.jpg", lambda p: b"shopping list: milk, eggs\n"),
         (r"circle/notes\.jpg", SKIPPED_UNREADABLE), "accepted"),
    Case("pdf-as-image", "data", with_bad_file("report.png", lambda p: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"),
         (r"circle/report\.png", SKIPPED_UNREADABLE), "accepted"),
    Case("single-class", "data", single_class, (r"only one class", r"'circle'"), browser=True),
    Case("empty-class-folder", "data", empty_class_folder, (r"class folder 'dog'", r"is empty"), browser=True),
    Case("one-example-in-class", "data", one_example_in_class, (r"'triangle'", r"fewer than 2", r"it has 1")),
    Case("class-all-unreadable", "data", class_all_unreadable, (r"'triangle'", r"no usable images")),
    Case("zip-no-class-folders", "data", zip_without_class_folders,
         (r"No class folders found in flat\.zip", r"9 image\(s\) directly inside"), browser=True),
    Case("nested-zip", "data", nested_zip, (r"outer\.zip holds another \.zip \(inner\.zip\)",), browser=True),
    Case("zip-slip", "data", zip_slip, (r"slip\.zip", r"unsafe entry '\.\./\.\./\.\./escaped-slip\.txt'"),
         browser=True),
    Case("zip-absolute-path", "data", zip_absolute, (r"absolute\.zip", r"unsafe entry '/",)),
    Case("zip-symlink", "data", zip_symlink, (r"link\.zip", r"unsafe entry 'shapes/circle/passwd\.jpg'", r"link")),
    Case("zip-bomb-size", "data", zip_bomb_size, (r"bomb\.zip would unpack to 3\.\d MB", r"1\.0 MB limit",
                                                  r"STUDIO_ZIP_MAX_MB"),
         env=(("STUDIO_ZIP_MAX_MB", "1"),), browser=True),
    Case("zip-bomb-file-count", "data", zip_bomb_count, (r"many\.zip holds 60 files", r"at most 50",
                                                         r"STUDIO_ZIP_MAX_FILES"),
         env=(("STUDIO_ZIP_MAX_FILES", "50"),)),
    Case("zip-lying-sizes", "data", zip_lying_sizes, (r"liar\.zip is damaged",)),
    Case("zip-corrupt", "data", zip_corrupt, (r"garbage\.zip is not a valid \.zip",)),
    Case("zip-truncated", "data", zip_truncated, (r"cut\.zip is not a valid \.zip",)),
    Case("zip-unsupported-version", "data", zip_new_version, (r"future\.zip is not a valid \.zip",)),
    Case("zip-password", "data", zip_encrypted, (r"secret\.zip is password-protected",)),
    Case("zip-empty", "data", zip_empty, (r"nothing\.zip is an empty \.zip",)),
    Case("csv-for-an-image-task", "data", csv_for_images, (r"data\.path_column", r"column that holds each image")),
    # text tables
    Case("csv-not-utf8", "data", text_file("cafe.csv", _cp1252), (r"cafe\.csv is not UTF-8", r"Windows-1252"),
         "accepted", browser=True),
    Case("csv-missing-column", "data", text_file("tickets.csv", lambda p: _rows_text(good_rows(), "message,intent")),
         (r"Column 'text' \(data\.text_column\)", r"Columns found: message, intent")),
    Case("csv-misnamed-column", "data", text_file("caps.csv", lambda p: _rows_text(good_rows(), "Text,Label")),
         (r"Column 'text'", r"Did you mean 'Text'\?")),
    Case("csv-all-text-empty", "data", text_file("blank.csv", lambda p: _rows_text([["", "a"]] * 4 + [[" ", "b"]] * 4)),
         (r"No usable examples in blank\.csv", r"8 × empty text")),
    Case("csv-some-text-empty", "data",
         text_file("gaps.csv", lambda p: _rows_text([["", "a"]] + good_rows())), (r"row 2\W+empty text",),
         "accepted"),
    Case("csv-nan-labels", "data",
         text_file("nan.csv", lambda p: _rows_text(good_rows() + [["lost one", "NaN"], ["lost two", ""],
                                                                  ["lost three", "#N/A"]])),
         (r"3 file\(s\) or row\(s\) were skipped", r"row 10\W+no label", r"row 12\W+no label"), "accepted",
         browser=True),
    Case("csv-single-row", "data", text_file("one.csv", lambda p: "text,label\nhello there,greeting\n"),
         (r"one\.csv has only 1 usable example",), browser=True),
    Case("csv-duplicated-header-column", "data",
         text_file("twice.csv", lambda p: "text,label,text\n" + "".join(f"t{i},{'ab'[i % 2]},x\n" for i in range(8))),
         (r"twice\.csv names the column 'text' more than once",), browser=True),
    Case("csv-repeated-header-line", "data",
         text_file("joined.csv", lambda p: _rows_text(good_rows()) + _rows_text(good_rows())),
         (r"row 10\W+a repeated header line",), "accepted"),
    Case("csv-10000-labels", "data",
         text_file("ids.csv", lambda p: _rows_text([[f"message {i}", f"ticket-{i}"] for i in range(10_000)])),
         (r"ids\.csv has 10,000 different labels", r"at most 1,000", r"data\.label_column"), browser=True),
    Case("csv-1mb-text-cell", "data",
         text_file("long.csv", lambda p: _rows_text([["word " * 200_000, "a"]] + good_rows())),
         (r"1 text\(s\) longer than 20,000 characters were cut", r"row 2"), "accepted", browser=True),
    Case("csv-zero-byte", "data", text_file("zero.csv", lambda p: b""), (r"zero\.csv is empty",)),
    Case("csv-header-only", "data", text_file("header.csv", lambda p: "text,label\n"),
         (r"header\.csv has a header but no rows",)),
    Case("csv-ragged-rows", "data",
         text_file("ragged.csv", lambda p: "text,label\nhello,a\nhello, world,b,extra\n"),
         (r"line 3 has 4 columns but the header has 2",)),
    Case("csv-unclosed-quote", "data", text_file("quote.csv", lambda p: 'text,label\n"oops,a\nfine,b\n'),
         (r"quote\.csv", r"never closed")),
    Case("csv-semicolons", "data",
         text_file("excel-fr.csv", lambda p: "text;label\n" + "".join(f"message {i};{'ab'[i % 2]}\n" for i in range(8))),
         (r"excel-fr\.csv separates its columns with semicolons",), "accepted"),
    Case("csv-stray-carriage-return", "data",
         text_file("cr.csv", lambda p: "te\rxt,label\n" + "".join(f"m {i},{'ab'[i % 2]}\n" for i in range(8))),
         (r"Column 'text' \(data\.text_column\) is not in cr\.csv",)),
    Case("xlsx-named-csv", "data", text_file("book.csv", _xlsx_like), (r"book\.csv", r"Excel workbook")),
    Case("binary-named-csv", "data", text_file("blob.csv", _binary), (r"blob\.csv is not a text file",)),
    Case("same-text-and-label-column", "data",
         text_file("same.csv", lambda p: _rows_text(good_rows()), text_column="label"),
         (r"both 'label'",)),
    Case("jsonl-broken-line", "data",
         text_file("broken.jsonl", lambda p: _jsonl(_good_json_lines()[:2] + ['{"text": "cut sho'] +
                                                    _good_json_lines()[2:])),
         (r"line 3\W+not valid JSON",), "accepted", browser=True),
    Case("jsonl-all-broken", "data", text_file("junk.jsonl", lambda p: "not json\nstill not\n"),
         (r"No line of junk\.jsonl is a JSON object", r"line 1")),
    Case("jsonl-is-a-json-array", "data",
         text_file("array.jsonl", lambda p: json.dumps([{"text": "a", "label": "b"}], indent=1)),
         (r"array\.jsonl is a JSON array, not JSON Lines",)),
    Case("jsonl-line-not-an-object", "data",
         text_file("mixed.jsonl", lambda p: _jsonl(_good_json_lines() + ['["a", "list"]'])),
         (r"line 9\W+not a JSON object",), "accepted"),
    Case("txt-for-a-text-task", "data", text_file("notes.txt", lambda p: "text,label\nhi,a\n"),
         (r"notes\.txt is not a \.csv or \.jsonl",)),
    # recipes
    Case("recipe-not-yaml", "recipe", recipe("task: [image-classification\nmodel: efficientnet-lite0\n"),
         (r"not valid YAML \(line 2, column 6",)),
    Case("recipe-binary", "recipe", recipe_binary, (r"Could not read the recipe file",)),
    Case("recipe-a-list", "recipe", recipe("- task\n- model\n"), (r"must be a mapping of keys to values",)),
    Case("recipe-unknown-key", "recipe", recipe("data: {path: '{DATA}'}\nepochz: 3\n"),
         (r"Unknown recipe key 'epochz'",)),
    Case("recipe-unknown-nested-key", "recipe", recipe("data: {path: '{DATA}'}\ntrain: {lr: 0.1}\n"),
         (r"Unknown recipe key 'train\.lr'",)),
    Case("recipe-number-as-key", "recipe", recipe("data: {path: '{DATA}'}\ntrain: {0.001: 3}\n"),
         (r"Unknown recipe key 'train\.0\.001'",)),
    Case("recipe-wrong-type", "recipe", recipe("data: {path: '{DATA}'}\ntrain: {epochs: five}\n"),
         (r"'train\.epochs' must be a whole number, got 'five'",)),
    Case("recipe-float-epochs", "recipe", recipe("data: {path: '{DATA}'}\ntrain: {epochs: 2.5}\n"),
         (r"'train\.epochs' must be a whole number",)),
    Case("recipe-negative-epochs", "recipe", recipe("data: {path: '{DATA}'}\ntrain: {epochs: -3}\n"),
         (r"'train\.epochs' is -3; it must be between 1 and 1000",)),
    Case("recipe-absurd-batch", "recipe", recipe("data: {path: '{DATA}'}\ntrain: {batch_size: 1000000000}\n"),
         (r"'train\.batch_size' is 1000000000",)),
    Case("recipe-absurd-learning-rate", "recipe", recipe("data: {path: '{DATA}'}\ntrain: {learning_rate: 1000}\n"),
         (r"'train\.learning_rate' is 1000",)),
    Case("recipe-nan-learning-rate", "recipe", recipe("data: {path: '{DATA}'}\ntrain: {learning_rate: .nan}\n"),
         (r"'train\.learning_rate' is nan",)),
    Case("recipe-unknown-task", "recipe", recipe("task: video-classification\ndata: {path: '{DATA}'}\n"),
         (r"'task' is 'video-classification'",)),
    Case("recipe-option-for-another-strategy", "recipe",
         recipe("data: {path: '{DATA}'}\nstrategy: full\nstrategy_options: {lora_r: 8}\n"),
         (r"'strategy_options\.lora_r' for strategy 'full'",)),
    Case("recipe-lora-rank-zero", "recipe",
         recipe("data: {path: '{DATA}'}\nstrategy: lora\nstrategy_options: {lora_r: 0}\n"),
         (r"'strategy_options\.lora_r' is 0",)),
    Case("recipe-python-tag", "recipe", recipe_python_tag, (r"not valid YAML", r"python/object")),
    Case("recipe-output-outside-workspace", "recipe", recipe("data: {path: '{DATA}'}\noutput_dir: ../../outside\n"),
         (r"'output_dir' is '\.\./\.\./outside'", r"inside the workspace")),
    Case("recipe-empty", "recipe", recipe(""), (r"'data\.path' is empty",)),
    Case("recipe-data-not-found", "recipe", recipe("data: {path: /nonexistent/pets.zip}\n"),
         (r"Data not found: /nonexistent/pets\.zip",)),
    # models
    Case("unknown-model-id", "model", model("efficientnet-lite9"),
         (r"Unknown model 'efficientnet-lite9'", r"Did you mean 'efficientnet-lite0'", OFFLINE_IMAGE), browser=True),
    Case("hub-id-offline", "model", model("google/vit-base-patch16-224"),
         (r"'google/vit-base-patch16-224'", r"could not be downloaded", OFFLINE_IMAGE), browser=True),
    Case("catalog-hub-model-offline", "model", model("distilbert", TEXT),
         (r"distilbert-base-uncased", r"could not be downloaded", r"Models that work offline: all-minilm-l6-v2")),
    Case("model-for-another-task", "model", model("all-minilm-l6-v2"),
         (r"'all-minilm-l6-v2' is made for text-classification",)),
    Case("text-model-for-images", "model", model(lambda folder, models: models.text),
         (r"is a text model \(bert\), not an image model",)),
    Case("empty-model-folder", "model", model(empty_model_folder), (r"my-model does not hold a Hugging Face model",
                                                                    r"no config\.json")),
    Case("missing-model-folder", "model", model("/nonexistent/models/my-vit"),
         (r"/nonexistent/models/my-vit does not exist",)),
    Case("broken-model-config", "model", model(broken_config), (r"broken-model", r"not a valid JSON")),
    Case("pickled-weights", "model", model(pickled_weights), (r"evil-model", r"pickle that could run code",
                                                               r"safetensors")),
    Case("custom-code-untrusted", "model", model(custom_code_model),
         (r"custom-model' needs to run Python code", r"Trust this model's code", r"trust_remote_code")),
]

CASES += corpus_audio.cases(Case)
CASES += [
    Case("chat-missing-columns", "data",
         chat_file("tickets.csv", lambda p: _rows_text(good_rows(), "question,reply"), prompt_column="prompt",
                   response_column="response"),
         (r"Column 'prompt' \(data\.prompt_column\) is not in tickets\.csv", r"Columns found: question, reply")),
    Case("chat-empty-responses", "data", chat_file("qa.csv", lambda p: _qa_rows(empty=(2, 5))),
         (r"row 4\b", r"2 of them with an empty response"), "accepted"),
    Case("chat-over-max-length", "data", chat_file("long.csv", lambda p: _qa_rows(long_prompt=(0, 1)), max_length=48),
         (r"2 example\(s\) were longer than 48 tokens", r"cut from the start of the prompt"), "accepted"),
    Case("chat-broken-lines-and-unknown-roles", "data",
         chat_file("chat.jsonl", _chat_lines, messages_column="messages"),
         (r"line 3 \(not valid JSON", r"line 7 \(unknown role 'narrator'"), "accepted"),
    Case("chat-with-a-classifier", "model", chat_file("qa.csv", lambda p: _qa_rows(), lambda f, m: m.text),
         (r"bert model: it reads texts .* but cannot write answers", r"smollm2-135m-instruct")),
    Case("chat-qlora-without-cuda", "recipe",
         lambda folder, models: Input(recipe_text=f"task: instruction-tuning\nmodel: {models.chat}\nstrategy: qlora\n"
                                                  f"data: {{path: '{chat_file('qa.csv', lambda p: _qa_rows())(folder, models).data}'}}\n"
                                                  "train: {device: cpu}\n"),
         (r"qlora.*needs a CUDA GPU", r"Use 'lora'")),
    Case("chat-method-the-model-cannot-take", "model",
         chat_file("qa.csv", lambda p: _qa_rows(), options={"target_modules": "c_attn"}),
         (r"target_modules.*names layers this llama model does not have", r"Its linear layers are: .*q_proj")),
    Case("chat-model-too-big", "model", chat_file("qa.csv", lambda p: _qa_rows(), huge_llama),
         (r"70\.\d+ billion parameters", r"needs about \d+(\.\d)? GB", r"memory is \d+\.\d GB")),
]
CASES += PREFERENCE_CASES

BY_ID = {case.id: case for case in CASES}
assert len(BY_ID) == len(CASES), "case ids must be unique"

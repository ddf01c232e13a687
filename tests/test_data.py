import json
import zipfile

import pytest
from PIL import Image

from helpers import write_text_csv
from studio import tasks
from studio.engine.data import DataError
from studio.engine.data.images import open_rgb
from studio.examples import make_shapes
from studio.recipe import DataSpec


def load(path, task="image-classification", **spec):
    return tasks.get(task).load_data(DataSpec(path=str(path), **spec), seed=0, uploads_dir=path.parent / "uploads")


def test_unreadable_images_are_skipped_and_listed(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=5, size=24)
    (root / "circle" / "empty.png").write_bytes(b"")
    (root / "square" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "square" / "notes.txt").write_text("hello")
    data = load(root)
    skipped = {s["item"]: s["reason"] for s in data.report.skipped}
    assert skipped == {"circle/empty.png": "empty file (0 bytes)",
                       "square/broken.jpg": "not a readable image (damaged, cut short, or not really an image)",
                       "square/notes.txt": "not an image file type"}
    assert len(data.train_items) + len(data.val_items) == 15
    assert any("skipped" in w for w in data.report.warnings)


def test_class_left_with_one_example_is_an_error(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=3, size=24)
    for path in sorted((root / "triangle").iterdir())[1:]:
        path.write_bytes(b"")
    with pytest.raises(DataError, match="'triangle' has fewer than 2"):
        load(root)


def test_single_class_and_no_class_folders(tmp_path):
    root = make_shapes(tmp_path / "one", per_class=4, size=24)
    for shape in ("square", "triangle"):
        for path in (root / shape).iterdir():
            path.unlink()
        (root / shape).rmdir()
    with pytest.raises(DataError, match="only one class"):
        load(root)
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (8, 8)).save(flat / "a.png")
    with pytest.raises(DataError, match="No class folders"):
        load(flat)


def test_zip_with_a_wrapper_folder(tmp_path):
    root = make_shapes(tmp_path / "pets", per_class=4, size=24)
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in root.rglob("*.jpg"):
            zf.write(path, f"pets/{path.relative_to(root)}")
    data = load(archive)
    assert data.classes == ["circle", "square", "triangle"]
    assert str(tmp_path / "uploads") in data.train_items[0]


def test_zip_slip_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.png", b"x")
    with pytest.raises(DataError, match="unsafe entry"):
        load(archive)
    assert not (tmp_path / "outside.png").exists()


def test_split_is_stratified_and_repeatable(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=10, size=24)
    a, b = load(root), load(root)
    assert a.val_items == b.val_items
    assert a.report.validation_counts == {"circle": 2, "square": 2, "triangle": 2}
    assert set(a.train_items).isdisjoint(a.val_items)


def test_text_csv_and_jsonl(tmp_path):
    csv_path = write_text_csv(tmp_path / "t.csv", per_class=5)
    data = load(tmp_path / "t.csv", task="text-classification")
    assert data.classes == ["food", "sports", "tech"] and data.report.modality == "text"
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("\n".join(json.dumps({"body": f"text {i}", "tag": "ab"[i % 2]}) for i in range(8)))
    data = load(jsonl, task="text-classification", text_column="body", label_column="tag")
    assert data.report.train_counts == {"a": 3, "b": 3}
    assert csv_path


def test_text_rows_without_label_or_text_are_skipped(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nhello,a\nhi,a\n,a\nhey,\nyo,b\nsup,b\n")
    data = load(path, task="text-classification")
    assert [s["reason"] for s in data.report.skipped] == ["empty text", "no label"]


def test_missing_column_names_it_and_lists_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("message,intent\nhello,a\n")
    with pytest.raises(DataError, match=r"Column 'text' \(data.text_column\).*Columns found: message, intent"):
        load(path, task="text-classification")


def test_non_utf8_csv_is_read_and_the_encoding_reported(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("text,label\ncaf\xe9,a\nth\xe9,a\nbi\xe8re,b\nvin,b\n".encode("latin-1"))
    data = load(path, task="text-classification")
    assert "café" in data.train_items + data.val_items
    assert any("not UTF-8" in w and "Windows-1252" in w for w in data.report.warnings)


def test_imbalance_warning(tmp_path):
    path = tmp_path / "t.csv"
    rows = ["text,label"] + [f"big {i},big" for i in range(30)] + [f"small {i},small" for i in range(3)]
    path.write_text("\n".join(rows))
    data = load(path, task="text-classification")
    assert any("imbalanced" in w and "'small' has only 3" in w for w in data.report.warnings)


def test_odd_image_modes_open_as_rgb(tmp_path):
    cases = {"cmyk.jpg": Image.new("CMYK", (8, 8), (0, 128, 0, 0)), "p.png": Image.new("P", (8, 8)),
             "la.png": Image.new("LA", (8, 8)), "i16.png": Image.new("I;16", (8, 8), 40000)}
    for name, image in cases.items():
        image.save(tmp_path / name)
        assert open_rgb(tmp_path / name).mode == "RGB"
    assert open_rgb(tmp_path / "i16.png").getpixel((0, 0)) == (255, 255, 255)

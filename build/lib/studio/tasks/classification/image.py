"""Image classification: a folder (or .zip) of class folders of images, or a table listing image files with a
label (and group) column. Images are opened upright and as RGB, resized and normalised as the backbone expects;
augmentation (torchvision transforms v2) when the backbone trains."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms import v2

from studio import tasks
from studio.engine.data import folders
from studio.engine.data.images import IMAGE_EXTENSIONS, inspect_image, open_rgb
from studio.tasks.classification.data import load_table
from studio.assets import SHAPES_DIR
from studio.recipe import DataSpec
from studio.tasks.base import Example
from studio.tasks.classification.task import ClassificationTask, Encoder
from studio.engine.data.tables import TABLE_SUFFIXES

FILE_KIND = folders.FileKind(
    noun="image", extensions=frozenset(IMAGE_EXTENSIONS), inspect=inspect_image,
    converted="were converted to ordinary RGB colour images (the thumbnails show them as the model will see them)",
    advice="Add readable .jpg or .png images", unreadable="this is not an image we can read")


def image_transform(prep: dict, augment: bool) -> v2.Compose:
    if augment:  # only when the backbone trains: mild changes that keep the label true for most photos
        geometry = [v2.RandomResizedCrop(prep["image_size"], scale=(0.6, 1.0), antialias=True),
                    v2.RandomHorizontalFlip(), v2.ColorJitter(0.2, 0.2, 0.2)]
    else:
        geometry = [v2.Resize(prep["resize_size"], antialias=True), v2.CenterCrop(prep["image_size"])]
    return v2.Compose([v2.ToImage(), *geometry, v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(list(prep["mean"]), list(prep["std"]))])


class ImageFiles(torch.utils.data.Dataset):
    def __init__(self, paths: list[str], labels: list[int], transform):
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform(open_rgb(self.paths[i])), self.labels[i]


class ImageEncoder(Encoder):
    def __init__(self, prep: dict, augment: bool):
        self.transform = image_transform(prep, augment)

    def dataset(self, items, labels):
        return ImageFiles(items, labels, self.transform)

    def batch(self, items: list) -> torch.Tensor:
        """Image paths or PIL images."""
        return torch.stack([self.transform(x.convert("RGB") if isinstance(x, Image.Image) else open_rgb(x))
                            for x in items])


class ImageClassification(ClassificationTask):
    name = "image-classification"
    title = "Images (photos, scans, drawings)"
    modality = "image"
    view = "image-classes"  # the page parts that show classified images (studio/ui/panels)
    noun = "image"
    data_hint = "a folder of class sub-folders of images, a .zip of one, or a .csv/.jsonl listing image files"
    examples = (Example("shapes", "shapes (images)", SHAPES_DIR),)
    file_kind = FILE_KIND
    item_column_words = "Column with the image paths"

    def accepts(self, path: Path) -> bool:
        if path.suffix.lower() in TABLE_SUFFIXES:
            return folders.lists_files(path, IMAGE_EXTENSIONS)
        return folders.holds(path, IMAGE_EXTENSIONS)

    def read_source(self, path: Path, spec: DataSpec, uploads_dir: Path):
        if path.suffix.lower() in TABLE_SUFFIXES:
            return load_table(path, spec, "path_column", folders.file_reader(path, FILE_KIND))
        return folders.load(path, FILE_KIND, uploads_dir)

    def encoder(self, info, source, augment, recipe=None) -> ImageEncoder:
        return ImageEncoder(info.preprocessing, augment)

    def check_input(self, value: str) -> str | None:
        path = Path(value)
        if not path.is_file():
            return f"image file not found: {value}"
        reason, _ = inspect_image(path)
        return f"{value} cannot be used: {reason}" if reason else None

    # -- exports ------------------------------------------------------------------------------------------------
    def save_processor(self, info, folder: Path, out: Path) -> None:
        """An image processor doing what the studio's transform does: shorter side to resize_size, centre crop,
        normalise."""
        from transformers import BitImageProcessor
        prep = info.preprocessing
        BitImageProcessor(do_resize=True, size={"shortest_edge": prep["resize_size"]}, do_center_crop=True,
                          crop_size={"height": prep["image_size"], "width": prep["image_size"]},
                          do_normalize=True, image_mean=list(prep["mean"]), image_std=list(prep["std"]),
                          do_convert_rgb=True).save_pretrained(out)

    def onnx_fallback_inputs(self, info) -> list:
        size = info.preprocessing["image_size"]
        return [Image.new("RGB", (size, size), (120, 80, 200)), Image.new("RGB", (size, size), (10, 200, 30))]

    def onnx_preprocessing(self, info) -> dict:
        prep = info.preprocessing
        return {"resize_shorter_side": prep["resize_size"], "center_crop": prep["image_size"], "scale": "0..1",
                "mean": list(prep["mean"]), "std": list(prep["std"]), "layout": "NCHW float32 RGB"}

    def card_snippets(self, info: dict) -> dict[str, str]:
        return {"example": '["photo.jpg"]', "inputs": "images", "onnx": ONNX_IMAGE}


ONNX_IMAGE = """from PIL import Image

image = Image.open("photo.jpg").convert("RGB")
scale = prep["resize_shorter_side"] / min(image.size)  # shorter side to this size, then a centre crop
image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
crop = prep["center_crop"]
left, top = (image.width - crop) // 2, (image.height - crop) // 2
x = np.asarray(image.crop((left, top, left + crop, top + crop)), np.float32) / 255
x = ((x - prep["mean"]) / prep["std"]).transpose(2, 0, 1)[None].astype(np.float32)
logits = session.run(["logits"], {"pixel_values": x})[0]"""

TASK = ImageClassification()
tasks.register(TASK)

"""Images on the page: thumbnails of the checked data as the model sees them, a gallery of misclassified images,
and a playground that takes an upload, the webcam or the clipboard."""
from __future__ import annotations

import gradio as gr

from studio.engine.data.images import open_rgb
from studio.ui.panels.classification import ClassificationPanel

THUMBS_PER_CLASS = 4
THUMB_SIZE = 160
GALLERY_LIMIT = 60


def thumbnail(path: str):
    """The picture the model will see (upright, RGB), small."""
    image = open_rgb(path)
    image.thumbnail((THUMB_SIZE, THUMB_SIZE))
    return image


class ImagePanel(ClassificationPanel):
    def build_preview(self) -> None:
        self.preview = [gr.Gallery(label="A few examples of each class, as the model sees them", columns=4,
                                   height=320, visible=False, elem_id="data-gallery")]

    def show_preview(self, data) -> list:
        thumbs = []
        for index, name in enumerate(data.classes):
            items = [item for item, label in zip(data.train_items, data.train_labels) if label == index]
            thumbs += [(thumbnail(item), name) for item in items[:THUMBS_PER_CLASS]]
        return [gr.Gallery(value=thumbs, visible=True)]

    def build_mistakes(self) -> None:
        self.mistakes = [gr.Gallery(label="Misclassified validation images", columns=6, height="auto",
                                    visible=False, elem_id="mistakes-gallery")]

    def show_mistakes(self, report: dict, run_dir) -> list:
        shown = [w for w in report.get("misclassified", []) if w.get("thumbnail")][:GALLERY_LIMIT]
        items = [(str(run_dir / w["thumbnail"]), f"true {w['true']} → predicted {w['predicted']} "
                  f"({w['confidence']:.0%})") for w in shown]
        return [gr.Gallery(items, visible=bool(items))]

    def build_playground(self, run, answer, predict) -> None:
        image = gr.Image(label="An image", type="filepath", sources=["upload", "webcam", "clipboard"],
                         visible=False, elem_id="playground-image", height=280)
        examples = gr.Gallery(label="Examples (click one)", columns=4, height=220, visible=False,
                              allow_preview=False, elem_id="playground-examples")
        paths = gr.State([])

        def on_example(run_id, listed, evt: gr.SelectData):
            path = listed[evt.index]
            return path, *predict(run_id, path)

        image.upload(predict, [run, image], answer)
        examples.select(on_example, [run, paths], [image, *answer])
        self.input = image
        self.playground = [image, examples, paths]

    def show_playground(self, examples: list) -> list:
        return [gr.Image(visible=True, value=None), gr.Gallery(examples, visible=True), examples]


PANEL = ImagePanel()

"""Images on the page: thumbnails of the checked data as the model sees them, a gallery of misclassified images,
and a playground that takes an upload, the webcam or the clipboard."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from studio.engine.data.images import IMAGE_EXTENSIONS, inspect_image, open_rgb
from studio.ui import charts
from studio.ui.i18n import tr
from studio.ui.panels.classification import ClassificationPanel

THUMBS_PER_CLASS = 4
THUMB_SIZE = 160
GALLERY_LIMIT = 60


def thumbnail(path: str, size: int = THUMB_SIZE):
    """The picture the model will see (upright, RGB), small."""
    image = open_rgb(path)
    image.thumbnail((size, size))
    return image


class ImagePanel(ClassificationPanel):
    def build_preview(self) -> None:
        self.preview = [gr.Gallery(label="A few examples of each class, as the model sees them", columns=4,
                                   height=320, visible=False, elem_id="data-gallery")]

    def show_preview(self, data, draft: dict, workspace, lang: str = "en") -> list:
        thumbs = []
        for index, name in enumerate(data.classes):
            items = [item for item, label in zip(data.train_items, data.train_labels) if label == index]
            thumbs += [(thumbnail(item), name) for item in items[:THUMBS_PER_CLASS]]
        return [gr.Gallery(value=thumbs, visible=True)]

    def build_mistakes(self) -> None:
        self.mistakes = [gr.Gallery(label="Misclassified validation images", columns=6, height="auto",
                                    visible=False, elem_id="mistakes-gallery")]

    def show_mistakes(self, report: dict, run_dir, lang: str) -> list:
        shown = [w for w in report.get("misclassified", []) if w.get("thumbnail")][:GALLERY_LIMIT]
        items = [(str(run_dir / w["thumbnail"]), tr("is {true}, taken for {predicted} ({confidence} sure)", lang,
                                                     true=w["true"], predicted=w["predicted"],
                                                     confidence=f"{w['confidence']:.0%}")) for w in shown]
        return [gr.Gallery(items, visible=bool(items))]

    def build_playground(self, run, answer, predict, session) -> None:
        """An upload box (any file: one that is not an image is answered in words, not a broken picture), the
        webcam or the clipboard, the picture as the model sees it, and examples to click."""
        upload = gr.File(label="An image from this computer", file_types=sorted(IMAGE_EXTENSIONS), visible=False,
                         elem_id="playground-upload")
        camera = gr.Image(label="Or take one with the webcam, or paste one", type="filepath",
                          sources=["webcam", "clipboard"], visible=False, elem_id="playground-image", height=240)
        seen = gr.Image(label="What the model sees", interactive=False, visible=False, elem_id="playground-seen",
                        height=200)
        examples = gr.Gallery(label="Examples (click one)", columns=4, height=220, visible=False,
                              allow_preview=False, elem_id="playground-examples")
        paths, current = gr.State([]), gr.State(None)

        def on_image(run_id, path, state):
            if not path:
                return gr.skip(), gr.skip(), None, None
            reason = inspect_image(Path(path))[0]
            if reason:
                lang = state["lang"]
                return (f"**{tr('this is not an image we can read', lang).capitalize()}.** {reason}",
                        charts.empty_figure(tr("No answer", lang)), None, None)
            return (*predict(run_id, path, state), thumbnail(path, size=320), path)

        def on_example(run_id, listed, state, evt: gr.SelectData):
            return on_image(run_id, listed[evt.index], state)

        outputs = [*answer, seen, current]
        upload.upload(on_image, [run, upload, session], outputs)
        camera.input(on_image, [run, camera, session], outputs)
        examples.select(on_example, [run, paths, session], outputs)
        self.input = current
        self.playground = [upload, camera, seen, examples, paths]

    def show_playground(self, examples: list, folder) -> list:
        return [gr.File(visible=True, value=None), gr.Image(visible=True, value=None),
                gr.Image(visible=True, value=None), gr.Gallery(examples, visible=True), examples]


PANEL = ImagePanel()

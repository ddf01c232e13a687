"""Images on the page: thumbnails of the checked data as the model sees them, a gallery of misclassified images,
and a playground that takes an upload, the webcam or the clipboard."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from studio.engine.data.images import IMAGE_EXTENSIONS, inspect_image, open_rgb
from studio.ui import charts
from studio.ui.explain_view import DEFAULT_OPACITY, overlay
from studio.ui.i18n import tr
from studio.tasks.classification.report import copied
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
        self.gallery = gr.Gallery(label="A few examples of each class, as the model sees them", columns=4, height=320,
                                  visible=False, elem_id="data-gallery")
        self.preview = [self.gallery]

    def show_preview(self, data, draft: dict, workspace, lang: str = "en", say=None) -> dict:
        thumbs = []
        for index, name in enumerate(data.classes):
            items = [item for item, label in zip(data.train_items, data.train_labels) if label == index]
            thumbs += [(thumbnail(item), name) for item in items[:THUMBS_PER_CLASS]]
        return {self.gallery: gr.update(value=thumbs, visible=True)}

    def build_mistakes(self) -> None:
        self.mistakes_gallery = gr.Gallery(label="Misclassified validation images", columns=6, height="auto",
                                           visible=False, elem_id="mistakes-gallery")
        self.mistakes = [self.mistakes_gallery]

    def show_mistakes(self, report: dict, run_dir, lang: str) -> dict:
        shown = [w for w in report.get("misclassified", []) if copied(w)][:GALLERY_LIMIT]
        items = [(str(run_dir / copied(w)), tr("is {true}, taken for {predicted} ({confidence} sure)", lang,
                                                true=w["true"], predicted=w["predicted"],
                                                confidence=f"{w['confidence']:.0%}")) for w in shown]
        return {self.mistakes_gallery: gr.update(value=items, visible=bool(items))}

    def build_playground(self, ctx, run, predict) -> None:
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
        answer = ctx.shared["answer"]

        def on_image(run_id, path, state):
            if not path:
                return gr.skip()
            reason = inspect_image(Path(path))[0]
            if reason:
                lang = state["lang"]
                return {answer[0]: f"**{tr('this is not an image we can read', lang).capitalize()}.** {reason}",
                        answer[1]: charts.empty_figure(tr("No answer", lang)), seen: None, current: None}
            return {**predict(run_id, path, state), seen: thumbnail(path, size=320), current: path}

        def on_example(run_id, listed, state, evt: gr.SelectData):
            return on_image(run_id, listed[evt.index], state)

        outputs = [*answer, seen, current]
        ctx.on(upload.upload, on_image, [run, upload, ctx.session], outputs)
        ctx.on(camera.input, on_image, [run, camera, ctx.session], outputs)
        ctx.on(examples.select, on_example, [run, paths, ctx.session], outputs)
        self.input = current
        self._parts = (upload, camera, seen, examples, paths)
        self.playground = [upload, camera, seen, examples, paths]

    def show_playground(self, examples: list, run_dir) -> dict:
        upload, camera, seen, gallery, paths = self._parts
        return {upload: gr.update(visible=True, value=None), camera: gr.update(visible=True, value=None),
                seen: gr.update(visible=True, value=None), gallery: gr.update(value=examples, visible=True),
                paths: examples}

    def hide_playground(self) -> dict:
        return {c: gr.update(visible=False) for c in self._parts[:4]}

    def build_explanation(self) -> None:
        self.heatmap = gr.Image(label="What the model looked at (brighter: it mattered more)", interactive=False,
                                visible=False, elem_id="explain-heatmap", height=280, render=False)
        self.opacity = gr.Slider(0, 1, value=DEFAULT_OPACITY, step=0.05, label="Heatmap opacity", visible=False,
                                 elem_id="explain-opacity", render=False)
        self.explained = gr.State(None)  # (the image's path, its heatmap's path)
        self.explanation = [self.heatmap, self.opacity, self.explained]

    def wire_explanation(self, ctx) -> None:
        ctx.on(self.opacity.release, lambda value, paths: overlay(*paths, value) if paths else None,
               [self.opacity, self.explained], self.heatmap, show_progress="hidden")

    def show_explanation(self, result: dict, value, lang: str) -> dict:
        return {self.heatmap: gr.update(value=overlay(value, result["heatmap"], DEFAULT_OPACITY), visible=True),
                self.opacity: gr.update(value=DEFAULT_OPACITY, visible=True),
                self.explained: (value, result["heatmap"])}

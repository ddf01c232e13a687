"""Texts on the page: sample rows of the checked data, a table of misclassified texts, and a playground text box
with example texts to click."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.ui.panels.base import SAMPLE_CHARS
from studio.ui.panels.classification import ClassificationPanel


class TextPanel(ClassificationPanel):
    def build_preview(self) -> None:
        self.rows = gr.Dataframe(label="Sample rows", visible=False, wrap=True, elem_id="data-rows")
        self.preview = [self.rows]

    def show_preview(self, data, draft: dict, workspace, lang: str = "en") -> dict:
        rows = pd.DataFrame([(text, data.classes[label]) for text, label in zip(data.train_items, data.train_labels)],
                            columns=["text", "label"]).groupby("label").head(2)
        rows["text"] = [t if len(t) <= SAMPLE_CHARS else t[:SAMPLE_CHARS] + "…" for t in rows["text"]]
        return {self.rows: gr.update(value=rows, visible=True)}

    def build_mistakes(self) -> None:
        self.mistakes = [gr.Dataframe(label="Misclassified validation texts", interactive=False, visible=False,
                                      wrap=True, elem_id="mistakes-table")]

    def build_playground(self, ctx, run, predict) -> None:
        text = gr.Textbox(label="A text", lines=3, visible=False, elem_id="playground-text",
                          placeholder="Type a message and press Enter")
        examples = gr.Radio(label="Examples (click one)", choices=[], visible=False,
                            elem_id="playground-text-examples")
        answer = ctx.shared["answer"]
        ctx.on(text.submit, predict, [run, text, ctx.session], answer)  # Enter predicts
        ctx.on(examples.input, lambda r, value, state: {text: value, **predict(r, value, state)},
               [run, examples, ctx.session], [text, *answer])
        self.input, self.examples = text, examples
        self.playground = [text, examples]

    def show_playground(self, examples: list, run_dir) -> dict:
        return {self.input: gr.update(visible=True, value=""),
                self.examples: gr.update(choices=examples, value=None, visible=True)}

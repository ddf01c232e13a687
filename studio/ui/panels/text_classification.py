"""Texts on the page: sample rows of the checked data, a table of misclassified texts, and a playground text box
with example texts to click."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.ui.panels.base import SAMPLE_CHARS
from studio.ui.panels.classification import ClassificationPanel


class TextPanel(ClassificationPanel):
    def build_preview(self) -> None:
        self.preview = [gr.Dataframe(label="Sample rows", visible=False, wrap=True, elem_id="data-rows")]

    def show_preview(self, data, draft: dict, workspace, lang: str = "en") -> list:
        rows = pd.DataFrame([(text, data.classes[label]) for text, label in zip(data.train_items, data.train_labels)],
                            columns=["text", "label"]).groupby("label").head(2)
        rows["text"] = [t if len(t) <= SAMPLE_CHARS else t[:SAMPLE_CHARS] + "…" for t in rows["text"]]
        return [gr.Dataframe(rows, visible=True)]

    def build_mistakes(self) -> None:
        self.mistakes = [gr.Dataframe(label="Misclassified validation texts", interactive=False, visible=False,
                                      wrap=True, elem_id="mistakes-table")]

    def build_playground(self, run, answer, predict, session) -> None:
        text = gr.Textbox(label="A text", lines=3, visible=False, elem_id="playground-text",
                          placeholder="Type a message and press Enter")
        examples = gr.Radio(label="Examples (click one)", choices=[], visible=False,
                            elem_id="playground-text-examples")
        text.submit(predict, [run, text, session], answer)  # Enter predicts
        examples.input(lambda r, t, state: (t, *predict(r, t, state)), [run, examples, session], [text, *answer])
        self.input = text
        self.playground = [text, examples]

    def show_playground(self, examples: list, folder) -> list:
        return [gr.Textbox(visible=True, value=""), gr.Radio(choices=examples, value=None, visible=True)]


PANEL = TextPanel()

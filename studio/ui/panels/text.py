"""Texts on the page: sample rows of the checked data, a table of misclassified texts, and a playground text box
with example texts to click."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.ui.explain_view import highlighted
from studio.ui.i18n import tr
from studio.ui.panels.base import MISTAKE_WIDTHS, SAMPLE_CHARS, mistakes_update
from studio.ui.panels.classification import ClassificationPanel


class TextPanel(ClassificationPanel):
    def build_preview(self) -> None:
        self.rows = gr.Dataframe(label="Sample rows", visible=False, wrap=True, elem_id="data-rows",
                                 column_widths=["20%", "80%"])
        self.preview = [self.rows]

    def show_preview(self, data, draft: dict, workspace, lang: str = "en", say=None) -> dict:
        rows = pd.DataFrame([(data.classes[label], text) for text, label in zip(data.train_items, data.train_labels)],
                            columns=["label", "text"]).groupby("label").head(2)
        rows["text"] = [t if len(t) <= SAMPLE_CHARS else t[:SAMPLE_CHARS] + "…" for t in rows["text"]]
        rows.columns = [tr("label", lang), tr("text", lang)]
        return {self.rows: gr.update(value=rows, visible=True)}

    def build_mistakes(self) -> None:
        self.mistakes = [gr.Dataframe(label="Misclassified validation texts", interactive=False, visible=False,
                                      column_widths=MISTAKE_WIDTHS,
                                      wrap=True, elem_id="mistakes-table")]

    def show_mistakes(self, report: dict, run_dir, lang: str) -> dict:
        return {self.mistakes[0]: mistakes_update(report, "text", lambda item: str(item)[:SAMPLE_CHARS], lang)}

    def build_playground(self, ctx, run, predict) -> None:
        # One line that grows: Enter predicts, Shift+Enter starts a new line (gradio submits a one-line box on Enter)
        text = gr.Textbox(label="A text", lines=1, max_lines=8, visible=False, elem_id="playground-text",
                          placeholder="Type a message and press Enter")
        examples = gr.Radio(label="Examples (click one)", choices=[], visible=False,
                            elem_id="playground-text-examples")
        answer = ctx.shared["answer"]
        ctx.on(text.submit, predict, [run, text, ctx.session], answer)
        # an answer never stands beside a text it was not computed for
        ctx.on(text.input, ctx.shared["no_answer"], [run, text, ctx.session], answer, show_progress="hidden",
               trigger_mode="always_last")
        ctx.on(examples.input, lambda r, value, state: {text: value, **predict(r, value, state)},
               [run, examples, ctx.session], [text, *answer])
        self.input, self.examples = text, examples
        self.playground = [text, examples]

    def show_playground(self, examples: list, run_dir) -> dict:
        return {self.input: gr.update(visible=True, value=""),
                self.examples: gr.update(choices=examples, value=None, visible=True)}

    def build_explanation(self) -> None:
        self.tokens = gr.HighlightedText(label="Words that led to the answer (red: for it, blue: against it)",
                                         visible=False, elem_id="explain-tokens", combine_adjacent=False,
                                         show_legend=False, render=False)
        self.explanation = [self.tokens]

    def show_explanation(self, result: dict, value, lang: str) -> dict:
        return {self.tokens: gr.update(value=highlighted(result["tokens"]), visible=True)}

"""What a task's panel provides on the page. Each `build_*` method creates its components inside the tab that
calls it (so the tab lays them out) and keeps them in a list; each `show_*` method returns updates for exactly
those components, in order, and `hide` makes them invisible. A panel lays out plain data (reports, paths, texts):
tensors never reach the page."""
from __future__ import annotations

from typing import Callable

import gradio as gr
import pandas as pd

SAMPLE_CHARS = 300


def hide(components: list) -> list:
    return [gr.update(visible=False) for _ in components]


class GenericResults:
    """The Evaluate tab's results for a task without its own view: its figures in words."""

    def build(self) -> None:
        self.components = [gr.Markdown(visible=False)]

    def show(self, report: dict, status: dict, lang: str) -> list:
        figures = [f"**{key.replace('_', ' ')}** {value:.4g}" for key, value in report.items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)]
        return [gr.Markdown(" · ".join(figures) or "No figures.", visible=True)]


class Panel:
    """The generic panel: sample rows, a table of mistakes, a text box for the playground. `results` is the view
    of eval.json on the Evaluate tab; panels of tasks that report alike share one. `answers_shared`: its
    playground fills the tab's shared answer and probabilities chart (predict(run_id, value) → their values); a
    panel with a playground of its own (a chat, say) sets it False."""
    results = GenericResults()
    answers_shared = True
    preview: list
    mistakes: list
    playground: list

    # -- Data tab: a preview of checked data ------------------------------------------------------------------------
    def build_preview(self) -> None:
        self.preview = [gr.Dataframe(label="Sample rows", visible=False, wrap=True)]

    def show_preview(self, data, draft: dict, workspace, lang: str = "en") -> list:
        rows = pd.DataFrame({"example": [str(x)[:SAMPLE_CHARS] for x in data.train_items[:10]],
                             "label": [data.classes[i] for i in data.train_labels[:10]]})
        return [gr.Dataframe(rows, visible=True)]

    # -- Evaluate tab: what the model got wrong -----------------------------------------------------------------------
    def build_mistakes(self) -> None:
        self.mistakes = [gr.Dataframe(label="Misclassified validation examples", interactive=False, visible=False,
                                      wrap=True)]

    def show_mistakes(self, report: dict, run_dir, lang: str) -> list:
        wrong = report.get("misclassified", [])
        rows = pd.DataFrame([{"example": str(w["input"])[:SAMPLE_CHARS], "true": w["true"],
                              "predicted": w["predicted"], "confidence": f"{w['confidence']:.0%}"} for w in wrong],
                            columns=["example", "true", "predicted", "confidence"])
        return [gr.Dataframe(rows, visible=not rows.empty)]

    # -- Playground tab -------------------------------------------------------------------------------------------
    def build_playground(self, run: gr.Dropdown, answer: list, predict: Callable, session) -> None:
        """Inputs and examples for this task's models. `self.input` is the component the tab's Predict button
        reads; `answer` are the shared outputs a prediction fills, predict(run_id, value, session) → their
        values."""
        self.input = gr.Textbox(label="An input", lines=3, visible=False)
        self.input.submit(predict, [run, self.input, session], answer)
        self.playground = [self.input]

    def show_playground(self, examples: list, folder) -> list:
        return [gr.Textbox(visible=True, value="")]

"""What a panel provides on the page, and the generic panel every task without its own view gets. Each `build_*`
method creates its components inside the tab that calls it (so the tab lays them out); each `show_*` method returns
a {component: update} dict for them, and `hide_*` hides them. A panel lays out plain data (reports, paths, texts):
tensors never reach the page."""
from __future__ import annotations

from typing import Callable

import gradio as gr
import pandas as pd

from studio.ui.i18n import tr

SAMPLE_CHARS = 300
# mistakes tables: the true and predicted class and the confidence first, narrow; the example takes the rest
MISTAKE_COLUMNS = ("true", "predicted", "confidence")
MISTAKE_WIDTHS = ["15%", "15%", "12%", "58%"]


def hidden(components: list) -> dict:
    return {c: gr.update(visible=False) for c in components}


def mistakes_update(report: dict, noun: str, shown, lang: str) -> dict:
    """The update of a mistakes table: the true and predicted class and the confidence first, then the example
    (`noun` names its column; shown(input) is what the cell says)."""
    wrong = report.get("misclassified", [])
    columns = [tr(c, lang) for c in (*MISTAKE_COLUMNS, noun)]
    rows = pd.DataFrame([[w["true"], w["predicted"], f"{w['confidence']:.0%}", shown(w["input"])] for w in wrong],
                        columns=columns)
    return gr.update(value=rows, visible=not rows.empty)


class GenericResults:
    """The Evaluate tab's results for a task without its own view: its figures in words."""

    def build(self) -> None:
        self.components = [gr.Markdown(visible=False, elem_id="generic-results")]

    def show(self, report: dict, status: dict, lang: str) -> dict:
        figures = [f"**{key.replace('_', ' ')}** {value:.4g}" for key, value in report.items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)]
        return {self.components[0]: gr.update(value=" · ".join(figures) or tr("No figures.", lang), visible=True)}


class Panel:
    """The generic panel: sample rows, a table of mistakes (when the run lists any), a text box for the playground.
    `results`: the view of eval.json on the Evaluate tab, shared by panels whose tasks report alike.
    `answers_shared`: its playground fills the tab's shared answer and chart (predict(run_id, value, state) → that
    update); a panel with a playground of its own (a chat, say) sets it False."""
    results_view = GenericResults
    answers_shared = True
    preview: list
    mistakes: list
    playground: list

    def __init__(self, results):
        self.results = results

    # -- Data tab: a preview of checked data (say(words): what is being done, when it takes a while) --------------
    def build_preview(self) -> None:
        self.preview = [gr.Dataframe(label="Sample rows", visible=False, wrap=True, elem_id="generic-rows")]

    def show_preview(self, data, draft: dict, workspace, lang: str = "en", say=None) -> dict:
        items = list(getattr(data, "train_items", []))[:10]
        labels = getattr(data, "train_labels", None)
        classes = getattr(data, "classes", None)
        columns = {tr("example", lang): [str(x)[:SAMPLE_CHARS] for x in items]}
        if labels is not None and classes:
            columns[tr("label", lang)] = [classes[i] for i in labels[:len(items)]]
        return {self.preview[0]: gr.update(value=pd.DataFrame(columns), visible=bool(items))}

    def hide_preview(self) -> dict:
        return hidden(self.preview)

    # -- Evaluate tab: what the model got wrong -----------------------------------------------------------------------
    def build_mistakes(self) -> None:
        self.mistakes = [gr.Dataframe(label="Misclassified validation examples", interactive=False, visible=False,
                                      wrap=True, elem_id="generic-mistakes", column_widths=MISTAKE_WIDTHS)]

    def show_mistakes(self, report: dict, run_dir, lang: str) -> dict:
        return {self.mistakes[0]: mistakes_update(report, "example", lambda item: str(item)[:SAMPLE_CHARS], lang)}

    def hide_mistakes(self) -> dict:
        return hidden(self.mistakes)

    # -- Playground tab -------------------------------------------------------------------------------------------
    def build_playground(self, ctx, run: gr.Dropdown, predict: Callable) -> None:
        """Inputs and examples for this task's models. `self.input` is the component the tab's Predict button
        reads; predict(run_id, value, state) → the update of the shared answer and chart."""
        self.input = gr.Textbox(label="An input", lines=3, visible=False, elem_id="generic-input")
        ctx.on(self.input.submit, predict, [run, self.input, ctx.session], ctx.shared["answer"])
        self.playground = [self.input]

    def show_playground(self, examples: list, run_dir) -> dict:
        return {self.input: gr.update(visible=True, value="")}

    def hide_playground(self) -> dict:
        return hidden(self.playground)

    # -- Playground tab: why the model answered so (for a task with an explainer) ---------------------------------
    def build_explanation(self) -> None:
        """Components showing an explanation, created unrendered (the tab places them under the answer); states
        among them stay unseen. None for the generic panel."""
        self.explanation = []

    def wire_explanation(self, ctx) -> None:
        """The explanation's own controls' events, once the tab has placed them."""

    def show_explanation(self, result: dict, value, lang: str) -> dict:
        """The update of the explanation's components for an explainer's result on `value` (the input)."""
        return {}

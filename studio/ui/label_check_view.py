"""The Data tab's "12 examples look mislabelled — see them", before training: when a run has already cached the
chosen model's features for this data, the check runs as a queued job of its own (studio/run/label_check.py; never
in this process, and never computing features); the page polls for its result while it runs, then says how many
examples look mislabelled and, on "See them", shows them with their given and suggested labels (the Evaluate tab's
rows and captions: thumbnails for images, texts as rows)."""
from __future__ import annotations

import copy
from pathlib import Path

import gradio as gr

from studio import tasks
from studio.engine.data.images import IMAGE_EXTENSIONS
from studio.recipe import RecipeError
from studio.run import label_check
from studio.ui.i18n import tr
from studio.ui.label_issues import SHOWN, caption, rows
from studio.ui.panels.image import thumbnail

POLL_S = 2.0


class LabelCheckView:
    """Built once on the Data tab, under the data report; hidden for data the check does not apply to."""

    def build(self) -> None:
        with gr.Row():
            self.note = gr.Markdown(visible=False, elem_id="label-check-note")
            self.see = gr.Button("See them", size="sm", visible=False, elem_id="label-check-see")
        self.gallery = gr.Gallery(label="Examples that may be mislabelled", columns=6, height="auto",
                                  allow_preview=False, visible=False, elem_id="label-check-gallery")
        self.table = gr.Dataframe(label="Examples that may be mislabelled", interactive=False, wrap=True,
                                  visible=False, elem_id="label-check-table")
        self.timer = gr.Timer(POLL_S, active=False)
        self.watched = gr.State(None)  # the result file of this page's check
        self.components = [self.note, self.see, self.gallery, self.table, self.timer, self.watched]

    def wire(self, ctx) -> None:
        ctx.on(self.timer.tick, self.on_tick, [self.watched, ctx.session], [self.note, self.see, self.timer])
        ctx.on(self.see.click, self.on_see, [self.watched, ctx.session], [self.gallery, self.table])

    def hide(self) -> dict:
        return {self.note: gr.update(visible=False), self.see: gr.update(visible=False),
                self.gallery: gr.update(value=None, visible=False), self.table: gr.update(visible=False),
                self.timer: gr.Timer(active=False), self.watched: None}

    def show(self, data, draft: dict, workspace, lang: str) -> dict:
        """Checked data: the check's result when there is one, else the check started (features cached only)."""
        if not draft.get("model") or not tasks.get(draft["task"]).classes:
            return self.hide()  # no model chosen yet, or a task without classes (no labels to doubt)
        try:
            recipe = tasks.from_dict(copy.deepcopy(draft))
        except RecipeError:
            return self.hide()
        result = label_check.start(recipe, data, workspace)
        if result is None:
            return self.hide()
        return {**self.hide(), self.watched: str(result), **self.said(result, lang)}

    def said(self, result, lang: str) -> dict:
        """The sentence, once the result is there; the polling goes on while the check runs."""
        found = label_check.read(Path(result)) if result else None
        if found is None:
            waiting = bool(result) and label_check.running(Path(result))
            text = tr("Looking for examples that may be mislabelled, on the features a run already cached…", lang)
            return {self.note: gr.update(value=text, visible=waiting), self.see: gr.update(visible=False),
                    self.timer: gr.Timer(active=waiting)}
        n = len(found.get("label_issues") or [])
        if found.get("label_issues_from", {}).get("probabilities") is None:
            text, visible = "", False  # no cached features after all, or too few examples: nothing to say
        elif n == 0:
            text, visible = tr("**No example looks mislabelled**: cleanlab found no label that the out-of-fold "
                               "probabilities doubt.", lang), True
        else:
            text, visible = (tr("**1 example looks mislabelled**", lang) if n == 1 else
                             tr("**{n} examples look mislabelled**", lang, n=n)), True
        return {self.note: gr.update(value=text, visible=visible), self.see: gr.update(visible=n > 0),
                self.timer: gr.Timer(active=False)}

    def on_tick(self, result, state):
        return self.said(result, state["lang"])

    def on_see(self, result, state):
        found = label_check.read(Path(result)) if result else None
        issues = ((found or {}).get("label_issues") or [])[:SHOWN]
        if not issues:
            return gr.skip()
        lang, files = state["lang"], found.get("items_are_files")
        images = [(thumbnail(i["input"]), caption(i)) for i in issues
                  if files and str(i["input"]).lower().endswith(tuple(IMAGE_EXTENSIONS))]
        return {self.gallery: gr.update(value=images, visible=bool(images)),
                self.table: gr.update(value=rows(issues, lang, texts=not files), visible=True)}

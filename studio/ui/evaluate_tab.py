"""Evaluate: a finished run's results (eval.json), drawn by its task's panel: for classifiers accuracy, macro-F1,
a per-class table, the confusion matrix, per-group results, warnings and the validation examples it got wrong."""
from __future__ import annotations

import gradio as gr

from studio.runfolder import EVAL
from studio.ui import panels
from studio.ui.i18n import tr


def build(ctx, tab) -> None:
    ctx.static(gr.Markdown("### 5. How good is it?\n<span class='hint'>Measured on the examples held back from "
                           "training (the validation examples): the model never learned from them.</span>"))
    run = gr.Dropdown(label="Run", choices=[], elem_id="evaluate-run")
    note = gr.Markdown("Finish a run to see its results.", elem_id="evaluate-note")
    all_panels = panels.all_panels()
    views = list({id(p.results): p.results for p in all_panels}.values())  # shared views built once
    for view in views:
        view.build()
    for panel in all_panels:
        panel.build_mistakes()
    parts = [c for view in views for c in view.components] + [c for p in all_panels for c in p.mistakes]
    ctx.static(gr.Markdown("<span class='hint'>To see what pretraining bought, open the Runs tab and compare this "
                           "run with training from scratch in one click.</span>"))
    ctx.nav("train", "playground")
    hidden = [gr.update(visible=False) for _ in parts]

    def show(run_id, state):
        lang = state["lang"]
        report = ctx.run(run_id).read(EVAL) if run_id else None
        if report is None:
            text = (tr("This run has no evaluation (it did not finish).", lang) if run_id
                    else tr("Finish a run to see its results.", lang))
            return text, *hidden
        status = ctx.run_status(run_id)
        own = panels.get(status.get("task"))
        updates = [u for view in views for u in (view.show(report, status, lang) if view is own.results
                                                 else [gr.update(visible=False)] * len(view.components))]
        updates += [u for panel in all_panels for u in (panel.show_mistakes(report, ctx.run_dir(run_id), lang)
                                                        if panel is own else [gr.update(visible=False)] * len(
                                                            panel.mistakes))]
        return "", *updates

    def on_open(state):
        dropdown, chosen = ctx.run_dropdown(state)
        return dropdown, *show(chosen, state)

    tab.select(on_open, ctx.session, [run, note, *parts])
    run.input(show, [run, ctx.session], [note, *parts])

"""Evaluate: a finished run's results (eval.json), drawn by its task's panel: for classifiers accuracy, macro-F1,
a per-class table, the confusion matrix, per-group results, warnings and the validation examples it got wrong."""
from __future__ import annotations

import gradio as gr

from studio.runfolder import EVAL
from studio.ui import panels


def build(ctx, tab) -> None:
    gr.Markdown("### 5. How good is it?\n<span class='hint'>Measured on the validation examples the model never "
                "trained on.</span>")
    run = gr.Dropdown(label="Run", choices=[], elem_id="evaluate-run")
    note = gr.Markdown("Finish a run to see its results.", elem_id="evaluate-note")
    all_panels = panels.all_panels()
    views = list({id(p.results): p.results for p in all_panels}.values())  # shared views built once
    for view in views:
        view.build()
    for panel in all_panels:
        panel.build_mistakes()
    parts = [c for view in views for c in view.components] + [c for p in all_panels for c in p.mistakes]
    gr.Markdown("<span class='hint'>To see what pretraining bought, open the Runs tab and compare this run with "
                "training from scratch in one click.</span>")
    ctx.nav("train", "playground")
    hidden = [gr.update(visible=False) for _ in parts]

    def show(run_id):
        report = ctx.run(run_id).read(EVAL) if run_id else None
        if report is None:
            text = "This run has no evaluation (it did not finish)." if run_id else "Finish a run to see its results."
            return text, *hidden
        status = ctx.run_status(run_id)
        own = panels.get(status.get("task"))
        updates = [u for view in views for u in (view.show(report, status) if view is own.results
                                                 else [gr.update(visible=False)] * len(view.components))]
        updates += [u for panel in all_panels for u in (panel.show_mistakes(report, ctx.run_dir(run_id))
                                                        if panel is own else [gr.update(visible=False)] * len(
                                                            panel.mistakes))]
        return "", *updates

    def on_open(state):
        dropdown, chosen = ctx.run_dropdown(state)
        return dropdown, *show(chosen)

    tab.select(on_open, ctx.session, [run, note, *parts])
    run.input(show, run, [note, *parts])

"""Evaluate: a finished run's results (eval.json), drawn by its task's panel: for classifiers accuracy, macro-F1,
a per-class table, the confusion matrix, per-group results, warnings and the validation examples it got wrong."""
from __future__ import annotations

import gradio as gr

from studio.runfolder import EVAL
from studio.ui import panels
from studio.ui import session as sessions
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
    with gr.Row():  # a learning-rate range test's suggestion, taken for the next run in one click
        lr_note = gr.Markdown(visible=False, elem_id="lr-suggestion")
        use_lr = gr.Button("Use this learning rate for my next run", visible=False, size="sm", elem_id="use-lr")
    parts += [lr_note, use_lr]
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
        return "", *updates, *lr_suggestion(report, lang)

    def on_open(state):
        dropdown, chosen = ctx.run_dropdown(state)
        return dropdown, *show(chosen, state)

    def lr_suggestion(report, lang):
        found = report.get("lr_finder") or {}
        if not (found.get("ran") and found.get("suggestion")):
            return gr.update(visible=False), gr.update(visible=False)
        text = tr("A short learning-rate test before training suggests **{lr}** for this model and strategy.", lang,
                  lr=f"{found['suggestion']:.2g}")
        return gr.update(value=text, visible=True), gr.update(visible=True)

    def take_lr(run_id, state):
        report = ctx.run(run_id).read(EVAL) if run_id else None
        suggestion = ((report or {}).get("lr_finder") or {}).get("suggestion")
        if not suggestion:
            return state, sessions.summary(state)
        status = ctx.run_status(run_id)
        recipe = state["recipe"]
        if status.get("task") == recipe["task"] and status.get("strategy"):
            recipe["strategy"] = status["strategy"]  # the rate suits the strategy it was measured for
        recipe["train"] = {**recipe["train"], "learning_rate": float(f"{suggestion:.2g}")}
        gr.Info(tr("The next run will train at {lr} (Strategy tab, advanced settings).", state["lang"],
                   lr=f"{suggestion:.2g}"))
        return state, sessions.summary(state)

    use_lr.click(take_lr, [run, ctx.session], [ctx.session, ctx.summary])
    tab.select(on_open, ctx.session, [run, note, *parts])
    run.input(show, [run, ctx.session], [note, *parts])

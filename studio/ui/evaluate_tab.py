"""Evaluate: a finished run's results (eval.json), drawn by its task's panel: for classifiers accuracy, macro-F1,
a per-class table, the confusion matrix, per-group results, warnings and the validation examples it got wrong; for
chat models the tuned model against its base."""
from __future__ import annotations

import gradio as gr

from studio.runfolder import EVAL
from studio.ui import session as sessions
from studio.ui.i18n import mid_sentence, tr
from studio.ui.label_issues import LabelIssues


def build(ctx, tab) -> None:
    ctx.static(gr.Markdown("### 5. How good is it?\n<span class='hint'>Measured on the examples held back from "
                           "training (the validation examples): the model never learned from them.</span>"))
    run = gr.Dropdown(label="Run", choices=[], elem_id="evaluate-run")
    note = gr.Markdown("Finish a run to see its results.", elem_id="evaluate-note")
    views = list({id(p.results): p.results for p in ctx.all_panels()}.values())  # shared views built once
    for view in views:
        view.build()
    for panel in ctx.all_panels():
        panel.build_mistakes()
    issues = LabelIssues(ctx)  # examples that may be mislabelled: decide, then train again
    issues.build(run)
    with gr.Row():  # a learning-rate range test's suggestion, taken for the next run in one click
        lr_note = gr.Markdown(visible=False, elem_id="lr-suggestion")
        use_lr = gr.Button("Use this learning rate for my next run", visible=False, size="sm", elem_id="use-lr")
    compare_hint = gr.Markdown(elem_id="evaluate-compare-hint")
    ctx.nav("train", "playground")
    parts = [*(c for view in views for c in view.components), *(c for p in ctx.all_panels() for c in p.mistakes),
             lr_note, use_lr, compare_hint, *issues.components, issues.decisions]

    def hide_all() -> dict:
        out = {c: gr.update(visible=False) for view in views for c in view.components}
        for panel in ctx.all_panels():
            out.update(panel.hide_mistakes())
        return {**out, lr_note: gr.update(visible=False), use_lr: gr.update(visible=False), compare_hint: "",
                **issues.hide()}

    def show(run_id, state) -> dict:
        lang = state["lang"]
        report = ctx.run(run_id).read(EVAL) if run_id else None
        if report is None:
            text = (tr("This run has no evaluation (it did not finish).", lang) if run_id
                    else tr("Finish a run to see its results.", lang))
            return {note: text, **hide_all()}
        status = ctx.run_status(run_id)
        panel = ctx.panel_for(status.get("task"))
        return {note: "", **hide_all(), **panel.results.show(report, status, lang),
                **panel.show_mistakes(report, ctx.run_dir(run_id), lang), **lr_suggestion(report, lang),
                **issues.show(report, ctx.run_dir(run_id), lang),
                compare_hint: comparisons_hint(ctx.task_of(status), status, lang)}

    def on_open(state):
        dropdown, chosen = ctx.run_dropdown(state)
        return {run: dropdown, **show(chosen, state)}

    def lr_suggestion(report, lang) -> dict:
        found = report.get("lr_finder") or {}
        if not (found.get("ran") and found.get("suggestion")):
            return {}
        text = tr("A short learning-rate test before training suggests **{lr}** for this model and strategy.", lang,
                  lr=f"{found['suggestion']:.2g}")
        return {lr_note: gr.update(value=text, visible=True), use_lr: gr.update(visible=True)}

    def take_lr(run_id, state):
        report = ctx.run(run_id).read(EVAL) if run_id else None
        suggestion = ((report or {}).get("lr_finder") or {}).get("suggestion")
        if not suggestion:
            return gr.skip()
        status = ctx.run_status(run_id)
        recipe = state["recipe"]
        if status.get("task") == recipe["task"] and status.get("strategy"):
            recipe["strategy"] = status["strategy"]  # the rate suits the strategy it was measured for
        recipe["train"] = {**recipe["train"], "learning_rate": float(f"{suggestion:.2g}")}
        gr.Info(tr("The next run will train at {lr} (Strategy tab, advanced settings).", state["lang"],
                   lr=f"{suggestion:.2g}"))
        return {ctx.session: state, ctx.summary: sessions.summary(state)}

    ctx.on(use_lr.click, take_lr, [run, ctx.session], [ctx.session, ctx.summary])
    ctx.on(tab.select, on_open, [ctx.session], [run, note, *parts])
    ctx.on(run.input, show, [run, ctx.session], [note, *parts])


def comparisons_hint(task, status: dict, lang: str) -> str:
    """Where to compare the run with another strategy, for a task that offers any."""
    others = [task.strategies[name] for name in task.comparisons
              if name in task.strategies and name != status.get("strategy")]
    if not others:
        return ""
    words = tr(" or ", lang).join(mid_sentence(tr(s.words, lang), lang) for s in others)
    text = tr("To see what the strategy bought, open the Runs tab and compare this run with {others} in one click.",
              lang, others=words)
    return f"<span class='hint'>{text}</span>"

"""Evaluate: accuracy, macro-F1, a per-class table, the confusion matrix, the validation examples the model got
wrong, per-group results and warnings, for a finished run (its eval.json)."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.runfolder import EVAL
from studio.ui import charts, panels


def metrics_markdown(report: dict, status: dict) -> str:
    worst = min(report["per_class"].items(), key=lambda kv: kv[1]["f1"])
    stopped = (" Training stopped early: validation loss had stopped improving, so more epochs would not have "
               "helped." if report.get("stopped_early") else "")
    warnings = "".join(f"\n\n> ⚠️ {w}" for w in report.get("warnings", []))
    return (f"**Validation accuracy {report['accuracy']:.1%}** · macro-F1 {report['macro_f1']:.3f} · "
            f"loss {report['loss']:.4f} · {report['num_examples']} validation examples · best epoch "
            f"{report['best_epoch']} · {report['trainable_parameters']:,} trained weights · "
            f"{status.get('wall_time_s', 0):.0f} s\n\n<span class='hint'>Hardest class: **{worst[0]}** "
            f"(F1 {worst[1]['f1']:.2f}). Macro-F1 averages the classes equally, so a weak small class shows."
            f"{stopped}</span>{warnings}")


def mistakes_heading(report: dict) -> str:
    wrong = report.get("misclassified", [])
    return (f"**{len(wrong)} of {report['num_examples']} validation examples were misclassified**, most "
            "confident mistakes first." if wrong else "**No validation example was misclassified.**")


def groups_view(report: dict) -> tuple[str, pd.DataFrame | None]:
    groups = report.get("groups")
    if not groups:
        return "", None
    rows = pd.DataFrame([{"group": name, "accuracy": f"{v['accuracy']:.1%}", "macro-F1": round(v["macro_f1"], 3),
                          "examples": v["support"]} for name, v in groups["groups"].items()])
    text = (f"**Per group.** The largest gap between groups is {groups['accuracy_gap']:.1%} in accuracy "
            f"({groups['macro_f1_gap']:.3f} in macro-F1). A large gap means the model serves some groups worse; "
            "more examples from the weaker groups usually help.")
    return text, rows


def per_class_table(report: dict) -> pd.DataFrame:
    rows = [{"class": name, "precision": round(v["precision"], 3), "recall": round(v["recall"], 3),
             "F1": round(v["f1"], 3), "examples": v["support"]} for name, v in report["per_class"].items()]
    return pd.DataFrame(rows)


def build(ctx, tab) -> None:
    gr.Markdown("### 5. How good is it?\n<span class='hint'>Measured on the validation examples the model never "
                "trained on.</span>")
    run = gr.Dropdown(label="Run", choices=[], elem_id="evaluate-run")
    metrics = gr.Markdown("Finish a run to see its results.", elem_id="metrics")
    with gr.Row():
        table = gr.Dataframe(label="Per class", interactive=False, elem_id="per-class")
        confusion = gr.Plot(charts.empty_figure("The confusion matrix appears after a run"), elem_id="confusion-plot",
                            show_label=False)
    group_note = gr.Markdown(elem_id="group-note")
    group_table = gr.Dataframe(label="Per group", interactive=False, visible=False, elem_id="per-group")
    wrong_note = gr.Markdown(elem_id="mistakes-note")
    all_panels = panels.all_panels()
    for panel in all_panels:
        panel.build_mistakes()
    mistake_parts = [c for panel in all_panels for c in panel.mistakes]
    gr.Markdown("<span class='hint'>To see what pretraining bought, open the Runs tab and compare this run with "
                "training from scratch in one click.</span>")
    ctx.nav("train", "playground")
    outputs = [metrics, table, confusion, group_note, group_table, wrong_note, *mistake_parts]
    hidden = [gr.update(visible=False) for _ in mistake_parts]

    def show(run_id):
        report = ctx.run(run_id).read(EVAL) if run_id else None
        if report is None:
            text = "This run has no evaluation (it did not finish)." if run_id else "Finish a run to see its results."
            return (text, None, charts.empty_figure("No results"), "", gr.Dataframe(visible=False), "", *hidden)
        own = panels.get(ctx.run_status(run_id).get("task"))
        parts = [u for panel in all_panels for u in (panel.show_mistakes(report, ctx.run_dir(run_id))
                                                     if panel is own else [gr.update(visible=False)] * len(
                                                         panel.mistakes))]
        group_text, group_rows = groups_view(report)
        return (metrics_markdown(report, ctx.run_status(run_id)), per_class_table(report),
                charts.confusion_figure(report), group_text,
                gr.Dataframe(group_rows, visible=group_rows is not None), mistakes_heading(report), *parts)

    def on_open(state):
        dropdown, chosen = ctx.run_dropdown(state)
        return dropdown, *show(chosen)

    tab.select(on_open, ctx.session, [run, *outputs])
    run.input(show, run, outputs)

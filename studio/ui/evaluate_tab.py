"""Evaluate: accuracy, macro-F1, a per-class table and the confusion matrix of a finished run (its eval.json)."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.engine.events import read_json
from studio.ui import charts


def metrics_markdown(report: dict, status: dict) -> str:
    worst = min(report["per_class"].items(), key=lambda kv: kv[1]["f1"])
    return (f"**Validation accuracy {report['accuracy']:.1%}** · macro-F1 {report['macro_f1']:.3f} · "
            f"loss {report['loss']:.4f} · {report['num_examples']} validation examples · best epoch "
            f"{report['best_epoch']} · {report['trainable_parameters']:,} trained weights · "
            f"{status.get('wall_time_s', 0):.0f} s\n\n<span class='hint'>Hardest class: **{worst[0]}** "
            f"(F1 {worst[1]['f1']:.2f}). Macro-F1 averages the classes equally, so a weak small class shows.</span>")


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
    ctx.nav("train", "playground")

    def show(run_id):
        if not run_id:
            return "Finish a run to see its results.", None, charts.empty_figure("No finished run yet")
        report = read_json(ctx.run_dir(run_id) / "eval.json")
        if report is None:
            return "This run has no evaluation (it did not finish).", None, charts.empty_figure("No results")
        return metrics_markdown(report, ctx.run_status(run_id)), per_class_table(report), \
            charts.confusion_figure(report)

    def on_open(state):
        dropdown, chosen = ctx.run_dropdown(state)
        return dropdown, *show(chosen)

    tab.select(on_open, ctx.session, [run, metrics, table, confusion])
    run.input(show, run, [metrics, table, confusion])

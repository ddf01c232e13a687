"""What every classification task shows on the Evaluate tab: accuracy and macro-F1 in words, a per-class table,
the confusion matrix, per-group results and warnings; each modality adds how its mistakes look."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.ui import charts
from studio.ui.panels.base import Panel


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


class ClassificationResults:
    """The Evaluate tab's results of any classifier (built once, shared by every classification panel)."""

    def build(self) -> None:
        metrics = gr.Markdown(elem_id="metrics")
        with gr.Row():
            table = gr.Dataframe(label="Per class", interactive=False, elem_id="per-class")
            confusion = gr.Plot(charts.empty_figure("The confusion matrix appears after a run"),
                                elem_id="confusion-plot", show_label=False)
        group_note = gr.Markdown(elem_id="group-note")
        group_table = gr.Dataframe(label="Per group", interactive=False, visible=False, elem_id="per-group")
        wrong_note = gr.Markdown(elem_id="mistakes-note")
        self.components = [metrics, table, confusion, group_note, group_table, wrong_note]

    def show(self, report: dict, status: dict) -> list:
        group_text, group_rows = groups_view(report)
        return [gr.Markdown(metrics_markdown(report, status), visible=True),
                gr.Dataframe(per_class_table(report), visible=True),
                gr.Plot(charts.confusion_figure(report), visible=True), gr.Markdown(group_text, visible=True),
                gr.Dataframe(group_rows, visible=group_rows is not None),
                gr.Markdown(mistakes_heading(report), visible=True)]


RESULTS = ClassificationResults()


class ClassificationPanel(Panel):
    results = RESULTS

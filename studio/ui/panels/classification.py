"""What every classification task shows on the Evaluate tab: accuracy and macro-F1 in words, a per-class table,
the confusion matrix, per-group results and warnings; each modality adds how its mistakes look."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.ui import charts
from studio.ui.i18n import tr, tr_said
from studio.ui.panels.base import Panel


def headline(report: dict, lang: str) -> str:
    """One sentence a manager understands: how many new examples it gets right, and its most common confusion."""
    right = round(report["accuracy"] * report["num_examples"])
    text = tr("The model gets {right} of {total} new examples right", lang, right=right, total=report["num_examples"])
    labels, matrix = report["labels"], report["confusion_matrix"]
    pairs = [(matrix[i][j], i, j) for i in range(len(labels)) for j in range(len(labels)) if i != j and matrix[i][j]]
    if not pairs:
        return text + "."
    count, truth, guess = max(pairs)
    return text + tr("; it confuses {truth} with {guess} most ({count} times).", lang, truth=labels[truth],
                     guess=labels[guess], count=count)


def metrics_markdown(report: dict, status: dict, lang: str) -> str:
    weakest = min(report["per_class"].items(), key=lambda kv: kv[1]["f1"])
    hardest = (tr("Hardest class: **{name}** (F1 {f1}). ", lang, name=weakest[0], f1=f"{weakest[1]['f1']:.2f}")
               if weakest[1]["f1"] < 1 else "")
    stopped = (tr(" Training stopped early: the held-back examples had stopped improving, so more passes would not "
                  "have helped.", lang) if report.get("stopped_early") else "")
    warnings = "".join(f"\n\n> ⚠️ {tr_said(w, lang)}" for w in report.get("warnings", []))
    details = tr("Validation accuracy {accuracy} · macro-F1 {f1} · loss {loss} · {n} validation examples · best "
                 "pass {epoch} · {trained} learned numbers changed · {seconds} s", lang,
                 accuracy=f"{report['accuracy']:.1%}", f1=f"{report['macro_f1']:.3f}", loss=f"{report['loss']:.4f}",
                 n=report["num_examples"], epoch=report["best_epoch"], trained=f"{report['trainable_parameters']:,}",
                 seconds=f"{status.get('wall_time_s', 0):.0f}")
    explain = tr("Macro-F1 averages the classes equally, so a weak small class shows; loss is how unsure the model "
                 "is on average (lower is better).", lang)
    return (f"### {headline(report, lang)}\n\n{details}\n\n{reliability(report, lang)}\n\n<span class='hint'>"
            f"{hardest}{explain}{stopped}</span>{warnings}")


def reliability(report: dict, lang: str) -> str:
    """How far to trust the figures: the accuracy's 95% interval, and whether the percentages were calibrated."""
    parts = []
    interval = report.get("accuracy_interval")
    if interval and interval.get("examples"):
        parts.append(tr("With {n} validation examples, the true accuracy is 95% likely between {low} and {high}.",
                        lang, n=interval["examples"], low=f"{interval['low']:.0%}", high=f"{interval['high']:.0%}"))
    calibration = report.get("calibration") or {}
    if calibration.get("ece_after") is not None and calibration.get("reason"):  # fitted, not delivered
        parts.append(tr("Its confidence percentages are off by {before} on average; calibrating them on part of the "
                        "validation set did not do better on the rest, so they are left as trained.", lang,
                        before=f"{calibration['ece_before']:.1%}"))
    elif calibration.get("ece_after") is not None:
        parts.append(tr("Its confidence percentages were calibrated: on average they are off by {after} (before: "
                        "{before}).", lang, after=f"{calibration['ece_after']:.1%}",
                        before=f"{calibration['ece_before']:.1%}"))
    return " ".join(parts)


def mistakes_heading(report: dict, lang: str) -> str:
    wrong = report.get("misclassified", [])
    return (tr("**{wrong} of {total} validation examples were misclassified**, most confident mistakes first.", lang,
               wrong=len(wrong), total=report["num_examples"]) if wrong
            else tr("**No validation example was misclassified.**", lang))


def groups_view(report: dict, lang: str) -> tuple[str, pd.DataFrame | None]:
    groups = report.get("groups")
    if not groups:
        return "", None
    rows = pd.DataFrame([{tr("group", lang): name, tr("accuracy", lang): f"{v['accuracy']:.1%}",
                          "macro-F1": round(v["macro_f1"], 3), tr("examples", lang): v["support"]}
                         for name, v in groups["groups"].items()])
    text = tr("**Per group.** The largest gap between groups is {gap} in accuracy ({f1gap} in macro-F1). A large gap "
              "means the model serves some groups worse; more examples from the weaker groups usually help.", lang,
              gap=f"{groups['accuracy_gap']:.1%}", f1gap=f"{groups['macro_f1_gap']:.3f}")
    return text, rows


def per_class_table(report: dict, lang: str) -> pd.DataFrame:
    """precision: of the examples it put in the class, the share that belong there; recall: of the class's
    examples, the share it found."""
    rows = [{tr("class", lang): name, tr("precision", lang): round(v["precision"], 3),
             tr("recall", lang): round(v["recall"], 3), "F1": round(v["f1"], 3), tr("examples", lang): v["support"]}
            for name, v in report["per_class"].items()]
    return pd.DataFrame(rows)


class ClassificationResults:
    """The Evaluate tab's results of any classifier (built once per app, shared by every classification panel)."""

    def build(self) -> None:
        self.metrics = gr.Markdown(elem_id="metrics")
        with gr.Row():
            self.table = gr.Dataframe(label="Per class (precision: how often it is right when it says this class; "
                                            "recall: how much of the class it finds)", interactive=False,
                                      elem_id="per-class")
            self.confusion = gr.Plot(charts.empty_figure("The confusion matrix appears after a run"),
                                     elem_id="confusion-plot", show_label=False)
        self.group_note = gr.Markdown(elem_id="group-note")
        self.group_table = gr.Dataframe(label="Per group", interactive=False, visible=False, elem_id="per-group")
        self.wrong_note = gr.Markdown(elem_id="mistakes-note")
        self.components = [self.metrics, self.table, self.confusion, self.group_note, self.group_table,
                           self.wrong_note]

    def show(self, report: dict, status: dict, lang: str) -> dict:
        group_text, group_rows = groups_view(report, lang)
        return {self.metrics: gr.update(value=metrics_markdown(report, status, lang), visible=True),
                self.table: gr.update(value=per_class_table(report, lang), visible=True),
                self.confusion: gr.update(value=charts.confusion_figure(report, lang), visible=True),
                self.group_note: gr.update(value=group_text, visible=True),
                self.group_table: gr.update(value=group_rows, visible=group_rows is not None),
                self.wrong_note: gr.update(value=mistakes_heading(report, lang), visible=True)}


class ClassificationPanel(Panel):
    results_view = ClassificationResults

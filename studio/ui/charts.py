"""Plotly figures drawn from plain data: events, data reports, eval.json, predictions."""
from __future__ import annotations

import json

import plotly.graph_objects as go
from gradio.components.plot import PlotData

from studio.ui.i18n import tr

PALETTE = {"train": "#6366f1", "val": "#f59e0b", "acc": "#10b981", "f1": "#0ea5e9"}


# A light look set by hand: a named plotly template is deep-copied into every figure, which made each redraw of
# the live curves cost a tenth of a second of the interpreter's time, taken from the trainer thread.
AXIS = dict(gridcolor="#e5e7eb", zerolinecolor="#e5e7eb", linecolor="#cbd5e1")


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.02, font=dict(size=15)), height=height,
                      paper_bgcolor="white", plot_bgcolor="white", font=dict(color="#334155"),
                      margin=dict(l=50, r=20, t=45, b=45), xaxis=dict(title=x, **AXIS), yaxis=dict(title=y, **AXIS),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    return fig


# The live curves are redrawn every second while a run trains. Building a plotly Figure validates every point in
# Python: 60 ms for a 3000-step curve, against 4 ms for the same curve sent as plotly JSON through gradio's
# PlotData (measured 2026-11-24, 2 CPU cores). gr.Plot's public value is a Figure, so the live curves use PlotData
# (gradio.components.plot, stable across gradio 6; pyproject pins gradio below 7); the layout is validated once
# here.
_LOSS_LAYOUT = _layout(go.Figure(), "Loss (lower is better)", "step", "loss").to_plotly_json()["layout"]
_ACCURACY_LAYOUT = _layout(go.Figure().update_yaxes(range=[0, 1.02]), "Validation accuracy (higher is better)",
                           "epoch", "").to_plotly_json()["layout"]
# A solved head (feature extraction's default) has no steps: its curve is the search for its regularisation, one
# point per candidate strength scored on held-out folds of the training examples.
SEARCH_AXIS = "candidate (each fits the training examples more closely)"
_SEARCH_LOSS_LAYOUT = _layout(go.Figure(), "", SEARCH_AXIS, "loss").to_plotly_json()["layout"]
_SEARCH_ACCURACY_LAYOUT = _layout(go.Figure().update_yaxes(range=[0, 1.02]), "", SEARCH_AXIS,
                                  "").to_plotly_json()["layout"]


def _line(events: list[dict], x: str, y: str, name: str, color: str, width: float, mode: str,
          dash: str = "solid") -> dict:
    """One trace; events without the value (a task that does not report it) are left out."""
    events = [e for e in events if e.get(y) is not None]
    return {"type": "scatter", "x": [e[x] for e in events], "y": [e[y] for e in events], "name": name,
            "mode": mode, "line": {"color": color, "width": width, "dash": dash}}


def _live(traces: list[dict], layout: dict, title: str, empty: str) -> PlotData:
    """The figure as plotly JSON; with no point yet, no axes (an empty chart must not look broken), only `empty`."""
    layout = {**layout, "title": {**layout["title"], "text": title}}
    if not any(trace["x"] for trace in traces):
        layout.update(xaxis={"visible": False}, yaxis={"visible": False}, annotations=[
            {"text": empty, "showarrow": False, "font": {"size": 14, "color": "#64748b"}, "xref": "paper",
             "yref": "paper", "x": 0.5, "y": 0.5}])
    return PlotData(type="plotly", plot=json.dumps({"data": traces, "layout": layout}))


def latest(events: list[dict], kind: str, key: str) -> list[dict]:
    """Events of one kind, the last one for each value of `key`: a resumed run repeats the steps (and perhaps the
    epoch) it was in when it stopped, and the curves show the attempt that counted."""
    return sorted({e[key]: e for e in events if e["type"] == kind}.values(), key=lambda e: e[key])


def head_search(events: list[dict]) -> list[dict]:
    """The solved head's candidates, when they are the run's whole training (no step at all)."""
    return [] if any(e["type"] == "step" for e in events) else latest(events, "head_search", "candidate")


def _search_layout(layout: dict, lang: str) -> dict:
    return {**layout, "xaxis": {**layout["xaxis"], "title": {"text": tr(SEARCH_AXIS, lang)}}}


def loss_figure(events: list[dict], lang: str = "en") -> PlotData:
    """Training loss per step, validation loss per epoch (placed at the epoch's last step); for a solved head, the
    held-out loss of each candidate."""
    search = head_search(events)
    if search:
        return _live([_line(search, "candidate", "loss", tr("loss on held-out training examples", lang),
                            PALETTE["val"], 2.5, "lines+markers")],
                     _search_layout(_SEARCH_LOSS_LAYOUT, lang),
                     tr("Choosing the final layer: loss of each candidate (lower is better)", lang), "")
    steps, epochs = latest(events, "step", "step"), latest(events, "epoch", "epoch")
    return _live([_line(steps, "step", "train_loss", tr("training loss", lang), PALETTE["train"], 1.5, "lines"),
                  _line(epochs, "step", "val_loss", tr("validation loss", lang), PALETTE["val"], 2.5,
                        "lines+markers")],
                 _LOSS_LAYOUT, tr("Loss: how wrong the model still is (lower is better)", lang),
                 tr("The loss curve appears when training starts", lang))


def accuracy_figure(events: list[dict], lang: str = "en") -> PlotData:
    """Validation accuracy and macro-F1 per epoch; for a solved head, each candidate's held-out score and the chosen
    one's validation accuracy."""
    search = head_search(events)
    if search:
        fit = next((e for e in events if e["type"] == "head_fit"), None)
        chosen = next((c["candidate"] for c in search if fit and c["C"] == fit["C"]), None)
        final = [dict(e, candidate=chosen) for e in latest(events, "epoch", "epoch")] if chosen else []
        return _live([_line(search, "candidate", "score", tr("score on held-out training examples", lang),
                            PALETTE["f1"], 2, "lines+markers"),
                      _line(final, "candidate", "accuracy", tr("validation accuracy of the chosen one", lang),
                            PALETTE["acc"], 2.5, "markers")],
                     _search_layout(_SEARCH_ACCURACY_LAYOUT, lang),
                     tr("Choosing the final layer: score of each candidate (higher is better)", lang), "")
    epochs = latest(events, "epoch", "epoch")
    return _live([_line(epochs, "epoch", "accuracy", tr("validation accuracy", lang), PALETTE["acc"], 2.5,
                        "lines+markers"),
                  _line(epochs, "epoch", "macro_f1", "macro-F1", PALETTE["f1"], 1.5, "lines", dash="dot")],
                 _ACCURACY_LAYOUT, tr("Validation accuracy (higher is better)", lang),
                 tr("Accuracy appears after the first pass", lang))


def counts_figure(report: dict) -> go.Figure:
    classes = report["classes"]
    fig = go.Figure()
    fig.add_bar(x=classes, y=[report["train_counts"][c] for c in classes], name="training",
                marker_color=PALETTE["train"])
    fig.add_bar(x=classes, y=[report["validation_counts"][c] for c in classes], name="validation",
                marker_color=PALETTE["val"])
    fig.update_layout(barmode="stack")
    return _layout(fig, "Examples per class", "", "examples", height=300)


def durations_figure(durations: dict[str, list[float]]) -> go.Figure:
    """How long the clips are, one stacked histogram per class. durations: class → seconds of each clip."""
    fig = go.Figure()
    for n, (name, seconds) in enumerate(durations.items()):
        fig.add_histogram(x=seconds, name=name, marker_color=COMPARE_COLORS[n % len(COMPARE_COLORS)], nbinsx=30)
    fig.update_layout(barmode="stack")
    return _layout(fig, "Clip lengths", "seconds", "clips", height=300)


def confusion_figure(report: dict) -> go.Figure:
    labels, matrix = report["labels"], report["confusion_matrix"]
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Blues", showscale=False,
                               text=matrix, texttemplate="%{text}",
                               hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    size = max(320, 60 * len(labels) + 120)
    return _layout(fig, "Confusion matrix (rows: true class, columns: predicted)", "predicted", "true",
                   height=min(size, 700))


def top_k_figure(answer: dict, title: str = "Most likely labels", axis: str = "probability") -> go.Figure:
    ranked = list(reversed(answer["top_k"]))
    fig = go.Figure(go.Bar(x=[r["score"] for r in ranked], y=[r["label"] for r in ranked], orientation="h",
                           marker_color=PALETTE["train"], text=[f"{r['score']:.1%}" for r in ranked],
                           textposition="auto"))
    fig.update_xaxes(range=[0, 1])
    return _layout(fig, title, axis, "", height=80 + 40 * len(ranked))


def empty_figure(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=14, color="#64748b"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=240, paper_bgcolor="white", plot_bgcolor="white", margin=dict(l=10, r=10, t=10, b=10))
    return fig


COMPARE_COLORS = ["#6366f1", "#f59e0b", "#10b981", "#ef4444", "#0ea5e9", "#a855f7", "#64748b", "#84cc16"]
_COMPARE_ACCURACY = _layout(go.Figure().update_yaxes(range=[0, 1.02]), "Validation accuracy by epoch", "epoch",
                            "").to_plotly_json()["layout"]
_COMPARE_LOSS = _layout(go.Figure(), "Validation loss by epoch (lower is better)", "epoch",
                        "loss").to_plotly_json()["layout"]


def compare_figures(runs: list[tuple[str, list[dict]]], lang: str = "en") -> tuple[PlotData, PlotData]:
    """Validation accuracy and loss per epoch, one line per run, overlaid. runs: (name, events)."""
    accuracy, loss = [], []
    for n, (name, events) in enumerate(runs):
        epochs = latest(events, "epoch", "epoch")
        color = COMPARE_COLORS[n % len(COMPARE_COLORS)]
        accuracy.append(_line(epochs, "epoch", "accuracy", name, color, 2.5, "lines+markers"))
        loss.append(_line(epochs, "epoch", "val_loss", name, color, 2.5, "lines+markers"))
    return (_live(accuracy, _COMPARE_ACCURACY, tr("Validation accuracy by epoch", lang), tr("No epoch yet", lang)),
            _live(loss, _COMPARE_LOSS, tr("Validation loss by epoch (lower is better)", lang),
                  tr("No epoch yet", lang)))

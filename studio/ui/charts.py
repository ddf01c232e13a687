"""Plotly figures drawn from plain data: events, data reports, eval.json, predictions."""
from __future__ import annotations

import plotly.graph_objects as go

PALETTE = {"train": "#6366f1", "val": "#f59e0b", "acc": "#10b981", "f1": "#0ea5e9"}


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.02, font=dict(size=15)), height=height, template="plotly_white",
                      margin=dict(l=50, r=20, t=45, b=45), xaxis_title=x, yaxis_title=y,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    return fig


def loss_figure(events: list[dict]) -> go.Figure:
    """Training loss per step, validation loss per epoch (placed at the epoch's last step)."""
    steps = [e for e in events if e["type"] == "step"]
    epochs = [e for e in events if e["type"] == "epoch"]
    fig = go.Figure()
    fig.add_scatter(x=[e["step"] for e in steps], y=[e["train_loss"] for e in steps], mode="lines",
                    name="training loss", line=dict(color=PALETTE["train"], width=1.5))
    fig.add_scatter(x=[e["step"] for e in epochs], y=[e["val_loss"] for e in epochs], mode="lines+markers",
                    name="validation loss", line=dict(color=PALETTE["val"], width=2.5))
    return _layout(fig, "Loss (lower is better)", "step", "loss")


def accuracy_figure(events: list[dict]) -> go.Figure:
    epochs = [e for e in events if e["type"] == "epoch"]
    fig = go.Figure()
    fig.add_scatter(x=[e["epoch"] for e in epochs], y=[e["accuracy"] for e in epochs], mode="lines+markers",
                    name="validation accuracy", line=dict(color=PALETTE["acc"], width=2.5))
    fig.add_scatter(x=[e["epoch"] for e in epochs], y=[e["macro_f1"] for e in epochs], mode="lines",
                    name="macro-F1", line=dict(color=PALETTE["f1"], width=1.5, dash="dot"))
    fig.update_yaxes(range=[0, 1.02])
    return _layout(fig, "Validation accuracy (higher is better)", "epoch", "")


def counts_figure(report: dict) -> go.Figure:
    classes = report["classes"]
    fig = go.Figure()
    fig.add_bar(x=classes, y=[report["train_counts"][c] for c in classes], name="training",
                marker_color=PALETTE["train"])
    fig.add_bar(x=classes, y=[report["validation_counts"][c] for c in classes], name="validation",
                marker_color=PALETTE["val"])
    fig.update_layout(barmode="stack")
    return _layout(fig, "Examples per class", "", "examples", height=300)


def confusion_figure(report: dict) -> go.Figure:
    labels, matrix = report["labels"], report["confusion_matrix"]
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Blues", showscale=False,
                               text=matrix, texttemplate="%{text}",
                               hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    size = max(320, 60 * len(labels) + 120)
    return _layout(fig, "Confusion matrix (rows: true class, columns: predicted)", "predicted", "true",
                   height=min(size, 700))


def top_k_figure(answer: dict) -> go.Figure:
    ranked = list(reversed(answer["top_k"]))
    fig = go.Figure(go.Bar(x=[r["score"] for r in ranked], y=[r["label"] for r in ranked], orientation="h",
                           marker_color=PALETTE["train"], text=[f"{r['score']:.1%}" for r in ranked],
                           textposition="auto"))
    fig.update_xaxes(range=[0, 1])
    return _layout(fig, "Most likely labels", "probability", "", height=80 + 40 * len(ranked))


def empty_figure(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=14, color="#64748b"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=240, template="plotly_white", margin=dict(l=10, r=10, t=10, b=10))
    return fig

"""Plotly figures drawn from plain data: events, data reports, eval.json, predictions. Every word on a chart
(titles, axes, legends) is in the page's language."""
from __future__ import annotations

import plotly.graph_objects as go

from studio.ui.i18n import tr

PALETTE = {"train": "#6366f1", "val": "#f59e0b", "acc": "#10b981", "f1": "#0ea5e9"}
COMPARE_COLORS = ["#6366f1", "#f59e0b", "#10b981", "#ef4444", "#0ea5e9", "#a855f7", "#64748b", "#84cc16"]
# A light look set by hand: a named plotly template is deep-copied into every figure, which made each redraw of
# the live curves cost a tenth of a second of the interpreter's time, taken from the training worker beside it.
AXIS = dict(gridcolor="#e5e7eb", zerolinecolor="#e5e7eb", linecolor="#cbd5e1")
# The live curves are redrawn every second while a run trains, and building a figure validates every point in
# Python: 34 ms for a 3000-step curve, 10 ms for 400 points (2 CPU cores). A chart a few hundred pixels wide shows
# no more than that, so long curves are thinned to MAX_POINTS.
MAX_POINTS = 400
# A solved head (feature extraction's default) has no steps: its curve is the search for its regularisation, one
# point per candidate strength scored on held-out folds of the training examples.
SEARCH_AXIS = "candidate (each fits the training examples more closely)"


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 320) -> go.Figure:
    # The legend sits under the plot, so it never covers the title.
    fig.update_layout(title=dict(text=title, x=0.02, font=dict(size=15)), height=height,
                      paper_bgcolor="white", plot_bgcolor="white", font=dict(color="#334155"),
                      margin=dict(l=50, r=20, t=45, b=70), xaxis=dict(title=x, **AXIS), yaxis=dict(title=y, **AXIS),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0))
    return fig


def thin(points: list[dict], limit: int = MAX_POINTS) -> list[dict]:
    """At most `limit` points, evenly spaced, the last one always kept."""
    if len(points) <= limit:
        return points
    step = len(points) / (limit - 1)
    return [points[int(i * step)] for i in range(limit - 1)] + [points[-1]]


def _line(events: list[dict], x: str, y: str, name: str, color: str, width: float, mode: str,
          dash: str = "solid") -> dict:
    """One trace; events without the value (a task that does not report it) are left out."""
    events = thin([e for e in events if e.get(y) is not None])
    return {"type": "scatter", "x": [e[x] for e in events], "y": [e[y] for e in events], "name": name,
            "mode": mode, "line": {"color": color, "width": width, "dash": dash}}


def _figure(traces: list[dict], title: str, x: str, y: str, empty: str, y_range=None) -> go.Figure:
    """The traces under a title; with no point yet, no axes (an empty chart must not look broken), only `empty`."""
    fig = _layout(go.Figure({"data": traces}), title, x, y)
    if y_range:
        fig.update_yaxes(range=y_range)
    if not any(trace["x"] for trace in traces):
        fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, annotations=[
            {"text": empty, "showarrow": False, "font": {"size": 14, "color": "#64748b"}, "xref": "paper",
             "yref": "paper", "x": 0.5, "y": 0.5}])
    return fig


def latest(events: list[dict], kind: str, key: str) -> list[dict]:
    """Events of one type, the last one for each value of `key`: a resumed run repeats the steps (and perhaps the
    epoch) it was in when it stopped, and the curves show the attempt that counted."""
    return sorted({e[key]: e for e in events if e["type"] == kind}.values(), key=lambda e: e[key])


def head_search(events: list[dict]) -> list[dict]:
    """The solved head's candidates, when they are the run's whole training (no step at all)."""
    return [] if any(e["type"] == "step" for e in events) else latest(events, "head_search", "candidate")


def loss_figure(events: list[dict], lang: str = "en") -> go.Figure:
    """Training loss per step, validation loss per epoch (placed at the epoch's last step); for a solved head, the
    held-out loss of each candidate."""
    search = head_search(events)
    if search:
        return _figure([_line(search, "candidate", "loss", tr("loss on held-out training examples", lang),
                              PALETTE["val"], 2.5, "lines+markers")],
                       tr("Choosing the final layer: loss of each candidate (lower is better)", lang),
                       tr(SEARCH_AXIS, lang), tr("loss", lang), "")
    steps, epochs = latest(events, "step", "step"), latest(events, "epoch", "epoch")
    return _figure([_line(steps, "step", "train_loss", tr("training loss", lang), PALETTE["train"], 1.5, "lines"),
                    _line(epochs, "step", "val_loss", tr("validation loss", lang), PALETTE["val"], 2.5,
                          "lines+markers")],
                   tr("Loss: how wrong the model still is (lower is better)", lang), tr("step", lang),
                   tr("loss", lang), tr("The loss curve appears when training starts", lang))


def metrics_figure(events: list[dict], curves, lang: str = "en") -> go.Figure:
    """The task's per-epoch validation figures (`curves`: Metrics, the first one the chart's subject); for a solved
    head, each candidate's held-out score and the chosen one's validation figure."""
    first = curves[0] if curves else None
    search = head_search(events)
    if search and first is not None:
        fit = next((e for e in events if e["type"] == "head_fit"), None)
        chosen = next((c["candidate"] for c in search if fit and c["C"] == fit["C"]), None)
        final = [dict(e, candidate=chosen) for e in latest(events, "epoch", "epoch")] if chosen else []
        return _figure([_line(search, "candidate", "score", tr("score on held-out training examples", lang),
                              PALETTE["f1"], 2, "lines+markers"),
                        _line(final, "candidate", first.key, tr("{what} of the chosen one", lang,
                                                                 what=tr(first.words, lang)),
                              PALETTE["acc"], 2.5, "markers")],
                       tr("Choosing the final layer: score of each candidate (higher is better)", lang),
                       tr(SEARCH_AXIS, lang), "", "", y_range=[0, 1.02])
    epochs = latest(events, "epoch", "epoch")
    colors = [PALETTE["acc"], PALETTE["f1"], *COMPARE_COLORS]
    traces = [_line(epochs, "epoch", m.key, tr(m.words, lang), colors[n], 2.5 if n == 0 else 1.5,
                    "lines+markers" if n == 0 else "lines", dash="solid" if n == 0 else "dot")
              for n, m in enumerate(curves)]
    title = tr("{what} (higher is better)", lang, what=tr(first.words, lang).capitalize()) if first else ""
    return _figure(traces, title, tr("epoch", lang), "", tr("This curve appears after the first pass", lang),
                   y_range=[0, 1.02] if first is not None and first.percent else None)


def counts_figure(report: dict, lang: str = "en") -> go.Figure:
    classes = report["classes"]
    fig = go.Figure()
    fig.add_bar(x=classes, y=[report["train_counts"][c] for c in classes], name=tr("training", lang),
                marker_color=PALETTE["train"])
    fig.add_bar(x=classes, y=[report["validation_counts"][c] for c in classes], name=tr("validation", lang),
                marker_color=PALETTE["val"])
    fig.update_layout(barmode="stack")
    return _layout(fig, tr("Examples per class", lang), "", tr("examples", lang), height=300)


def durations_figure(durations: dict[str, list[float]], lang: str = "en") -> go.Figure:
    """How long the clips are, one stacked histogram per class. durations: class → seconds of each clip."""
    fig = go.Figure()
    for n, (name, seconds) in enumerate(durations.items()):
        fig.add_histogram(x=seconds, name=name, marker_color=COMPARE_COLORS[n % len(COMPARE_COLORS)], nbinsx=30)
    fig.update_layout(barmode="stack")
    return _layout(fig, tr("Clip lengths", lang), tr("seconds", lang), tr("clips", lang), height=300)


def confusion_figure(report: dict, lang: str = "en") -> go.Figure:
    labels, matrix = report["labels"], report["confusion_matrix"]
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Blues", showscale=False,
                               text=matrix, texttemplate="%{text}",
                               hovertemplate="%{y} → %{x}: %{z}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    size = max(320, 60 * len(labels) + 120)
    return _layout(fig, tr("Confusion matrix (rows: true class, columns: predicted)", lang), tr("predicted", lang),
                   tr("true", lang), height=min(size, 700))


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


def compare_figures(runs: list[tuple[str, list[dict]]], metric, lang: str = "en") -> tuple[go.Figure, go.Figure]:
    """A validation figure (`metric`, the runs' common headline curve) and the validation loss per epoch, one line
    per run, overlaid. runs: (name, events)."""
    figures, losses = [], []
    for n, (name, events) in enumerate(runs):
        epochs = latest(events, "epoch", "epoch")
        color = COMPARE_COLORS[n % len(COMPARE_COLORS)]
        if metric is not None:
            figures.append(_line(epochs, "epoch", metric.key, name, color, 2.5, "lines+markers"))
        losses.append(_line(epochs, "epoch", "val_loss", name, color, 2.5, "lines+markers"))
    what = tr(metric.words, lang).capitalize() if metric is not None else ""
    return (_figure(figures, tr("{what} by epoch", lang, what=what), tr("epoch", lang), "", tr("No epoch yet", lang),
                    y_range=[0, 1.02] if metric is not None and metric.percent else None),
            _figure(losses, tr("Validation loss by epoch (lower is better)", lang), tr("epoch", lang),
                    tr("loss", lang), tr("No epoch yet", lang)))


def sweep_figure(runs: list[dict], metric_words: str, lang: str = "en") -> go.Figure:
    """A sweep's scores (of its finished runs) against its settings: the first numeric setting on x (a log axis when it spans a decade or
    more, as learning rates do), otherwise the run's number; one colour per value of the other settings."""
    scored = [r for r in runs if r["score"] is not None]
    if not scored:
        return empty_figure(tr("No scores yet: the first run is still training.", lang))
    keys = list(scored[0]["settings"])
    numeric = [k for k in keys if all(isinstance(r["settings"].get(k), (int, float)) for r in scored)]
    x_key = numeric[0] if numeric else None
    fig = go.Figure()
    groups: dict[str, list[dict]] = {}
    for run in scored:
        label = ", ".join(f"{k}={run['settings'][k]}" for k in keys if k != x_key) or metric_words
        groups.setdefault(label, []).append(run)
    for n, (label, members) in enumerate(groups.items()):
        members.sort(key=lambda r: r["settings"][x_key] if x_key else r["index"])
        fig.add_trace(go.Scatter(
            x=[r["settings"][x_key] if x_key else r["index"] + 1 for r in members], y=[r["score"] for r in members],
            mode="markers+lines" if x_key else "markers", name=label,
            marker=dict(size=11, color=COMPARE_COLORS[n % len(COMPARE_COLORS)]),
            text=[r["run_id"] for r in members]))
    values = [r["settings"][x_key] for r in scored] if x_key else []
    log = bool(values) and min(values) > 0 and max(values) / min(values) >= 10
    _layout(fig, tr("Score by setting", lang), x_key or tr("run", lang), tr(metric_words, lang))
    fig.update_xaxes(type="log" if log else "linear")
    return fig

"""How the Playground shows an explanation (the task computes it; only paths and numbers reach here): an image's
heatmap laid over it at a chosen opacity, a text's words shaded by weight, a clip's windows drawn under its
waveform."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageOps
from plotly.subplots import make_subplots

from studio.ui.charts import AXIS, PALETTE
from studio.ui.i18n import tr

WAVEFORM_POINTS = 1500  # a few hundred pixels wide: more points only cost the page time
DEFAULT_OPACITY = 0.6


def overlay(image_path: str, heatmap_path: str, opacity: float) -> Image.Image:
    """The input with its heatmap over it, coloured (dark blue → red → yellow) and as opaque as the heat times
    `opacity`: where nothing mattered, the picture shows through."""
    image = Image.open(image_path).convert("RGB")
    heat = Image.open(heatmap_path).convert("L").resize(image.size)
    colour = ImageOps.colorize(heat, black="#1e3a8a", mid="#ef4444", white="#facc15")
    return Image.composite(colour, image, heat.point(lambda v: round(v * float(opacity))))


def highlighted(tokens: list[list]) -> list[tuple[str, float | None]]:
    """[[word, weight], …] as gr.HighlightedText shows them: each word shaded by its weight (-1..1), with the
    spaces between words unshaded."""
    out: list[tuple[str, float | None]] = []
    for word, weight in tokens:
        if out:
            out.append((" ", None))
        out.append((word, float(weight)))
    return out


def segments_figure(clip_path: str, segments: list[dict], lang: str) -> go.Figure:
    """The clip's waveform, and under it a bar per window: how much the predicted class's probability fell when
    that window was silenced."""
    import soundfile
    samples, rate = soundfile.read(clip_path, dtype="float32", always_2d=True)
    samples = samples.mean(axis=1)
    step = max(1, len(samples) // WAVEFORM_POINTS)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.55, 0.45], vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=np.arange(0, len(samples), step) / rate, y=samples[::step], mode="lines",
                             line=dict(color="#94a3b8", width=1), name=tr("waveform", lang)), row=1, col=1)
    fig.add_trace(go.Bar(x=[(s["start"] + s["end"]) / 2 for s in segments],
                         width=[s["end"] - s["start"] for s in segments], y=[s["weight"] for s in segments],
                         marker_color=[PALETTE["val"] if s["weight"] > 0 else "#cbd5e1" for s in segments],
                         name=tr("weight", lang)), row=2, col=1)
    fig.update_xaxes(title_text=tr("seconds", lang), row=2, col=1, **AXIS)
    fig.update_yaxes(title_text=tr("weight", lang), row=2, col=1, **AXIS)
    fig.update_layout(height=320, showlegend=False, paper_bgcolor="white", plot_bgcolor="white",
                      margin=dict(l=50, r=10, t=10, b=40))
    return fig

"""Where this studio's runs train, on the Model and Strategy tabs: a line naming the Ray cluster (studio --cluster)
and what it has — nodes, CPUs, GPUs, and how many are free now — as the run layer reads them from Ray itself
(Backend.describe). Nothing is shown when runs train on this machine."""
from __future__ import annotations

import html

import gradio as gr

from studio.ui.i18n import tr


def cluster_words(info: dict | None, lang: str) -> str:
    if info is None:
        return ""
    address = html.escape(info["address"])
    if not info["answers"]:
        return tr("Runs train on the Ray cluster at {address}, which does not answer right now.", lang,
                  address=address)
    return tr("Runs train on the Ray cluster at {address} (nodes: {nodes}, CPUs: {cpus}, GPUs: {gpus}); free now: "
              "{free_cpus} CPUs and {free_gpus} GPUs.", lang, address=address, nodes=info["nodes"],
              cpus=f"{info['CPU']:g}", gpus=f"{info['GPU']:g}", free_cpus=f"{info['free_CPU']:g}",
              free_gpus=f"{info['free_GPU']:g}")


def add(ctx, tab) -> gr.Markdown:
    """The line, filled when a page loads and each time the tab is opened (what is free changes)."""
    note = gr.Markdown(elem_id=f"cluster-note-{tab.id}", elem_classes=["hint"])

    def show(state) -> dict:
        return {note: cluster_words(ctx.jobs.backend.describe(), state["lang"])}

    ctx.on_load(show, [note])
    ctx.on(tab.select, show, [ctx.session], [note], show_progress="hidden")
    return note

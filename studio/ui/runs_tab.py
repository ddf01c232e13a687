"""Runs: every run in the workspace, read from disk (so they survive a restart); pick one to see its curves and
its recipe."""
from __future__ import annotations

import time

import gradio as gr
import pandas as pd

from studio.ui import charts

COLUMNS = ["run", "status", "task", "model", "strategy", "accuracy", "seconds", "started"]


def runs_table(runs: list[dict]) -> pd.DataFrame:
    rows = [{"run": r["id"], "status": r["status"], "task": (r["task"] or "").split("-")[0], "model": r["model"],
             "strategy": r["strategy"],
             "accuracy": f"{r['accuracy']:.1%}" if r["accuracy"] is not None else "",
             "seconds": f"{r['wall_time_s']:.0f}" if r["wall_time_s"] is not None else "",
             "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"])) if r["created"] else ""}
            for r in reversed(runs)]
    return pd.DataFrame(rows, columns=COLUMNS)


def build(ctx, tab) -> None:
    gr.Markdown("### 7. All runs\n<span class='hint'>Everything here is read from the workspace folder on "
                "disk.</span>")
    refresh = gr.Button("Refresh", size="sm")
    table = gr.Dataframe(pd.DataFrame(columns=COLUMNS), interactive=False, elem_id="runs-table", wrap=True)
    run = gr.Dropdown(label="Show a run", choices=[], elem_id="runs-run")
    error = gr.Markdown()
    with gr.Row():
        loss_plot = gr.Plot(charts.empty_figure("Pick a run"), show_label=False, elem_id="runs-loss-plot")
        accuracy_plot = gr.Plot(charts.empty_figure("Pick a run"), show_label=False)
    recipe_view = gr.Code(language="yaml", label="Recipe", elem_id="runs-recipe")
    ctx.nav("playground", None)

    def on_open(state):
        dropdown, chosen = ctx.run_dropdown(state, completed_only=False)
        return runs_table(ctx.workspace.runs()), dropdown, *show(chosen)

    def show(run_id):
        if not run_id:
            return "", charts.empty_figure("Pick a run"), charts.empty_figure("Pick a run"), ""
        folder = ctx.run_dir(run_id)
        events, status = ctx.run_events(run_id), ctx.run_status(run_id)
        note = f"**This run failed:** {status['error']}" if status.get("status") == "failed" else ""
        recipe_file = folder / "recipe.yaml"
        recipe = recipe_file.read_text(encoding="utf-8") if recipe_file.exists() else ""
        return note, charts.loss_figure(events), charts.accuracy_figure(events), recipe

    outputs = [table, run, error, loss_plot, accuracy_plot, recipe_view]
    tab.select(on_open, ctx.session, outputs)
    refresh.click(on_open, ctx.session, outputs)
    run.input(show, run, [error, loss_plot, accuracy_plot, recipe_view])

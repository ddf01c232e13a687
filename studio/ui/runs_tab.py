"""Runs: every run in the workspace, read from disk (so they survive a restart). Compare runs side by side (overlaid
validation curves and a table), queue the same recipe with another strategy in one click, resume a stopped run,
and export a finished model."""
from __future__ import annotations

import time

import gradio as gr
import pandas as pd
import yaml

from studio import recipe as recipes
from studio.engine.export import ExportError, export
from studio.engine.jobs import ResumeError
from studio.runfolder import EVAL, FINISHED, RESUMABLE, read_json
from studio.ui import charts
from studio.ui import session as sessions
from studio.workspace import RunNotFound

COLUMNS = ["run", "status", "task", "model", "strategy", "accuracy", "seconds", "started"]
COMPARE_COLUMNS = ["run", "strategy", "status", "trained weights", "trained %", "seconds", "peak memory MB",
                   "best accuracy", "best macro-F1", "best epoch"]
EXPORTS = {"Model folder (.zip)": "zip", "Transformers (pipeline) folder, zipped": "hf",
           "ONNX (model.onnx)": "onnx"}


def runs_table(runs: list[dict]) -> pd.DataFrame:
    rows = [{"run": r["id"], "status": r["status"], "task": (r["task"] or "").split("-")[0], "model": r["model"],
             "strategy": r["strategy"],
             "accuracy": f"{r['accuracy']:.1%}" if r["accuracy"] is not None else "",
             "seconds": f"{r['wall_time_s']:.0f}" if r["wall_time_s"] is not None else "",
             "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"])) if r["created"] else ""}
            for r in reversed(runs)]
    return pd.DataFrame(rows, columns=COLUMNS)


def compare_row(run_id: str, status: dict, events: list[dict], report: dict | None) -> dict:
    """One run's line in the comparison: from eval.json when finished, else from its events so far."""
    model = next((e for e in events if e["type"] == "model"), {})
    epochs = charts.latest(events, "epoch", "epoch")
    best = min(epochs, key=lambda e: e["val_loss"]) if epochs else {}
    trainable, total = model.get("trainable"), model.get("total")
    seconds = status.get("wall_time_s") or (epochs[-1]["elapsed"] if epochs else None)
    report = report or {}
    return {"run": run_id, "strategy": status.get("strategy", ""), "status": status.get("status", ""),
            "trained weights": f"{trainable:,}" if trainable is not None else "",
            "trained %": f"{100 * trainable / total:.2f}%" if trainable is not None and total else "",
            "seconds": f"{seconds:.0f}" if seconds is not None else "",
            "peak memory MB": f"{report['peak_memory_mb']:.0f}" if report.get("peak_memory_mb") else "",
            "best accuracy": f"{report.get('accuracy', best.get('accuracy', 0)):.1%}" if best else "",
            "best macro-F1": f"{report.get('macro_f1', best.get('macro_f1', 0)):.3f}" if best else "",
            "best epoch": report.get("best_epoch", best.get("epoch", ""))}


def data_of(run_dir) -> str:
    try:
        return str(yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))["data"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return ""


def build(ctx, tab) -> None:
    gr.Markdown("### 7. Runs: compare, resume, export\n<span class='hint'>Everything here is read from the "
                "workspace folder on disk, so it survives a restart.</span>")
    refresh = gr.Button("Refresh", size="sm")
    table = gr.Dataframe(pd.DataFrame(columns=COLUMNS), interactive=False, elem_id="runs-table", wrap=True)

    gr.Markdown("#### Compare runs\n<span class='hint'>Pick two or more runs on the same data. Runs still "
                "training update as they go.</span>")
    picked = gr.Dropdown(label="Runs to compare", choices=[], multiselect=True, elem_id="compare-runs")
    with gr.Row():
        compare_accuracy = gr.Plot(charts.empty_figure("Pick runs to compare"), show_label=False,
                                   elem_id="compare-accuracy-plot")
        compare_loss = gr.Plot(charts.empty_figure("Pick runs to compare"), show_label=False,
                               elem_id="compare-loss-plot")
    compare_note = gr.Markdown(elem_id="compare-note")
    compare_table = gr.Dataframe(pd.DataFrame(columns=COMPARE_COLUMNS), interactive=False, elem_id="compare-table",
                                 wrap=True)
    timer = gr.Timer(2.0, active=False)

    gr.Markdown("#### One run")
    run = gr.Dropdown(label="Run", choices=[], elem_id="runs-run")
    note = gr.Markdown(elem_id="runs-note")
    with gr.Row():
        vs_scratch = gr.Button("Compare with training from scratch", elem_id="compare-scratch")
        vs_full = gr.Button("Compare with full fine-tuning", elem_id="compare-full")
        resume = gr.Button("Resume this run", variant="primary", visible=False, elem_id="resume")
    gr.Markdown("<span class='hint'>The comparison queues the same data, model, epochs and batch size with the "
                "other strategy (and that strategy's default learning rate).</span>")
    with gr.Row():
        loss_plot = gr.Plot(charts.empty_figure("Pick a run"), show_label=False, elem_id="runs-loss-plot")
        accuracy_plot = gr.Plot(charts.empty_figure("Pick a run"), show_label=False)
    with gr.Accordion("Export the model", open=False):
        gr.Markdown("<span class='hint'>The .zip holds the weights, the labels and a model card (README.md) "
                    "that says how to load it. The transformers folder loads with "
                    "`transformers.pipeline(...)` (Hugging Face models). ONNX runs without Python ML "
                    "libraries; it is checked against the trained model before you get it.</span>")
        with gr.Row():
            export_format = gr.Radio(list(EXPORTS), value="Model folder (.zip)", label="Format",
                                     elem_id="export-format")
            export_button = gr.Button("Export", elem_id="export")
        export_note = gr.Markdown(elem_id="export-note")
        export_file = gr.File(label="Download", interactive=False, elem_id="export-file")
    recipe_view = gr.Code(language="yaml", label="Recipe", elem_id="runs-recipe")
    ctx.nav("playground", None)

    def comparison(run_ids):
        runs = [(run_id, ctx.run_status(run_id), ctx.run_events(run_id)) for run_id in run_ids or []]
        if not runs:
            return "", charts.empty_figure("Pick runs to compare"), charts.empty_figure("Pick runs to compare"), \
                pd.DataFrame(columns=COMPARE_COLUMNS), gr.Timer(active=False)
        datasets = {data_of(ctx.run_dir(run_id)) for run_id, _, _ in runs}
        note = ("⚠️ These runs were trained on different data (or a different split), so their scores are not "
                "directly comparable." if len(datasets) > 1 else "")
        named = [(f"{status.get('strategy', '')} · {run_id.split('-')[1]}", events) for run_id, status, events in runs]
        rows = [compare_row(run_id, status, events, ctx.run(run_id).read(EVAL))
                for run_id, status, events in runs]
        active = any(status.get("status") not in FINISHED for _, status, _ in runs)
        return (note, *charts.compare_figures(named), pd.DataFrame(rows, columns=COMPARE_COLUMNS),
                gr.Timer(active=active))

    def show(run_id):
        if not run_id:
            return "", charts.empty_figure("Pick a run"), charts.empty_figure("Pick a run"), "", gr.Button()
        folder = ctx.run_dir(run_id)
        events, status = ctx.run_events(run_id), ctx.run_status(run_id)
        state = status.get("status")
        text = {"failed": f"**This run failed:** {status.get('error', '')}",
                "interrupted": f"**Interrupted.** {status.get('message', '')}",
                "cancelled": "**Stopped by the user.** Resume continues from the step where it stopped."}.get(state, "")
        recipe_file = folder / "recipe.yaml"
        recipe = recipe_file.read_text(encoding="utf-8") if recipe_file.exists() else ""
        return (text, charts.loss_figure(events), charts.accuracy_figure(events), recipe,
                gr.Button(visible=state in RESUMABLE))

    def all_runs():
        choices = ctx.run_choices(completed_only=False)
        return choices, {run_id for _, run_id in choices}

    def on_open(state):
        choices, ids = all_runs()
        dropdown, chosen = ctx.run_dropdown(state, completed_only=False)
        compare = [r for r in state.get("compare", []) if r in ids]
        return (runs_table(ctx.workspace.runs()), gr.Dropdown(choices=choices, value=compare),
                *comparison(compare), dropdown, *show(chosen))

    def queue_with(strategy):
        def start(run_id, state):
            if not run_id:
                return "Pick a run first.", gr.skip(), state, gr.skip(), *(gr.skip(),) * 5
            try:
                recipe = recipes.load(ctx.run_dir(run_id) / "recipe.yaml").with_strategy(strategy)
                job = ctx.jobs.start(recipe)
            except recipes.RecipeError as exc:
                return f"**Cannot start the comparison.** {exc}", gr.skip(), state, gr.skip(), *(gr.skip(),) * 5
            state.update(run_id=job.run_id, compare=[run_id, job.run_id])
            choices, _ = all_runs()
            words = sessions.strategy_words(recipe.task, strategy).lower()
            return (f"Queued run `{job.run_id}` ({words}) with the same data and budget; both runs are compared "
                    "above.", gr.Dropdown(choices=choices, value=state["compare"]),
                    state, sessions.summary(state), *comparison(state["compare"]))
        return start

    def on_resume(run_id, state):
        try:
            job = ctx.jobs.resume(run_id)
        except (ResumeError, recipes.RecipeError, RunNotFound) as exc:
            return f"**Cannot resume.** {exc}", state, gr.Button()
        state["run_id"] = job.run_id
        return (f"Run `{run_id}` queued again: it continues from its last checkpoint. Follow it on the "
                "Train tab.", state, gr.Button(visible=False))

    def on_export(run_id, label):
        if not run_id:
            return "Pick a run first.", None
        fmt = EXPORTS[label]
        folder = ctx.run_dir(run_id)
        try:
            path = export(folder, fmt)
            if fmt == "hf":
                path = export(folder, "zip")  # the zip carries model/hf/ with the rest
        except ExportError as exc:
            return f"**Cannot export.** {exc}", None
        extra = ""
        if fmt == "onnx":
            check = read_json(path.parent / "onnx_check.json") or {}
            extra = (f" Checked with onnxruntime against the trained model on {check.get('examples')} examples: "
                     f"largest difference {check.get('max_abs_diff', 0):.1e}.")
        return f"Exported `{path.name}`.{extra}", str(path)

    compare_outputs = [compare_note, compare_accuracy, compare_loss, compare_table, timer]
    show_outputs = [note, loss_plot, accuracy_plot, recipe_view, resume]
    outputs = [table, picked, *compare_outputs, run, *show_outputs]
    tab.select(on_open, ctx.session, outputs)
    refresh.click(on_open, ctx.session, outputs)
    picked.input(lambda ids, state: (*comparison(ids), {**state, "compare": ids}), [picked, ctx.session],
                 [*compare_outputs, ctx.session])
    timer.tick(comparison, picked, compare_outputs, show_progress="hidden")
    run.input(show, run, show_outputs)
    for button, strategy in ((vs_scratch, "scratch"), (vs_full, "full")):
        button.click(queue_with(strategy), [run, ctx.session], [note, picked, ctx.session, ctx.summary,
                                                                 *compare_outputs])
    resume.click(on_resume, [run, ctx.session], [note, ctx.session, resume])
    export_button.click(on_export, [run, export_format], [export_note, export_file])

"""Runs: every run in the workspace, read from disk (so they survive a restart, and runs started from the command
line or another browser show up too). Compare runs side by side (overlaid validation curves and a table), queue
the same recipe with another strategy in one click, open a run on the Train tab, resume a stopped run, and export
a finished model."""
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
from studio.ui.i18n import tr
from studio.workspace import RunNotFound

COLUMNS = ["run", "status", "accuracy", "seconds", "started", "id"]
COMPARE_COLUMNS = ["run", "status", "trained weights", "trained %", "seconds", "peak memory MB", "best accuracy",
                   "best macro-F1", "best epoch", "stopped early"]
EXPORT_WORDS = {"zip": "Model folder (.zip)", "hf": "Transformers (pipeline) folder, zipped",
                "onnx": "ONNX (model.onnx)", "adapter": "Adapter alone (peft folder), zipped"}


def _columns(columns: list[str], lang: str) -> list[str]:
    return [tr(c, lang) for c in columns]


def runs_table(runs: list[dict], lang: str = "en") -> pd.DataFrame:
    rows = [[sessions.run_name({**r, "status": ""}, lang), tr(r["status"], lang),
             f"{r['accuracy']:.1%}" if r["accuracy"] is not None else "",
             f"{r['wall_time_s']:.0f}" if r["wall_time_s"] is not None else "",
             time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"])) if r["created"] else "", r["id"]]
            for r in reversed(runs)]
    return pd.DataFrame(rows, columns=_columns(COLUMNS, lang))


def stopped_early_words(report: dict, status: dict, lang: str) -> str:
    if not report.get("stopped_early"):
        return tr("no", lang) if status.get("status") == "completed" else ""
    return tr("yes, after pass {last}: no better since pass {best}", lang, last=len(report.get("history", [])),
              best=report.get("best_epoch"))


def compare_row(run_id: str, status: dict, events: list[dict], report: dict | None, lang: str = "en") -> dict:
    """One run's line in the comparison: from eval.json when finished, else from its events so far."""
    model = next((e for e in events if e["type"] == "model"), {})
    epochs = charts.latest(events, "epoch", "epoch")
    # the trainer's rule: the most accurate epoch, the lower loss among equals (a chat run has only the loss)
    best = max(epochs, key=lambda e: (e.get("accuracy", 0), -e["val_loss"])) if epochs else {}
    trainable, total = model.get("trainable"), model.get("total")
    seconds = status.get("wall_time_s") or (epochs[-1]["elapsed"] if epochs else None)
    report = report or {}
    values = [sessions.run_name({**status, "status": ""}, lang) or run_id, tr(status.get("status", ""), lang),
              f"{trainable:,}" if trainable is not None else "",
              f"{100 * trainable / total:.2f}%" if trainable is not None and total else "",
              f"{seconds:.0f}" if seconds is not None else "",
              f"{report['peak_memory_mb']:.0f}" if report.get("peak_memory_mb") else "",
              f"{report.get('accuracy', best.get('accuracy', 0)):.1%}" if best else "",
              f"{report.get('macro_f1', best.get('macro_f1', 0)):.3f}" if best else "",
              report.get("best_epoch", best.get("epoch", "")), stopped_early_words(report, status, lang)]
    return dict(zip(_columns(COMPARE_COLUMNS, lang), values))


def data_of(run_dir) -> str:
    try:
        return str(yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))["data"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return ""


def build(ctx, tab) -> None:
    ctx.static(gr.Markdown("### 7. Runs: compare, resume, export\n<span class='hint'>Everything here is read from "
                           "the workspace folder on disk, so it survives a restart.</span>"))
    refresh = gr.Button("Refresh", size="sm", elem_id="runs-refresh")
    table = gr.Dataframe(pd.DataFrame(columns=COLUMNS), interactive=False, elem_id="runs-table", wrap=True)

    ctx.static(gr.Markdown("#### Compare runs\n<span class='hint'>Pick two or more runs on the same data. Runs "
                           "still training update as they go.</span>"))
    picked = gr.Dropdown(label="Runs to compare", choices=[], multiselect=True, elem_id="compare-runs")
    with gr.Row():
        compare_accuracy = gr.Plot(charts.empty_figure(""), show_label=False, elem_id="compare-accuracy-plot")
        compare_loss = gr.Plot(charts.empty_figure(""), show_label=False, elem_id="compare-loss-plot")
    compare_note = gr.Markdown(elem_id="compare-note")
    compare_table = gr.Dataframe(pd.DataFrame(columns=COMPARE_COLUMNS), interactive=False, elem_id="compare-table",
                                 wrap=True)
    timer = gr.Timer(2.0, active=False)

    ctx.static(gr.Markdown("#### One run"))
    run = gr.Dropdown(label="Run", choices=[], elem_id="runs-run")
    note = gr.Markdown(elem_id="runs-note")
    with gr.Row():
        open_run = gr.Button("Watch it on the Train tab", elem_id="open-run")
        vs_scratch = gr.Button("Compare with training from scratch", elem_id="compare-scratch")
        vs_full = gr.Button("Compare with full fine-tuning", elem_id="compare-full")
        resume = gr.Button("Resume this run", variant="primary", visible=False, elem_id="resume")
    ctx.static(gr.Markdown("<span class='hint'>The comparison queues the same data, model, number of passes and "
                           "batch size with the other strategy (and that strategy's own learning rate).</span>"))
    with gr.Row():
        loss_plot = gr.Plot(charts.empty_figure(""), show_label=False, elem_id="runs-loss-plot")
        accuracy_plot = gr.Plot(charts.empty_figure(""), show_label=False)
    with gr.Accordion("Export the model", open=False):
        ctx.static(gr.Markdown("<span class='hint'>The .zip holds the weights, the labels and a model card "
                               "(README.md) that says how to load it. The transformers folder loads with "
                               "`transformers.pipeline(...)`. ONNX runs without Python ML libraries; it is checked "
                               "against the trained model before you get it.</span>"))
        with gr.Row():
            export_format = ctx.texts.keep_choices(gr.Radio([], label="Format", elem_id="export-format"))
            export_button = gr.Button("Export", elem_id="export")
        export_note = gr.Markdown(elem_id="export-note")
        export_file = gr.File(label="Download", interactive=False, elem_id="export-file")
    recipe_view = gr.Code(language="yaml", label="Recipe", elem_id="runs-recipe", max_lines=None)
    ctx.nav("playground", None)

    def comparison(run_ids, state):
        lang = state["lang"]
        runs = [(run_id, ctx.run_status(run_id), ctx.run_events(run_id)) for run_id in run_ids or []]
        if not runs:
            return ("", *charts.compare_figures([], lang), pd.DataFrame(columns=_columns(COMPARE_COLUMNS, lang)),
                    gr.Timer(active=False))
        datasets = {data_of(ctx.run_dir(run_id)) for run_id, _, _ in runs}
        note = (tr("⚠️ These runs were trained on different data (or a different split), so their scores are not "
                   "directly comparable.", lang) if len(datasets) > 1 else "")
        named = [(sessions.run_name({**status, "status": ""}, lang) or run_id, events)
                 for run_id, status, events in runs]
        rows = [compare_row(run_id, status, events, ctx.run(run_id).read(EVAL), lang)
                for run_id, status, events in runs]
        active = any(status.get("status") not in FINISHED for _, status, _ in runs)
        return (note, *charts.compare_figures(named, lang), pd.DataFrame(rows), gr.Timer(active=active))

    def show(run_id, state):
        lang = state["lang"]
        if not run_id:
            return ("", charts.loss_figure([], lang), charts.accuracy_figure([], lang), "", gr.Button(visible=False),
                    gr.Radio(choices=[], value=None))
        run_folder = ctx.run(run_id)
        events, status = run_folder.events(), run_folder.status()
        current = status.get("status")
        text = {"failed": tr("**This run failed:** {error}", lang, error=status.get("error", "")),
                "interrupted": tr("**Interrupted.** {message}", lang, message=status.get("message", "")),
                "cancelled": tr("**Stopped by the user.** Resume continues from the step where it stopped.", lang)
                }.get(current, "")
        formats = _formats(run_folder, lang)
        return (text, charts.loss_figure(events, lang), charts.accuracy_figure(events, lang),
                run_folder.recipe_text(), gr.Button(visible=current in RESUMABLE),
                gr.Radio(choices=formats, value=formats[0][1] if formats else None))

    def on_open(state):
        choices = ctx.run_choices(state, completed_only=False, with_id=True)
        ids = {run_id for _, run_id in choices}
        compare = [r for r in state.get("compare", []) if r in ids]
        chosen = state["run_id"] if state["run_id"] in ids else None
        return (runs_table(ctx.workspace.runs(), state["lang"]), gr.Dropdown(choices=choices, value=compare),
                *comparison(compare, state), gr.Dropdown(choices=choices, value=chosen), *show(chosen, state))

    def queue_with(strategy):
        def start(run_id, state):
            lang = state["lang"]
            def saying(message, views):  # the note is one of the refreshed views: it carries the message
                views = list(views)
                views[refreshed.index(note)] = message
                return views
            skip = [gr.skip()] * len(refreshed)
            if not run_id:
                return gr.skip(), gr.skip(), *saying(tr("Pick a run first.", lang), skip)
            try:
                recipe = recipes.load(ctx.run_dir(run_id) / "recipe.yaml").with_strategy(strategy)
                job = ctx.jobs.start(recipe)
            except recipes.RecipeError as exc:
                return gr.skip(), gr.skip(), *saying(f"**{tr('Cannot start the comparison.', lang)}** {exc}", skip)
            sessions.add_run(state, job.run_id)
            state["compare"] = [run_id, job.run_id]
            words = sessions.strategy_words(recipe.task, strategy, lang).lower()
            message = tr("Queued a run ({words}) with the same data and budget; both runs are compared above.", lang,
                         words=words)
            return state, sessions.summary(state), *saying(message, on_open(state))
        return start

    def on_resume(run_id, state):
        lang = state["lang"]
        try:
            job = ctx.jobs.resume(run_id)
        except (ResumeError, recipes.RecipeError, RunNotFound) as exc:
            return f"**{tr('Cannot resume.', lang)}** {exc}", state, gr.Button(), gr.skip()
        sessions.add_run(state, job.run_id)
        return (tr("Run queued again: it continues from its last checkpoint. Follow it on the Train tab.", lang),
                state, gr.Button(visible=False), sessions.summary(state))

    def on_open_run(run_id, state):
        if not run_id:
            return state, gr.skip(), gr.skip()
        state["run_id"] = run_id  # the Train tab shows this run, wherever it was started
        return state, sessions.summary(state), gr.Tabs(selected="train")

    def on_export(run_id, fmt, state):
        lang = state["lang"]
        if not run_id or not fmt:
            return tr("Pick a run first.", lang), None
        folder = ctx.run_dir(run_id)
        try:
            path = export(folder, fmt)
            if fmt != "zip" and path.is_dir():
                path = export(folder, "zip")  # a folder export travels inside the zip
        except ExportError as exc:
            return f"**{tr('Cannot export.', lang)}** {exc}", None
        extra = ""
        if fmt == "onnx":
            check = read_json(path.parent / "onnx_check.json") or {}
            extra = " " + tr("Checked with onnxruntime against the trained model on {n} examples: largest "
                             "difference {diff}.", lang, n=check.get("examples"),
                             diff=f"{check.get('max_abs_diff', 0):.1e}")
        return tr("Exported `{name}`.", lang, name=path.name) + extra, str(path)

    compare_outputs = [compare_note, compare_accuracy, compare_loss, compare_table, timer]
    show_outputs = [note, loss_plot, accuracy_plot, recipe_view, resume, export_format]
    refreshed = [table, picked, *compare_outputs, run, *show_outputs]
    tab.select(on_open, ctx.session, refreshed)
    refresh.click(on_open, ctx.session, refreshed)
    picked.input(lambda ids, state: (*comparison(ids, state), {**state, "compare": ids}), [picked, ctx.session],
                 [*compare_outputs, ctx.session])
    timer.tick(comparison, [picked, ctx.session], compare_outputs, show_progress="hidden")
    run.input(show, [run, ctx.session], show_outputs)
    for button, strategy in ((vs_scratch, "scratch"), (vs_full, "full")):
        button.click(queue_with(strategy), [run, ctx.session], [ctx.session, ctx.summary, *refreshed])
    open_run.click(on_open_run, [run, ctx.session], [ctx.session, ctx.summary, ctx.tabs])
    resume.click(on_resume, [run, ctx.session], [note, ctx.session, resume, ctx.summary])
    export_button.click(on_export, [run, export_format, ctx.session], [export_note, export_file])


def _formats(run_folder, lang: str) -> list[tuple[str, str]]:
    """The export formats of the run's task, in words (none before the run has a model)."""
    from studio.engine.export import formats
    try:
        return [(tr(EXPORT_WORDS.get(fmt, fmt), lang), fmt) for fmt in formats(run_folder)]
    except ExportError:
        return []

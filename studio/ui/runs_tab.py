"""Runs: every run in the workspace, read from disk (so they survive a restart, and runs started from the command
line or another browser show up too). Compare runs side by side (overlaid validation curves and a table), queue
the same recipe with another strategy in one click, open a run on the Train tab, resume a stopped run, export
a finished model, and delete a run (ui/run_delete.py)."""
from __future__ import annotations

import time

import gradio as gr
import pandas as pd

from studio import recipe as recipes
from studio import tasks
from studio.engine.export import ExportError
from studio.errors import UserError
from studio.run.export import export, offered, sizes
from studio.run.summary import headline
from studio.runfolder import EVAL, FINISHED, ONNX_CHECK, RECIPE, RESUMABLE, read_json
from studio.ui import charts
from studio.ui import session as sessions
from studio.ui.i18n import mid_sentence, tr
from studio.ui.run_delete import RunDelete
from studio.ui.sweep_board import SweepBoard
from studio.workspace import RunNotFound

COLUMNS = ["run", "status", "result", "seconds", "started", "id"]
COMPARE_COLUMNS = ["run", "status", "trained weights", "trained %", "seconds", "peak memory MB", "best epoch",
                   "stopped early"]
GENERAL = "loss on general text (lower: more kept)"  # chat runs' column: what the tuned model kept of what it knew


def _columns(columns: list[str], lang: str) -> list[str]:
    return [tr(c, lang) for c in columns]


def result_words(status: dict, lang: str) -> str:
    """A run's headline figure in words, e.g. 'validation accuracy 93.0%', 'perplexity 12.4'."""
    metric = headline(status)
    return f"{tr(metric['words'], lang)} {metric['shown']}" if metric and metric["value"] is not None else ""


def runs_table(runs: list[dict], lang: str = "en", owners: bool = False) -> pd.DataFrame:
    """owners: a column of whose each run is (an admin's table, which holds everyone's runs)."""
    rows = [[sessions.run_name({**r, "status": ""}, lang), tr(r["status"], lang), result_words(r, lang),
             f"{r['wall_time_s']:.0f}" if r["wall_time_s"] is not None else "",
             time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"])) if r["created"] else "", r["id"]]
            + ([r.get("owner") or ""] if owners else []) for r in reversed(runs)]
    return pd.DataFrame(rows, columns=_columns(COLUMNS + (["owner"] if owners else []), lang))


def stopped_early_words(report: dict, status: dict, lang: str) -> str:
    if not report.get("stopped_early"):
        return tr("no", lang) if status.get("status") == "completed" else ""
    return tr("yes, after pass {last}: no better since pass {best}", lang, last=len(report.get("history", [])),
              best=report.get("best_epoch"))


def compare_row(run_id: str, task, status: dict, events: list[dict], report: dict | None, lang: str = "en") -> dict:
    """One run's line in the comparison: from eval.json when finished, else from its events so far (the best
    epoch so far by its task's rule)."""
    model = next((e for e in events if e["type"] == "model"), {})
    epochs = charts.latest(events, "epoch", "epoch")
    figures = list(task.curves)
    best = max(epochs, key=task.best) if epochs else {}  # the epoch its trainer keeps
    trainable, total = model.get("trainable"), model.get("total")
    seconds = status.get("wall_time_s") or (epochs[-1]["elapsed"] if epochs else None)
    report = report or {}
    row = {"run": sessions.run_name({**status, "status": ""}, lang) or run_id,
           "status": tr(status.get("status", ""), lang),
           "trained weights": f"{trainable:,}" if trainable is not None else "",
           "trained %": f"{100 * trainable / total:.2f}%" if trainable is not None and total else "",
           "seconds": f"{seconds:.0f}" if seconds is not None else "",
           "peak memory MB": f"{report['peak_memory_mb']:.0f}" if report.get("peak_memory_mb") else ""}
    for metric in (task.headline, *figures):
        value = report.get(metric.key, best.get(metric.key)) if best or report else None
        row[f"best {metric.words}" if metric is not task.headline else metric.words] = metric.format(value)
    row.update({"best epoch": report.get("best_epoch", best.get("epoch", "")),
                "stopped early": stopped_early_words(report, status, lang)})
    if isinstance(report.get("general_loss"), float) and report.get("base_general_loss"):  # chat runs
        change = report["general_loss"] / report["base_general_loss"] - 1
        row[GENERAL] = f"{report['general_loss']:.3f} ({change:+.1%})"
    return {tr(k, lang): v for k, v in row.items()}


def data_of(run_dir) -> str:
    """The run's data as its recipe names it (runs on other data are not comparable)."""
    try:
        return str(recipes.load(run_dir / RECIPE).data)
    except recipes.RecipeError:
        return ""


class RunsTab:
    """The Runs tab's components, and its handlers as methods."""

    def __init__(self, ctx, tab):
        self.ctx = ctx
        ctx.static(gr.Markdown("### 7. Runs: compare, resume, export\n<span class='hint'>Everything here is read from "
                               "the workspace folder on disk, so it survives a restart.</span>"))
        self.refresh = gr.Button("Refresh", size="sm", elem_id="runs-refresh")
        self.table = gr.Dataframe(pd.DataFrame(columns=COLUMNS), interactive=False, elem_id="runs-table", wrap=True)
        self._comparison()
        self.sweeps = SweepBoard(ctx)
        ctx.static(gr.Markdown("#### One run"))
        self.run = gr.Dropdown(label="Run", choices=[], elem_id="runs-run")
        self.note = gr.Markdown(elem_id="runs-note")
        offers = {name: strategy for task in map(tasks.get, tasks.names()) for name in task.comparisons
                  for strategy in [task.strategies.get(name)] if strategy}
        with gr.Row():
            self.open_run = gr.Button("Watch it on the Train tab", elem_id="open-run")
            self.compare_buttons = {name: gr.Button(f"Compare with: {s.words}", visible=False,
                                                    elem_id=f"compare-{name}") for name, s in offers.items()}
            self.resume = gr.Button("Resume this run", variant="primary", visible=False, elem_id="resume")
        self.compare_hint = gr.Markdown(elem_id="compare-hint")
        ctx.static(gr.Markdown("<span class='hint'>The comparison queues the same data, model, number of passes and "
                               "batch size with the other strategy (and that strategy's own learning rate).</span>"))
        with gr.Row():
            self.loss_plot = gr.Plot(charts.empty_figure(""), show_label=False, elem_id="runs-loss-plot")
            self.accuracy_plot = gr.Plot(charts.empty_figure(""), show_label=False)
        self._export()
        self.deleter = RunDelete(ctx)
        self.recipe_view = gr.Code(language="yaml", label="Recipe", elem_id="runs-recipe", max_lines=None)
        ctx.nav("playground", None)
        self._wire(tab)

    def _comparison(self) -> None:
        self.ctx.static(gr.Markdown("#### Compare runs\n<span class='hint'>Pick two or more runs on the same data. "
                                    "Runs still training update as they go.</span>"))
        self.picked = gr.Dropdown(label="Runs to compare", choices=[], multiselect=True, elem_id="compare-runs")
        with gr.Row():
            self.compare_accuracy = gr.Plot(charts.empty_figure(""), show_label=False,
                                            elem_id="compare-accuracy-plot")
            self.compare_loss = gr.Plot(charts.empty_figure(""), show_label=False, elem_id="compare-loss-plot")
        self.compare_note = gr.Markdown(elem_id="compare-note")
        self.compare_table = gr.Dataframe(pd.DataFrame(columns=COMPARE_COLUMNS), interactive=False,
                                          elem_id="compare-table", wrap=True)
        self.timer = gr.Timer(2.0, active=False)

    def _export(self) -> None:
        with gr.Accordion("Export the model", open=False):
            self.ctx.static(gr.Markdown("<span class='hint'>The .zip holds the weights, the labels and a model card "
                                        "(README.md) that says how to load it. The transformers folder loads with "
                                        "`transformers.pipeline(...)`. ONNX runs without Python ML libraries; it is "
                                        "checked against the trained model before you get it.</span>"))
            with gr.Row():
                self.export_format = self.ctx.texts.keep_choices(gr.Radio([], label="Format",
                                                                          elem_id="export-format"))
                self.export_button = gr.Button("Export", elem_id="export")
            self.export_refused = gr.Markdown(elem_id="export-refused")
            self.export_note = gr.Markdown(elem_id="export-note")
            self.export_file = gr.File(label="Download", interactive=False, elem_id="export-file")

    def _wire(self, tab) -> None:
        ctx, session = self.ctx, self.ctx.session
        self.compare_outputs = [self.compare_note, self.compare_accuracy, self.compare_loss, self.compare_table,
                                self.timer]
        self.show_outputs = [self.note, self.loss_plot, self.accuracy_plot, self.recipe_view, self.resume,
                             self.compare_hint, *self.compare_buttons.values(), self.export_format,
                             self.export_refused]
        refreshed = [self.table, self.picked, *self.compare_outputs, self.run, *self.show_outputs]
        ctx.on(tab.select, self.on_open, [session], refreshed)
        self.deleter.wire(self.run, refreshed, self.on_open)
        self.sweeps.wire(tab)
        ctx.on(self.refresh.click, self.on_open, [session], refreshed)
        ctx.on(self.picked.input, self.on_pick, [self.picked, session], [*self.compare_outputs, session])
        ctx.on(self.timer.tick, self.comparison, [self.picked, session], self.compare_outputs, show_progress="hidden")
        ctx.on(self.run.input, self.show, [self.run, session], self.show_outputs)
        for name, button in self.compare_buttons.items():
            ctx.on(button.click, self.queue_with(name), [self.run, session], [session, ctx.summary, *refreshed])
        ctx.on(self.open_run.click, self.on_open_run, [self.run, session], [session, ctx.summary, ctx.tabs])
        ctx.on(self.resume.click, self.on_resume, [self.run, session], [self.note, session, self.resume, ctx.summary])
        ctx.on(self.export_button.click, self.on_export, [self.run, self.export_format, session],
               [self.export_note, self.export_file])

    def comparison(self, run_ids, state) -> dict:
        lang = state["lang"]
        runs = [(run_id, self.ctx.run_status(run_id), self.ctx.run(run_id).events()) for run_id in run_ids or []]
        if not runs:
            figure, loss = charts.compare_figures([], None, lang)
            return {self.compare_note: "", self.compare_accuracy: figure, self.compare_loss: loss,
                    self.compare_table: pd.DataFrame(columns=_columns(COMPARE_COLUMNS, lang)),
                    self.timer: gr.Timer(active=False)}
        datasets = {data_of(self.ctx.run_dir(run_id)) for run_id, _, _ in runs}
        text = (tr("⚠️ These runs were trained on different data (or a different split), so their scores are not "
                   "directly comparable.", lang) if len(datasets) > 1 else "")
        named = [(sessions.run_name({**status, "status": ""}, lang) or run_id, events)
                 for run_id, status, events in runs]
        run_tasks = [self.ctx.task_of(status) for _, status, _ in runs]
        same = len({t.name for t in run_tasks}) == 1 and run_tasks[0].curves
        common = run_tasks[0].curves[0] if same else None
        figure, loss = charts.compare_figures(named, common, lang)
        rows = [compare_row(run_id, task, status, events, self.ctx.run(run_id).read(EVAL), lang)
                for (run_id, status, events), task in zip(runs, run_tasks)]
        active = any(status.get("status") not in FINISHED for _, status, _ in runs)
        return {self.compare_note: text, self.compare_accuracy: figure, self.compare_loss: loss,
                self.compare_table: pd.DataFrame(rows).fillna(""), self.timer: gr.Timer(active=active)}

    def on_pick(self, run_ids, state) -> dict:
        return {**self.comparison(run_ids, state), self.ctx.session: {**state, "compare": run_ids}}

    def show(self, run_id, state) -> dict:
        lang = state["lang"]
        hidden_buttons = {b: gr.update(visible=False) for b in self.compare_buttons.values()}
        if not run_id:
            return {self.note: "", self.loss_plot: charts.loss_figure([], lang),
                    self.accuracy_plot: charts.metrics_figure([], (), lang), self.recipe_view: "",
                    self.resume: gr.update(visible=False), self.compare_hint: "", **hidden_buttons,
                    **self.export_choices(None, lang)}
        run_folder = self.ctx.run(run_id)
        events, status = run_folder.events(), run_folder.status()
        current = status.get("status")
        text = {"failed": tr("**This run failed:** {error}", lang, error=status.get("error", "")),
                "interrupted": tr("**Interrupted.** {message}", lang, message=status.get("message", "")),
                "cancelled": tr("**Stopped by the user.** Resume continues from the step where it stopped.", lang)
                }.get(current, "")
        task = self.ctx.task_of(status)
        offered_here = [n for n in task.comparisons if n != status.get("strategy") and n in self.compare_buttons]
        buttons = {**hidden_buttons, **{self.compare_buttons[n]: gr.update(
            visible=True, value=tr("Compare with: {strategy}", lang, strategy=tr(task.strategies[n].words, lang)))
            for n in offered_here}}
        hint = "" if task.comparisons else tr("Runs of this task are not compared with another strategy in one "
                                               "click; start one from the Strategy tab to compare it here.", lang)
        return {self.note: text, self.loss_plot: charts.loss_figure(events, lang),
                self.accuracy_plot: charts.metrics_figure(events, task.curves, lang),
                self.recipe_view: run_folder.recipe_text(), self.resume: gr.update(visible=current in RESUMABLE),
                self.compare_hint: hint, **buttons, **self.export_choices(run_folder, lang)}

    def export_choices(self, run_folder, lang: str) -> dict:
        """The formats this run can be exported as, and why any other of its task's formats cannot be made."""
        try:
            formats = offered(run_folder) if run_folder is not None else []
            estimates = sizes(run_folder) if formats else {}  # bytes, for formats that know before writing
        except ExportError:
            formats, estimates = [], {}  # no model yet
        usable = [(tr(e.words, lang) + (" " + tr("(about {mb} MB)", lang, mb=f"{estimates[e.name] / 1e6:,.0f}")
                                        if e.name in estimates else ""), e.name) for e, why in formats if not why]
        refused = "".join(f"\n- **{tr(e.words, lang)}**: {why}" for e, why in formats if why)
        return {self.export_format: gr.update(choices=usable, value=usable[0][1] if usable else None),
                self.export_refused: (f"<span class='hint'>{tr('Not offered for this run:', lang)}</span>{refused}"
                                 if refused else "")}

    def on_open(self, state) -> dict:
        choices = self.ctx.run_choices(state, completed_only=False, with_id=True)
        ids = {run_id for _, run_id in choices}
        compare = [r for r in state.get("compare", []) if r in ids]
        chosen = state["run_id"] if state["run_id"] in ids else None
        return {self.table: runs_table(self.ctx.runs(), state["lang"], owners=self.ctx.shows_owners()),
                self.picked: gr.update(choices=choices, value=compare), **self.comparison(compare, state),
                self.run: gr.update(choices=choices, value=chosen), **self.show(chosen, state)}

    def queue_with(self, strategy: str):
        def start(run_id, state):
            lang = state["lang"]
            if not run_id:
                return {self.note: tr("Pick a run first.", lang)}
            try:
                recipe = tasks.with_strategy(recipes.load(self.ctx.run_dir(run_id) / RECIPE), strategy)
                self.ctx.check(recipe)
                job = self.ctx.jobs.start(recipe, owner=self.ctx.owner())
            except UserError as exc:  # a recipe that cannot run, or a cluster that cannot take it
                return {self.note: f"**{tr('Cannot start the comparison.', lang)}** {exc}"}
            self.ctx.audit("run started", run=job.run_id, task=recipe.task, model=recipe.model, strategy=strategy,
                           compared_with=run_id)
            sessions.add_run(state, job.run_id, recipe)
            state["compare"] = [run_id, job.run_id]
            words = mid_sentence(sessions.strategy_words(recipe.task, strategy, lang), lang)
            message = tr("Queued a run ({words}) with the same data and budget; both runs are compared above.", lang,
                         words=words)
            return {**self.on_open(state), self.note: message, self.ctx.session: state,
                    self.ctx.summary: sessions.summary(state)}
        return start

    def on_resume(self, run_id, state):
        lang = state["lang"]
        try:
            job = self.ctx.jobs.resume(self.ctx.run_dir(run_id).name)  # run_dir: only a run this user may see
        except (UserError, RunNotFound) as exc:  # ResumeError, a recipe or a cluster that cannot take it
            return {self.note: f"**{tr('Cannot resume.', lang)}** {exc}"}
        self.ctx.audit("run started", run=job.run_id, resumed=True)
        sessions.add_run(state, job.run_id, job.recipe)
        return {self.note: tr("Run queued again: it continues from its last checkpoint. Follow it on the Train tab.",
                              lang),
                self.ctx.session: state, self.resume: gr.update(visible=False),
                self.ctx.summary: sessions.summary(state)}

    def on_open_run(self, run_id, state):
        if not self.ctx.exists(run_id):  # exists: among the runs this user may see
            return gr.skip()
        state["run_id"] = run_id  # the Train tab shows this run, wherever it was started
        return {self.ctx.session: state, self.ctx.summary: sessions.summary(state),
                self.ctx.tabs: gr.Tabs(selected="train")}

    def on_export(self, run_id, fmt, state):
        lang = state["lang"]
        if not run_id or not fmt:
            return {self.export_note: tr("Pick a run first.", lang), self.export_file: None}
        folder = self.ctx.run_dir(run_id)
        try:
            path = export(folder, fmt)
            if fmt != "zip" and path.is_dir():
                path = export(folder, "zip")  # a folder export travels inside the zip
        except ExportError as exc:
            return {self.export_note: f"**{tr('Cannot export.', lang)}** {exc}", self.export_file: None}
        self.ctx.audit("export", run=run_id, format=fmt, file=path.name)
        extra = ""
        if fmt == "onnx":
            check = read_json(path.parent / ONNX_CHECK) or {}
            extra = " " + tr("Checked with onnxruntime against the trained model on {n} examples: largest "
                             "difference {diff}.", lang, n=check.get("examples"),
                             diff=f"{check.get('max_abs_diff', 0):.1e}")
        return {self.export_note: tr("Exported `{name}`.", lang, name=path.name) + extra, self.export_file: str(path)}


def build(ctx, tab) -> None:
    RunsTab(ctx, tab)

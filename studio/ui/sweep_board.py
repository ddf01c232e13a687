"""The Runs tab's sweeps: a sweep's leaderboard (a table to sort by any column, its scores drawn against its
settings), stopping it, and opening its best run in Evaluate and the Playground. Read from sweep.json, which the
sweep's driver process writes, so it survives a restart and shows sweeps started from the command line."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from studio import tasks
from studio.errors import UserError
from studio.run import ownership
from studio.run import sweep as sweeps
from studio.ui import charts
from studio.ui import session as sessions
from studio.ui.i18n import tr

COLUMNS = ["rank", "status", "score", "seconds", "run"]
LIVE = ("created", "running")


def score_words(data: dict, value) -> str:
    """A score as the task shows that figure (a percentage for accuracy, …)."""
    if value is None:
        return ""
    try:
        task = tasks.get(data["recipe"]["task"])
        metric = next(m for m in (task.headline, *task.curves) if m.key == data["metric"]["key"])
    except (UserError, StopIteration):
        return f"{value:.4g}"
    return metric.format(value)


def seconds_words(seconds: float | None) -> str:
    """A run's seconds, tenths under ten (a run on cached features takes under one)."""
    if seconds is None:
        return ""
    return f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"


def leaderboard(data: dict, lang: str) -> pd.DataFrame:
    """Best first; runs without a score (pruned, failed, still to come) after them, in their order."""
    sign = -1 if data["metric"]["higher_is_better"] else 1
    ranked = sorted(data["runs"], key=lambda r: (r["score"] is None, sign * (r["score"] or 0), r["index"]))
    keys = list(data["runs"][0]["settings"]) if data["runs"] else []
    rows = []
    for rank, run in enumerate(ranked, 1):
        row = {"rank": rank if run["score"] is not None else "", **{k: run["settings"].get(k) for k in keys},
               "status": tr(run["status"], lang), "score": score_words(data, run["score"]),
               "seconds": seconds_words(run.get("wall_time_s")), "run": run["run_id"] or ""}
        rows.append(row)
    columns = ["rank", *keys, *COLUMNS[1:]]
    return pd.DataFrame(rows, columns=columns).rename(columns={c: tr(c, lang) for c in COLUMNS})


class SweepBoard:
    def __init__(self, ctx):
        self.ctx = ctx
        ctx.static(gr.Markdown("#### Sweeps\n<span class='hint'>Several settings of one recipe, tried on the Strategy "
                               "tab (or with `studio sweep`), ranked by the task's headline figure.</span>"))
        with gr.Row():
            self.pick = gr.Dropdown(label="Sweep", choices=[], elem_id="sweep-pick")
            self.use_best = gr.Button("Use the best", variant="primary", visible=False, elem_id="sweep-best")
            self.stop = gr.Button("Stop the sweep", variant="stop", visible=False, elem_id="sweep-stop")
        self.status = gr.Markdown(elem_id="sweep-status")
        self.table = gr.Dataframe(pd.DataFrame(columns=COLUMNS), interactive=False, elem_id="sweep-table", wrap=True)
        self.plot = gr.Plot(charts.empty_figure(""), show_label=False, elem_id="sweep-plot")
        self.timer = gr.Timer(2.0, active=False)
        self.shown = [self.status, self.table, self.plot, self.use_best, self.stop, self.timer]

    def wire(self, tab) -> None:
        ctx = self.ctx
        ctx.on(tab.select, self.on_open, [ctx.session], [self.pick, *self.shown])
        ctx.on(self.pick.input, self.show, [self.pick, ctx.session], self.shown)
        ctx.on(self.timer.tick, self.show, [self.pick, ctx.session], self.shown, show_progress="hidden")
        ctx.on(self.stop.click, self.on_stop, [self.pick, ctx.session], self.shown)
        ctx.on(self.use_best.click, self.on_use_best, [self.pick, ctx.session], [ctx.session, ctx.summary, ctx.tabs])

    def sweep(self, sweep_id: str) -> sweeps.Sweep:
        """A sweep this user may see (their own; an admin: any); SweepNotFound alike for a missing and a hidden one."""
        sweep = sweeps.find(self.ctx.workspace, sweep_id)
        if not ownership.visible(sweep.read(), self.ctx.user()):
            raise sweeps.SweepNotFound(f"No sweep called '{sweep_id}' here.")
        return sweep

    def on_open(self, state) -> dict:
        user = self.ctx.user()
        ids = [s["id"] for s in sweeps.all_sweeps(self.ctx.workspace) if ownership.visible(s, user)]
        chosen = state.get("sweep_id") if state.get("sweep_id") in ids else (ids[0] if ids else None)
        return {self.pick: gr.update(choices=ids, value=chosen), **self.show(chosen, state)}

    def show(self, sweep_id, state) -> dict:
        lang = state["lang"]
        try:
            data = self.sweep(sweep_id).state() if sweep_id else None
        except sweeps.SweepNotFound:
            data = None
        if data is None:
            return {self.status: "" if not sweep_id else tr("This sweep is gone from the workspace.", lang),
                    self.table: pd.DataFrame(columns=[tr(c, lang) for c in COLUMNS]),
                    self.plot: charts.empty_figure(""), self.use_best: gr.update(visible=False),
                    self.stop: gr.update(visible=False), self.timer: gr.Timer(active=False)}
        done = sum(r["status"] in sweeps.DONE for r in data["runs"])
        text = tr("**{status}**: {done} of {total} runs finished.", lang, status=tr(data["status"], lang),
                  done=done, total=data["total"])
        best = sweeps.best(data)
        if best:
            text += " " + tr("Best so far: run {run} ({metric} {value}).", lang, run=best["run_id"],
                             metric=tr(data["metric"]["words"], lang), value=score_words(data, best["score"]))
        if data.get("message"):
            text += f" {data['message']}"
        live = data["status"] in LIVE
        return {self.status: text, self.table: leaderboard(data, lang),
                self.plot: charts.sweep_figure(data["runs"], data["metric"]["words"], lang),
                self.use_best: gr.update(visible=best is not None), self.stop: gr.update(visible=live),
                self.timer: gr.Timer(active=live)}

    def on_stop(self, sweep_id, state) -> dict:
        if sweep_id:
            try:
                sweeps.stop(self.ctx.workspace, self.sweep(sweep_id).id)
                self.ctx.audit("sweep stopped", sweep=sweep_id)
            except sweeps.SweepNotFound:
                pass  # show() says it is gone
        return self.show(sweep_id, state)

    def on_use_best(self, sweep_id, state) -> dict:
        try:
            best = sweeps.best(self.sweep(sweep_id).state()) if sweep_id else None
        except sweeps.SweepNotFound:
            best = None
        if best is None:
            return gr.skip()
        status = self.ctx.run_status(best["run_id"])
        state.update(run_id=best["run_id"], run_strategy=[status.get("task"), status.get("strategy")])
        return {self.ctx.session: state, self.ctx.summary: sessions.summary(state),
                self.ctx.tabs: gr.Tabs(selected="evaluate")}

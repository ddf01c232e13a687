"""The Runs tab's "Delete this run": a first click says what will be lost and asks again; the second deletes the run
through run/deletion.py as the page's login (another user's run is "not found"), writes it to the audit trail, and
refreshes the tab. The Evaluate and Playground pickers read the runs from disk when their tab opens: the run is
gone from them too."""
from __future__ import annotations

import gradio as gr

from studio.run.deletion import DeleteError, delete_run
from studio.runfolder import ACTIVE
from studio.ui import playground_tab
from studio.ui import session as sessions
from studio.ui.i18n import tr
from studio.workspace import RunNotFound


class RunDelete:
    def __init__(self, ctx):
        self.ctx = ctx
        with gr.Row():
            size = {"size": "sm", "scale": 0, "min_width": 170}
            self.ask = gr.Button("Delete this run", variant="stop", elem_id="delete-run", **size)
            self.confirm = gr.Button("Yes, delete it", variant="stop", visible=False, elem_id="delete-run-confirm",
                                     **size)
            self.keep = gr.Button("Keep it", visible=False, elem_id="delete-run-keep", **size)
        self.note = gr.Markdown(elem_id="delete-note")
        self.asked_for = gr.State(None)  # the run the confirmation names: only that one is deleted

    def wire(self, run: gr.Dropdown, refreshed: list, reopen) -> None:
        """run: the tab's run picker; refreshed: what reopen(session) (the tab's opening) updates."""
        ctx, self.reopen = self.ctx, reopen
        asking = [self.note, self.confirm, self.keep, self.asked_for]
        ctx.on(self.ask.click, self.on_ask, [run, ctx.session], asking)
        ctx.on(self.keep.click, lambda: self.asked(""), None, asking)
        # a confirmation is for the run it named: gone once the picker shows another (picked, or the tab reopened)
        ctx.on(run.change, lambda asked_for: self.asked("") if asked_for else gr.skip(), [self.asked_for], asking)
        outputs = list(dict.fromkeys([*asking, ctx.session, ctx.summary, *refreshed]))
        ctx.on(self.confirm.click, self.on_confirm, [run, self.asked_for, ctx.session], outputs)

    def asked(self, words: str, run_id: str | None = None) -> dict:
        """The note, and the confirmation for run_id (None: no confirmation shown)."""
        asking = run_id is not None
        return {self.note: words, self.confirm: gr.update(visible=asking), self.keep: gr.update(visible=asking),
                self.asked_for: run_id}

    def on_ask(self, run_id, state) -> dict:
        lang = state["lang"]
        if not self.ctx.exists(run_id):  # exists: among the runs this user may see
            return self.asked(tr("Pick a run first.", lang))
        status = self.ctx.run_status(run_id)
        if status.get("status") in ACTIVE:
            return self.asked(tr("This run is {status}. Stop it first, then delete it.", lang,
                                 status=tr(status["status"], lang)))
        name = sessions.run_name({**status, "status": ""}, lang) or run_id
        return self.asked(tr("**Delete {run}?** Its folder goes for good: the trained model, its checkpoints, "
                             "exports, curves and evaluation, with its explanations. Other runs and the shared "
                             "caches stay.", lang, run=name), run_id)

    def on_confirm(self, run_id, asked_for, state) -> dict:
        lang = state["lang"]
        if not run_id or run_id != asked_for:  # the picker moved on since the question: ask again
            return self.asked(tr("Pick a run first.", lang))
        try:
            where = delete_run(self.ctx.workspace, self.ctx.user(), run_id or "", self.ctx.jobs)
        except (RunNotFound, DeleteError) as exc:
            return self.asked(f"**{tr('Cannot delete.', lang)}** {exc}")
        self.ctx.audit("run deleted", run=run_id)
        playground_tab.forget(where)  # its model, if the Playground holds it in memory
        if "model_servers" in self.ctx.shared:  # and its model server, if the Playground started one
            self.ctx.shared["model_servers"].stop(where)
        if state.get("run_id") == run_id:
            state.update(run_id=None, run_strategy=None)
        state["runs"] = [r for r in state.get("runs", []) if r != run_id]
        state["compare"] = [r for r in state.get("compare", []) if r != run_id]
        return {**self.reopen(state), **self.asked(tr("Deleted run {run}.", lang, run=run_id)),
                self.ctx.session: state, self.ctx.summary: sessions.summary(state)}

"""The Evaluate tab's "Examples that may be mislabelled" (eval.json's label_issues, found by cleanlab): the suspect
examples with their given and suggested labels — images in a gallery, texts as rows, clips playable — a decision
per example (keep, relabel, leave out), and "Train again with these changes": a corrections file written in the
session's own folder of the workspace (never the user's data), and a run of the same recipe with
data.corrections, queued for comparison with this one on the Runs tab."""
from __future__ import annotations

import csv

import gradio as gr
import pandas as pd

from studio import recipe as recipes
from studio.engine.data.audio import AUDIO_EXTENSIONS
from studio.errors import UserError
from studio.runfolder import EVAL, RECIPE
from studio.tasks.classification.corrections import EXCLUDE
from studio.tasks.classification.report import copied
from studio.ui import session as sessions
from studio.ui.i18n import tr, tr_said
from studio.workspace import new_dir

SHOWN = 100  # suspects listed (the most suspect first); eval.json keeps them all
KEEP = "keep"
CHARS = 200


def _issues(report: dict | None) -> list[dict]:
    return ((report or {}).get("label_issues") or [])[:SHOWN]


def _name(issue: dict) -> str:
    return str(issue["example"])


def decision_words(decision: str, lang: str) -> str:
    if decision == KEEP:
        return tr("keep", lang)
    if decision == EXCLUDE:
        return tr("leave out", lang)
    return tr("relabel as {label}", lang, label=decision)


class LabelIssues:
    def __init__(self, ctx):
        self.ctx = ctx

    def build(self, run: gr.Dropdown) -> None:
        ctx = self.ctx
        self.note = gr.Markdown(visible=False, elem_id="label-issues-note")
        self.gallery = gr.Gallery(label="Examples that may be mislabelled", columns=6, height="auto",
                                  allow_preview=False, visible=False, elem_id="label-issues-gallery")
        self.table = gr.Dataframe(label="Examples that may be mislabelled", interactive=False, wrap=True,
                                  visible=False, elem_id="label-issues")
        self.clip = gr.Audio(label="The chosen clip", type="filepath", interactive=False, visible=False,
                             elem_id="label-issue-clip")
        with gr.Row():
            self.pick = gr.Dropdown(label="Example", choices=[], visible=False, elem_id="label-issue-example")
            self.decision = gr.Dropdown(label="What to do with it", choices=[], visible=False,
                                        elem_id="label-issue-decision")
        self.again = gr.Button("Train again with these changes", variant="primary", visible=False,
                               elem_id="train-again")
        self.again_note = gr.Markdown(elem_id="train-again-note")
        self.decisions = gr.State({})
        self.components = [self.note, self.gallery, self.table, self.clip, self.pick, self.decision, self.again,
                           self.again_note]
        chosen = [self.decision, self.clip]
        ctx.on(self.pick.input, self.on_pick, [run, self.pick, self.decisions, ctx.session], chosen)
        ctx.on(self.gallery.select, self.on_gallery, [run, self.decisions, ctx.session], [self.pick, *chosen])
        ctx.on(self.decision.input, self.on_decide, [run, self.pick, self.decision, self.decisions, ctx.session],
               [self.table, self.decisions])
        ctx.on(self.again.click, self.train_again, [run, self.decisions, ctx.session],
               [self.again_note, ctx.session, ctx.summary])

    # -- showing ----------------------------------------------------------------------------------------------------
    def hide(self) -> dict:
        return {**{c: gr.update(visible=False) for c in self.components[:-1]}, self.again_note: "",
                self.decisions: {}}

    def show(self, report: dict, run_dir, lang: str) -> dict:
        if "label_issues_from" not in report:
            return self.hide()
        source, issues = report["label_issues_from"], _issues(report)
        if source.get("probabilities") is None:
            text = (tr("**Examples that may be mislabelled:** none listed for this run.", lang) + " "
                    + tr_said(source["why"], lang))
            return {**self.hide(), self.note: gr.update(value=text, visible=True)}
        if not issues:
            text = tr("**No example looks mislabelled**: cleanlab found no label that the out-of-fold "
                      "probabilities doubt.", lang)
            return {**self.hide(), self.note: gr.update(value=text, visible=True)}
        text = tr("**{n} examples may be mislabelled**, most suspect first: their given label is doubted by the "
                  "linear probe's out-of-fold probabilities (cleanlab's confident learning). Choose what to do with "
                  "each, then train again.", lang, n=len(report["label_issues"]))
        if source.get("note"):
            text += f"\n\n<span class='hint'>{tr_said(source['note'], lang)}</span>"
        images = [(str(run_dir / copied(i)), caption(i)) for i in issues if copied(i) and not _is_clip(i)]
        return {self.note: gr.update(value=text, visible=True),
                self.gallery: gr.update(value=images, visible=bool(images)),
                self.table: gr.update(value=rows(issues, lang, _texts(issues), {}), visible=True),
                self.clip: gr.update(value=None, visible=any(_is_clip(i) for i in issues)),
                self.pick: gr.update(choices=[_name(i) for i in issues], value=None, visible=True),
                self.decision: gr.update(choices=[], value=None, visible=True),
                self.again: gr.update(visible=True), self.again_note: "", self.decisions: {}}

    def _chosen(self, run_id, name: str | None, decisions: dict, lang: str) -> dict:
        report = self.ctx.run(run_id).read(EVAL) if run_id else None
        issue = next((i for i in _issues(report) if _name(i) == name), None)
        if issue is None:
            return {self.decision: gr.update(choices=[], value=None)}
        labels = report["labels"]
        choices = [(tr("keep the given label ({label})", lang, label=issue["given"]), KEEP),
                   (tr("relabel as {label} (suggested)", lang, label=issue["suggested"]), issue["suggested"]),
                   *((tr("relabel as {label}", lang, label=c), c) for c in labels
                     if c not in (issue["given"], issue["suggested"])),
                   (tr("leave it out", lang), EXCLUDE)]
        clip = str(self.ctx.run_dir(run_id) / copied(issue)) if _is_clip(issue) else None
        return {self.decision: gr.update(choices=choices, value=decisions.get(name, KEEP)),
                self.clip: gr.update(value=clip)}

    def on_pick(self, run_id, name, decisions, state):
        return self._chosen(run_id, name, decisions, state["lang"])

    def on_gallery(self, run_id, decisions, state, evt: gr.SelectData):
        report = self.ctx.run(run_id).read(EVAL) if run_id else None
        shown = [i for i in _issues(report) if copied(i) and not _is_clip(i)]
        if evt.index >= len(shown):
            return gr.skip()
        name = _name(shown[evt.index])
        return {self.pick: name, **self._chosen(run_id, name, decisions, state["lang"])}

    def on_decide(self, run_id, name, decision, decisions, state):
        if not (run_id and name and decision):
            return gr.skip()
        decisions = {**decisions, name: decision}
        issues = _issues(self.ctx.run(run_id).read(EVAL))
        return {self.decisions: decisions, self.table: rows(issues, state["lang"], _texts(issues), decisions)}

    # -- training again -----------------------------------------------------------------------------------------------
    def train_again(self, run_id, decisions, state):
        lang = state["lang"]
        changes = {name: d for name, d in (decisions or {}).items() if d != KEEP}
        if not run_id or not changes:
            return {self.again_note: tr("Choose at least one example to relabel or leave out first.", lang)}
        recipe = recipes.load(self.ctx.run_dir(run_id) / RECIPE)
        try:
            recipe.data.corrections = self.write_corrections(recipe, changes, state, run_id)
            self.ctx.check(recipe)
            job = self.ctx.jobs.start(recipe, owner=self.ctx.owner())
        except (UserError, OSError) as exc:  # a recipe that cannot run, or a cluster that cannot take it
            return {self.again_note: f"**{tr('Cannot train again.', lang)}** {exc}"}
        self.ctx.audit("run started", run=job.run_id, task=recipe.task, model=recipe.model, strategy=recipe.strategy,
                       relabelled_from=run_id)
        sessions.add_run(state, job.run_id, recipe)
        state["compare"] = [run_id, job.run_id]
        text = tr("Queued a run with the same recipe and {n} change(s) to the labels (your data files are "
                  "unchanged). The Runs tab compares it with this one.", lang, n=len(changes))
        return {self.again_note: text, self.ctx.session: state, self.ctx.summary: sessions.summary(state)}

    def write_corrections(self, recipe, changes: dict, state: dict, run_id: str) -> str:
        """corrections.csv in this session's own folder of the workspace: the run's earlier corrections (if it had
        any) with these changes over them."""
        merged = {}
        if recipe.data.corrections:
            with open(recipe.data.corrections, newline="", encoding="utf-8") as f:
                merged = {row["example"]: row["label"] for row in csv.DictReader(f)}
        merged.update(changes)
        folder = new_dir(self.ctx.uploads_dir() / "corrections" / str(state["id"]), run_id)
        path = folder / "corrections.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["example", "label"])
            writer.writerows(merged.items())
        return str(path)


def caption(issue: dict) -> str:
    return f"{_name(issue)}: {issue['given']} → {issue['suggested']}"


def rows(issues: list[dict], lang: str, texts: bool, decisions: dict | None = None) -> pd.DataFrame:
    """One row per suspect: the example (with a text's words when the examples are texts), given and suggested
    label, quality, and the decision taken (when decisions are taken: the Evaluate tab)."""
    return pd.DataFrame([{
        tr("example", lang): f"{_name(i)}: {i['input'][:CHARS]}" if texts else _name(i),
        tr("given", lang): i["given"], tr("suggested", lang): i["suggested"],
        tr("label quality", lang): f"{i['score']:.3f}",
        **({tr("decision", lang): decision_words(decisions.get(_name(i), KEEP), lang)} if decisions is not None
           else {})} for i in issues])


def _texts(issues: list[dict]) -> bool:
    """A run's suspects are texts when none of them is a file copied into the run folder."""
    return not any(copied(i) for i in issues) and all(isinstance(i.get("input"), str) for i in issues)


def _is_clip(issue: dict) -> bool:
    return str(copied(issue) or "").lower().endswith(tuple(AUDIO_EXTENSIONS))

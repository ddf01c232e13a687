"""The Strategy tab's "Try several settings": the recipe on the page tried with several strategies and learning
rates, every combination or an optuna search, as a sweep (studio/run/sweep.py) whose driver runs in a process of
its own. Its leaderboard is on the Runs tab."""
from __future__ import annotations

import re

import gradio as gr

from studio import recipe as recipes
from studio import tasks
from studio.run import sweep as sweeps
from studio.run.sweep_driver import spawn
from studio.ui import session as sessions
from studio.ui.i18n import tr, tr_said


def rates_of(text: str, lang: str) -> list[float]:
    """The learning rates typed in the box ("1e-4, 3e-4 1e-3"), in order, once each."""
    rates = []
    for word in filter(None, re.split(r"[,;\s]+", text or "")):
        try:
            rates.append(float(word))
        except ValueError:
            raise recipes.RecipeError(tr("'{word}' is not a learning rate; type numbers such as 1e-4, 3e-4, 1e-3.",
                                         lang, word=word)) from None
    return list(dict.fromkeys(rates))


def sweep_block(current: str, strategies: list[str], rates: list[float], mode: str, trials, lang: str) -> dict:
    """The recipe's sweep: block for what the form says (strategies: the ticked ones; none ticked: the current)."""
    strategies = list(dict.fromkeys(strategies or [current]))
    varied = {}
    if strategies != [current]:
        varied["strategy"] = strategies
    if rates:
        varied["train.learning_rate"] = rates
    if not varied or (len(strategies) < 2 and len(rates) < 2):
        raise recipes.RecipeError(tr("Tick two or more strategies, or type two or more learning rates, to have "
                                     "something to compare.", lang))
    if mode == "grid":
        return {"grid": varied}
    params = dict(varied)
    if len(rates) >= 2:  # a search tries any rate between the lowest and the highest, on a log scale
        params["train.learning_rate"] = {"low": min(rates), "high": max(rates), "log": True}
    return {"search": {"trials": int(trials or 0), "params": params}}


class SweepForm:
    """Built inside the Strategy tab (`page`), whose boxes it reads so that a value still being typed counts."""

    def __init__(self, ctx, page):
        self.ctx, self.page = ctx, page
        with gr.Accordion("Try several settings", open=False, elem_id="sweep"):
            ctx.static(gr.Markdown("<span class='hint'>One run per combination of what you tick here, with the same "
                                   "data and number of passes, ranked by the task's headline figure on the Runs tab. "
                                   "Or let the studio search: it picks each next setting from the results so far, and "
                                   "stops runs that fall behind early.</span>"))
            self.strategies = gr.CheckboxGroup([], label="Strategies to try", elem_id="sweep-strategies")
            self.rates = gr.Textbox(label="Learning rates to try", placeholder="e.g. 1e-4, 1e-3",
                                    info="Empty: each strategy's own rate.", elem_id="sweep-rates")
            with gr.Row():
                self.mode = gr.Radio([("Every combination", "grid"), ("Search (optuna)", "search")], value="grid",
                                     label="How", elem_id="sweep-mode")
                self.trials = gr.Number(8, label="Runs in a search", precision=0, minimum=2, maximum=sweeps.MAX_RUNS,
                                        elem_id="sweep-trials")
            self.start = gr.Button("Start the sweep", variant="primary", elem_id="sweep-start")
            self.note = gr.Markdown(elem_id="sweep-note")

    def wire(self, tab) -> None:
        ctx = self.ctx
        ctx.on(tab.select, self.on_open, [ctx.session], [self.strategies])
        ctx.on(self.start.click, self.on_start,
               [ctx.session, self.strategies, self.rates, self.mode, self.trials, self.page.strategy,
                *self.page.components], [self.note, ctx.session, ctx.summary])

    def on_open(self, state) -> dict:
        task = tasks.get(state["recipe"]["task"])
        choices = [(tr(s.words, state["lang"]), s.name) for s in task.strategies.values()]
        return {self.strategies: gr.update(choices=choices, value=[state["recipe"]["strategy"]
                                                                   or task.default_strategy])}

    def on_start(self, state, strategies, rates, mode, trials, name, *entered) -> dict:
        lang = state["lang"]
        _, notes, state = self.page.apply(state, name, *entered)
        try:
            if notes:
                raise recipes.RecipeError(" ".join(notes))
            recipe = sessions.build_recipe(state)
            block = sweep_block(recipe.strategy or name, strategies, rates_of(rates, lang), mode, trials, lang)
            # Every run the sweep may start is checked as this user's: a setting can change what a run reads.
            self.ctx.check_disk()  # once: each check would walk the user's runs again
            plan = sweeps.check({**recipes.to_dict(recipe), "sweep": block},
                                may_run=lambda run: self.ctx.check(run, disk=False))
        except recipes.RecipeError as exc:
            return {self.note: f"**{tr('Cannot start the sweep.', lang)}** {exc}", self.ctx.session: state}
        words = tr_said(sweeps.plan_words(self.ctx.workspace, plan), lang)
        sweep = sweeps.create(self.ctx.workspace, plan, owner=self.ctx.owner())
        spawn(self.ctx.workspace, sweep)
        self.ctx.audit("sweep started", sweep=sweep.id, task=recipe.task, model=recipe.model,
                       runs=sweep.read()["total"])
        state["sweep_id"] = sweep.id
        return {self.note: tr("Started sweep {id}: {plan}. Follow it on the Runs tab.", lang, id=sweep.id,
                              plan=words),
                self.ctx.session: state, self.ctx.summary: sessions.summary(state)}

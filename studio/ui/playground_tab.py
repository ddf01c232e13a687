"""Playground: try a finished model on something new, or on one of its examples. The run's task panel gives the
inputs (an image, a text, …); the answer and the probabilities chart are shared."""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict

import gradio as gr

from studio.errors import UserError, first_line
from studio.run.inference import Predictor, explainer, model_folder
from studio.runfolder import RunFolder
from studio.settings import env_number
from studio.ui import charts, serve_panel
from studio.ui.i18n import tr
from studio.ui.recent import Recent

log = logging.getLogger(__name__)
DEFAULT_CACHE_MB = 2048  # loaded models' weights kept in memory (STUDIO_PLAYGROUND_CACHE_MB)

_predictors: OrderedDict[tuple, tuple[Predictor, float]] = OrderedDict()  # key → (predictor, its size in MB)
_lock = threading.Lock()
_explainers = Recent(2)  # the tasks' explainers (each its own copy of a model)


def _stamp(run: RunFolder) -> int:
    """When the run's model folder last changed: a run resumed and trained again has a new model."""
    folder = model_folder(run.path)
    return max(p.stat().st_mtime_ns for p in folder.iterdir())


def predictor(run: RunFolder) -> Predictor:
    """A run's model, loaded once and kept while the loaded models fit the memory budget (the least recently used
    go first; the one just asked for always stays)."""
    key = (str(run.path), _stamp(run))
    with _lock:
        if key in _predictors:
            _predictors.move_to_end(key)
            return _predictors[key][0]
    loaded = Predictor(run.path)
    size = sum(f.stat().st_size for f in loaded.folder.rglob("*.safetensors")) / 2**20
    with _lock:
        for old in [k for k in _predictors if k[0] == key[0]]:
            del _predictors[old]  # an older version of this run's model
        _predictors[key] = (loaded, size)
        budget = env_number("STUDIO_PLAYGROUND_CACHE_MB", DEFAULT_CACHE_MB)
        while len(_predictors) > 1 and sum(s for _, s in _predictors.values()) > budget:
            _predictors.popitem(last=False)
    return loaded


def forget(run_dir) -> None:
    """Lets go of a deleted run's model (its weights in memory)."""
    with _lock:
        for key in [k for k in _predictors if k[0] == str(run_dir)]:
            del _predictors[key]


def explaining(run: RunFolder):
    """A run's explainer, loaded once; the last few asked for are kept."""
    return _explainers.get((str(run.path), _stamp(run)), lambda: explainer(run.path))


def _unseen(components: list) -> dict:
    return {c: gr.update(visible=False) for c in components if not isinstance(c, gr.State)}


def cached_runs() -> list[str]:
    """The run folders whose models are in memory, least recently used first."""
    with _lock:
        return [key[0] for key in _predictors]


def answer_markdown(answer: dict, lang: str) -> str:
    """A classifier's answer (a label and how sure), or any other task's answer as it came."""
    if "label" in answer and "score" in answer:
        sure = tr("{score} sure", lang, score=f"{answer['score']:.1%}")
        return f"### {answer['label']}\n<span class='hint'>{sure}</span>"
    return "\n".join(f"**{key}**: {value}" for key, value in answer.items())


def own_input(ctx, run_id: str | None, values: tuple) -> tuple:
    """(the panel of the run's task, its input's value among every panel's input values)."""
    own = ctx.panel_for(ctx.run_status(run_id).get("task")) if run_id else None
    return own, next((v for panel, v in zip(ctx.all_panels(), values) if panel is own), None)


def explain_handler(ctx, note):
    """The Explain button's handler: the note above the explanation, and the input's panel's view of it."""
    def on_explain(run_id, state, *values):
        """Why the model gives its answer for the input (seconds on the CPU: this session's turn only)."""
        lang = state["lang"]
        own, value = own_input(ctx, run_id, values)
        if own is None or value is None or (isinstance(value, str) and not value.strip()):
            return {note: gr.update(value=tr("Give the model an input first.", lang), visible=True)}
        began = time.perf_counter()
        try:
            found = explaining(ctx.run(run_id))
            reason = found.check_input(value)
            if reason:
                raise ValueError(reason)
            result = found.explain([value], ctx.workspace.explanations_dir(ctx.run(run_id).path.name))[0]
        except (OSError, ValueError, LookupError, UserError) as exc:
            return {note: gr.update(value=f"**{tr('Could not explain:', lang)}** {first_line(exc)}", visible=True)}
        said = tr("Why **{label}** ({score} sure): explained in {seconds} s.", lang, label=result["label"],
                  score=f"{result['score']:.1%}", seconds=f"{time.perf_counter() - began:.1f}")
        return {note: gr.update(value=said, visible=True), **own.show_explanation(result, value, lang)}
    return on_explain


def render_explanations(ctx) -> None:
    """Each panel's explanation view, placed under the answer (built earlier: the panels' events fill it)."""
    for panel in ctx.all_panels():
        for component in panel.explanation:
            if not isinstance(component, gr.State):
                component.render()
        panel.wire_explanation(ctx)


def answered_key(run_id, value) -> str | None:
    """What an answer was computed for, kept in the session: a text's change that arrives after the answer it
    triggered (the events reach the server in either order) must not clear it."""
    return hashlib.sha256(f"{run_id}\0{value}".encode()).hexdigest()[:16] if isinstance(value, str) else None


def predict_handler(ctx, answer, bars, explained):
    """(run id, the input's value, session) → the answer and its chart; an explanation of an earlier input hidden;
    the session remembers what was answered."""
    def run_predict(run_id, value, state) -> dict:
        lang = state["lang"]
        if not run_id:
            return {answer: tr("Finish a run first (Train tab), then choose it above.", lang),
                    bars: charts.empty_figure(tr("No model yet", lang))}
        if value is None or (isinstance(value, str) and not value.strip()):
            return {answer: tr("Give the model an input first.", lang),
                    bars: charts.empty_figure(tr("No input yet", lang))}
        try:
            result = predictor(ctx.run(run_id)).predict([value], top_k=5)[0]
        except (OSError, ValueError, LookupError) as exc:
            return {answer: f"**{tr('Could not predict:', lang)}** {first_line(exc)}",
                    bars: charts.empty_figure(tr("No answer", lang))}
        chart = (charts.top_k_figure(result, tr("Most likely labels", lang), tr("probability", lang))
                 if result.get("top_k") else charts.empty_figure(""))
        return {answer: answer_markdown(result, lang), bars: chart, **_unseen(explained),
                ctx.session: {**state, "answered": answered_key(run_id, value)}}
    return run_predict


def build(ctx, tab) -> None:
    ctx.static(gr.Markdown("### 6. Try it\n<span class='hint'>Give the model something new, or click one of the "
                           "examples it was not trained on.</span>"))
    run = gr.Dropdown(label="Run", choices=[], elem_id="playground-run")
    # Created first (the panels' events fill them), placed in the right-hand column below.
    answer = gr.Markdown(elem_id="prediction", render=False)
    bars = gr.Plot(charts.empty_figure(""), show_label=False, elem_id="topk-plot", render=False)
    note = gr.Markdown(visible=False, elem_id="explain-note", render=False)
    for panel in ctx.all_panels():
        panel.build_explanation()
    explained = [note, *[c for panel in ctx.all_panels() for c in panel.explanation]]
    # an explanation is part of the answer: cleared, like it, when the input changes
    ctx.shared["answer"] = [answer, bars, *explained, ctx.session]

    def no_answer(run_id, value, state) -> dict:
        """The answer cleared while the input changes: it was computed for what stood there before (unless it was
        computed for this very value: the change reached the server after the answer it led to)."""
        if state.get("answered") and state["answered"] == answered_key(run_id, value):
            return gr.skip()
        return {answer: tr("Press Enter or Predict for an answer.", state["lang"]), bars: charts.empty_figure(""),
                **_unseen(explained)}
    ctx.shared["no_answer"] = no_answer

    run_predict = predict_handler(ctx, answer, bars, explained)
    with gr.Row():
        with gr.Column():  # inputs whose answer is the shared one, shown beside them
            for panel in ctx.all_panels():
                if panel.answers_shared:
                    panel.build_playground(ctx, run, run_predict)
            with gr.Row():
                predict_button = gr.Button("Predict", variant="primary", elem_id="predict", visible=False)
                explain_button = gr.Button("Explain", elem_id="explain", visible=False)
        with gr.Column():
            answer.render()
            bars.render()
            note.render()
            render_explanations(ctx)
    for panel in ctx.all_panels():  # a playground with answers of its own (a chat) takes the whole width
        if not panel.answers_shared:
            panel.build_playground(ctx, run, run_predict)
    parts = [c for panel in ctx.all_panels() for c in panel.playground] + serve_panel.build(ctx, run)
    ctx.nav("evaluate", "runs")

    def choose(run_id, state) -> dict:
        lang = state["lang"]
        status = ctx.run_status(run_id) if run_id else {}
        own = ctx.panel_for(status.get("task")) if run_id else None
        shared_visible = own is not None and own.answers_shared
        hint = tr("The answer appears here.", lang) if run_id else tr("Finish a run first (Train tab), then choose "
                                                                         "it above.", lang)
        out = {predict_button: gr.update(visible=shared_visible), **_unseen(explained),
               explain_button: gr.update(visible=shared_visible and ctx.task_of(status).explains),
               answer: gr.update(value=hint, visible=shared_visible or not run_id),
               bars: gr.update(value=charts.empty_figure(""), visible=shared_visible)}
        for panel in ctx.all_panels():
            out.update(panel.hide_playground())
        if own is not None:
            out.update(own.show_playground(ctx.task_of(status).example_inputs(ctx.run(run_id)), ctx.run_dir(run_id)))
        return {**out, **ctx.shared["serve_panel"](run_id, lang)}

    def on_predict(run_id, state, *values):
        return run_predict(run_id, own_input(ctx, run_id, values)[1], state)

    def on_open(state):
        dropdown, chosen = ctx.run_dropdown(state)
        return {run: dropdown, **choose(chosen, state)}

    ctx.on(tab.select, on_open, [ctx.session], [run, predict_button, explain_button, answer, bars, *parts, *explained])
    ctx.on(run.input, choose, [run, ctx.session], [predict_button, explain_button, answer, bars, *parts, *explained])
    ctx.on(explain_button.click, explain_handler(ctx, note), [run, ctx.session, *[panel.input for panel in ctx.all_panels()]],
           explained)
    ctx.on(predict_button.click, on_predict, [run, ctx.session, *[panel.input for panel in ctx.all_panels()]],
           [answer, bars, *explained, ctx.session])  # a new answer hides the explanation of the old one

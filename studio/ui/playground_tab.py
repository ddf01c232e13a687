"""Playground: try a finished model on something new, or on one of its examples. The run's task panel gives the
inputs (an image, a text, …); the answer and the probabilities chart are shared."""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import gradio as gr

from studio.errors import first_line
from studio.run.inference import Predictor, model_folder
from studio.runfolder import RunFolder
from studio.settings import env_number
from studio.ui import charts
from studio.ui.i18n import tr

log = logging.getLogger(__name__)
DEFAULT_CACHE_MB = 2048  # loaded models' weights kept in memory (STUDIO_PLAYGROUND_CACHE_MB)

_predictors: OrderedDict[tuple, tuple[Predictor, float]] = OrderedDict()  # key → (predictor, its size in MB)
_lock = threading.Lock()


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


def build(ctx, tab) -> None:
    ctx.static(gr.Markdown("### 6. Try it\n<span class='hint'>Give the model something new, or click one of the "
                           "examples it was not trained on.</span>"))
    run = gr.Dropdown(label="Run", choices=[], elem_id="playground-run")
    # Created first (the panels' events fill them), placed in the right-hand column below.
    answer = gr.Markdown(elem_id="prediction", render=False)
    bars = gr.Plot(charts.empty_figure(""), show_label=False, elem_id="topk-plot", render=False)
    ctx.shared["answer"] = [answer, bars]

    def no_answer(state) -> dict:
        """The answer cleared while the input changes: it was computed for what stood there before."""
        return {answer: tr("Press Enter or Predict for an answer.", state["lang"]), bars: charts.empty_figure("")}
    ctx.shared["no_answer"] = no_answer

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
        return {answer: answer_markdown(result, lang), bars: chart}

    with gr.Row():
        with gr.Column():  # inputs whose answer is the shared one, shown beside them
            for panel in ctx.all_panels():
                if panel.answers_shared:
                    panel.build_playground(ctx, run, run_predict)
            predict_button = gr.Button("Predict", variant="primary", elem_id="predict", visible=False)
        with gr.Column():
            answer.render()
            bars.render()
    for panel in ctx.all_panels():  # a playground with answers of its own (a chat) takes the whole width
        if not panel.answers_shared:
            panel.build_playground(ctx, run, run_predict)
    ctx.nav("evaluate", "runs")
    parts = [c for panel in ctx.all_panels() for c in panel.playground]

    def choose(run_id, state) -> dict:
        lang = state["lang"]
        status = ctx.run_status(run_id) if run_id else {}
        own = ctx.panel_for(status.get("task")) if run_id else None
        shared_visible = own is not None and own.answers_shared
        hint = tr("The answer appears here.", lang) if run_id else tr("Finish a run first (Train tab), then choose "
                                                                         "it above.", lang)
        out = {predict_button: gr.update(visible=shared_visible),
               answer: gr.update(value=hint, visible=shared_visible or not run_id),
               bars: gr.update(value=charts.empty_figure(""), visible=shared_visible)}
        for panel in ctx.all_panels():
            out.update(panel.hide_playground())
        if own is not None:
            out.update(own.show_playground(ctx.task_of(status).example_inputs(ctx.run(run_id)), ctx.run_dir(run_id)))
        return out

    def on_predict(run_id, state, *values):
        own = ctx.panel_for(ctx.run_status(run_id).get("task")) if run_id else None
        value = next((v for panel, v in zip(ctx.all_panels(), values) if panel is own), None)
        return run_predict(run_id, value, state)

    def on_open(state):
        dropdown, chosen = ctx.run_dropdown(state)
        return {run: dropdown, **choose(chosen, state)}

    ctx.on(tab.select, on_open, [ctx.session], [run, predict_button, answer, bars, *parts])
    ctx.on(run.input, choose, [run, ctx.session], [predict_button, answer, bars, *parts])
    ctx.on(predict_button.click, on_predict, [run, ctx.session, *[panel.input for panel in ctx.all_panels()]],
           [answer, bars])

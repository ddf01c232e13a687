"""Playground: try a finished model on something new, or on one of its examples. The run's task panel gives the
inputs (an image, a text, …); the answer and the probabilities chart are shared."""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import gradio as gr

from studio.engine.inference import Predictor, model_folder
from studio.errors import first_line
from studio.runfolder import EXAMPLES, RunFolder
from studio.settings import env_number
from studio.ui import charts, panels
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
    sure = tr("{score} sure", lang, score=f"{answer['score']:.1%}")
    return f"### {answer['label']}\n<span class='hint'>{sure}</span>"


def build(ctx, tab) -> None:
    ctx.static(gr.Markdown("### 6. Try it\n<span class='hint'>Give the model something new, or click one of the "
                           "examples it was not trained on.</span>"))
    run = gr.Dropdown(label="Run", choices=[], elem_id="playground-run")
    # Created first (the panels' events fill them), placed in the right-hand column below.
    answer = gr.Markdown(elem_id="prediction", render=False)
    bars = gr.Plot(charts.empty_figure(""), show_label=False, elem_id="topk-plot", render=False)
    shared = [answer, bars]
    all_panels = panels.all_panels()

    def run_predict(run_id, value, state):
        lang = state["lang"]
        if not run_id:
            return (tr("Finish a run first (Train tab), then choose it above.", lang),
                    charts.empty_figure(tr("No model yet", lang)))
        if value is None or (isinstance(value, str) and not value.strip()):
            return tr("Give the model an input first.", lang), charts.empty_figure(tr("No input yet", lang))
        try:
            result = predictor(ctx.run(run_id)).predict([value], top_k=5)[0]
        except (OSError, ValueError, LookupError) as exc:
            return f"**{tr('Could not predict:', lang)}** {first_line(exc)}", charts.empty_figure(tr("No answer",
                                                                                                         lang))
        return answer_markdown(result, lang), charts.top_k_figure(result, tr("Most likely labels", lang),
                                                                  tr("probability", lang))

    with gr.Row():
        with gr.Column():
            for panel in all_panels:
                panel.build_playground(run, shared, run_predict, ctx.session)
            predict_button = gr.Button("Predict", variant="primary", elem_id="predict", visible=False)
        with gr.Column():
            answer.render()
            bars.render()
    ctx.nav("evaluate", "runs")
    parts = [c for panel in all_panels for c in panel.playground]

    def examples(run_id) -> list[str]:
        """The run's example inputs: texts, or files inside its run folder."""
        folder = ctx.run(run_id)
        listed = (folder.read(EXAMPLES) or {}).get("examples", [])
        return [str(folder.path / e["input"]) if (folder.path / e["input"]).is_file() else e["input"]
                for e in listed]

    def choose(run_id, state):
        lang = state["lang"]
        own = panels.get(ctx.run_status(run_id).get("task")) if run_id else None
        items = examples(run_id) if run_id else []
        shared_visible = own is not None and own.answers_shared
        hint = tr("The answer appears here.", lang) if run_id else tr("Finish a run first (Train tab), then choose "
                                                                         "it above.", lang)
        return (gr.Button(visible=shared_visible), gr.Markdown(hint, visible=shared_visible or not run_id),
                gr.Plot(charts.empty_figure(""), visible=shared_visible),
                *[u for panel in all_panels for u in (panel.show_playground(items, ctx.run_dir(run_id)) if panel is own
                                                      else [gr.update(visible=False)] * len(panel.playground))])

    def on_predict(run_id, state, *values):
        own = panels.get(ctx.run_status(run_id).get("task")) if run_id else None
        value = next((v for panel, v in zip(all_panels, values) if panel is own), None)
        return run_predict(run_id, value, state)

    def on_open(state):
        dropdown, chosen = ctx.run_dropdown(state)
        return dropdown, *choose(chosen, state)

    tab.select(on_open, ctx.session, [run, predict_button, *shared, *parts])
    run.input(choose, [run, ctx.session], [predict_button, *shared, *parts])
    predict_button.click(on_predict, [run, ctx.session, *[panel.input for panel in all_panels]], shared)

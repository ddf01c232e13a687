"""Playground: try a finished model on a new image (upload or webcam) or text, or on one of its examples."""
from __future__ import annotations

import threading

import gradio as gr

from studio import catalog
from studio.engine.events import read_json
from studio.engine.inference import Predictor
from studio.ui import charts

_predictors: dict[str, Predictor] = {}
_lock = threading.Lock()


def predictor(run_dir) -> Predictor:
    """Loads a run's model once and keeps it for later predictions."""
    key = str(run_dir)
    with _lock:
        if key not in _predictors:
            _predictors[key] = Predictor(run_dir)
        return _predictors[key]


def answer_markdown(answer: dict) -> str:
    return f"### {answer['label']}\n<span class='hint'>{answer['score']:.1%} sure</span>"


def build(ctx, tab) -> None:
    gr.Markdown("### 6. Try it\n<span class='hint'>Give the model something new, or click one of the examples "
                "it was not trained on.</span>")
    run = gr.Dropdown(label="Run", choices=[], elem_id="playground-run")
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="An image", type="filepath", sources=["upload", "webcam", "clipboard"],
                             visible=False, elem_id="playground-image", height=280)
            text = gr.Textbox(label="A text", lines=3, visible=False, elem_id="playground-text")
            predict = gr.Button("Predict", variant="primary", elem_id="predict")
            image_examples = gr.Gallery(label="Examples (click one)", columns=4, height=220, visible=False,
                                        allow_preview=False, elem_id="playground-examples")
            text_examples = gr.Radio(label="Examples (click one)", choices=[], visible=False,
                                     elem_id="playground-text-examples")
        with gr.Column():
            answer = gr.Markdown("The answer appears here.", elem_id="prediction")
            bars = gr.Plot(charts.empty_figure("Probabilities appear here"), show_label=False, elem_id="topk-plot")
    ctx.nav("evaluate", "runs")

    def examples(run_id) -> list[str]:
        """The run's example inputs: texts, or image paths inside its run folder."""
        folder = ctx.run_dir(run_id)
        listed = (read_json(folder / "examples.json") or {}).get("examples", [])
        is_image = ctx.run_status(run_id).get("task") == catalog.IMAGE
        return [str(folder / e["input"]) if is_image else e["input"] for e in listed]

    def run_predict(run_id, value):
        if not run_id:
            return "Finish a run first (Train tab), then choose it above.", charts.empty_figure("No model yet")
        if value is None or (isinstance(value, str) and not value.strip()):
            return "Give the model an input first.", charts.empty_figure("No input yet")
        try:
            result = predictor(ctx.run_dir(run_id)).predict([value], top_k=5)[0]
        except (OSError, ValueError, LookupError) as exc:
            return f"**Could not predict:** {exc}", charts.empty_figure("No answer")
        return answer_markdown(result), charts.top_k_figure(result)

    def choose(run_id):
        if not run_id:
            return gr.Image(visible=False), gr.Textbox(visible=False), gr.Gallery(visible=False), \
                gr.Radio(visible=False)
        is_image = ctx.run_status(run_id).get("task") == catalog.IMAGE
        items = examples(run_id)
        return (gr.Image(visible=is_image, value=None), gr.Textbox(visible=not is_image, value=""),
                gr.Gallery(value=items if is_image else [], visible=is_image),
                gr.Radio(choices=[] if is_image else items, value=None, visible=not is_image))

    def on_open(state):
        dropdown, chosen = ctx.run_dropdown(state)
        return dropdown, *choose(chosen)

    def on_gallery(run_id, evt: gr.SelectData):
        path = examples(run_id)[evt.index]
        return path, *run_predict(run_id, path)

    inputs_out = [image, text, image_examples, text_examples]
    tab.select(on_open, ctx.session, [run, *inputs_out])
    run.input(choose, run, inputs_out)
    predict.click(lambda r, i, t: run_predict(r, i if i is not None else t), [run, image, text], [answer, bars])
    image.upload(run_predict, [run, image], [answer, bars])
    image_examples.select(on_gallery, run, [image, answer, bars])
    text_examples.input(lambda r, t: (t, *run_predict(r, t)), [run, text_examples], [text, answer, bars])

"""Model: pick the task, then a pretrained model from the catalog (or type a hub id / local folder)."""
from __future__ import annotations

import html
import logging

import gradio as gr

from studio import catalog, tasks
from studio.families.base import ModelError
from studio.ui import session as sessions

log = logging.getLogger(__name__)
TRUST_INFO = ("Some hub models ship Python code of their own, which runs on this machine when the model loads. "
              "Tick this only for a model whose authors you trust. It is off for every model unless you tick it.")

def task_choices() -> list[tuple[str, str]]:
    return [(tasks.get(name).title, name) for name in tasks.names()]


def _choice(card: catalog.CatalogEntry) -> tuple[str, str]:
    where = "offline" if card.offline else "downloads once"
    return f"{card.title} · {card.params_m:g} M parameters · {where}", card.name


def cards_html(task: str, chosen: str) -> str:
    blocks = []
    for card in catalog.for_task(task):
        badge = ("<span class='badge offline'>works offline</span>" if card.offline
                 else "<span class='badge download'>needs internet once</span>")
        blocks.append(
            f"<div class='card{' chosen' if card.name == chosen else ''}'><h4>{html.escape(card.title)}{badge}</h4>"
            f"<p><b>Size:</b> {card.params_m:g} M parameters</p><p><b>Speed:</b> {html.escape(card.speed)}</p>"
            f"<p><b>Good for:</b> {html.escape(card.good_for)}</p></div>")
    return f"<div class='card-grid'>{''.join(blocks)}</div>"


def build(ctx, tab) -> None:
    gr.Markdown("### 1. Choose what to classify and a pretrained model to start from\n"
                "<span class='hint'>A pretrained model already knows a lot about images or language; the studio "
                "teaches it your labels.</span>")
    first = sessions.new_session()["recipe"]
    task = gr.Radio(task_choices(), value=first["task"], label="What will the model learn?", elem_id="task")
    model = gr.Radio([_choice(c) for c in catalog.for_task(first["task"])], value=first["model"],
                     label="Pretrained model", elem_id="model-choice")
    cards = gr.HTML(cards_html(first["task"], first["model"]))
    with gr.Accordion("Use another model: a Hugging Face hub id or a local folder", open=False):
        custom = gr.Textbox(label="Hub id or folder", placeholder="e.g. google/vit-base-patch16-224 or /models/my-bert",
                            info="Any image or text model that transformers' AutoModel can load. Hub models need "
                                 "internet the first time.")
        trust = gr.Checkbox(False, label="Trust this model's code (trust_remote_code)", info=TRUST_INFO,
                            elem_id="trust-code")
        use_custom = gr.Button("Use this model", size="sm", elem_id="use-custom")
        custom_note = gr.Markdown(elem_id="custom-note")
    ctx.nav(None, "data")
    ctx.shared.update(task=task)

    def on_task(task_value, state):
        sessions.set_task(state, task_value)
        chosen = state["recipe"]["model"]
        return (gr.Radio(choices=[_choice(c) for c in catalog.for_task(task_value)], value=chosen),
                cards_html(task_value, chosen), state, sessions.summary(state))

    def on_model(name, state):
        if name:
            state["recipe"]["model"] = name
            state["recipe"]["trust_remote_code"] = False  # catalog models never need it
        return (cards_html(state["recipe"]["task"], state["recipe"]["model"]), False, state,
                sessions.summary(state))

    def on_custom(text, trusted, state):
        """Checks the model at once (its config only, no weights), so a wrong name is answered here, in words."""
        text = (text or "").strip()
        if not text:
            return "Type a hub id such as `org/model-name`, or the path of a folder on this machine.", state, \
                sessions.summary(state)
        try:
            where = tasks.get(state["recipe"]["task"]).check_model(text, trust_remote_code=bool(trusted))
        except ModelError as exc:
            return f"**This model cannot be used:** {html.escape(str(exc))}", state, sessions.summary(state)
        except Exception as exc:  # never a traceback on the page
            log.exception("checking model %s failed", text)
            return (f"**This model cannot be used:** the studio could not read it ({type(exc).__name__}).", state,
                    sessions.summary(state))
        state["recipe"]["model"] = text
        state["recipe"]["trust_remote_code"] = bool(trusted)
        trusted_note = " Its own code is trusted and will run." if trusted else ""
        return f"Using **{html.escape(text)}**: {where}{trusted_note}", state, sessions.summary(state)

    def on_trust(trusted, state):
        if not trusted:
            state["recipe"]["trust_remote_code"] = False
        return state

    task.change(on_task, [task, ctx.session], [model, cards, ctx.session, ctx.summary])
    model.input(on_model, [model, ctx.session], [cards, trust, ctx.session, ctx.summary])
    use_custom.click(on_custom, [custom, trust, ctx.session], [custom_note, ctx.session, ctx.summary])
    trust.input(on_trust, [trust, ctx.session], ctx.session)

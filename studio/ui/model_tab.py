"""Model: pick what the model will learn (the task), then a pretrained model: the catalog's cards are the picker
(click one), or type a Hugging Face name or a folder under "Use another model"."""
from __future__ import annotations

import html
import logging

import gradio as gr

from studio import catalog, tasks
from studio.families.base import ModelError
from studio.ui import cluster_note
from studio.ui import session as sessions
from studio.ui.i18n import tr

log = logging.getLogger(__name__)
TRUST_INFO = ("Some models from the internet come with Python code of their own, which runs on this machine when "
              "the model loads. Tick this only for a model whose authors you trust. It is off for every model "
              "unless you tick it.")


def task_choices() -> list[tuple[str, str]]:
    return [(tasks.get(name).title, name) for name in tasks.names()]


def size_words(params_m: float, lang: str) -> str:
    """A model's size in words a non-engineer can weigh: small / medium / large, and the count in millions."""
    size = "small" if params_m < 10 else "medium" if params_m < 50 else "large"
    return tr("{size} ({millions} million learned numbers)", lang, size=tr(size, lang), millions=f"{params_m:g}")


def memory_words(entry: catalog.CatalogEntry, lang: str) -> tuple[str, str]:
    """(short, long) words on the memory training needs, for models whose task estimates it."""
    needs = tasks.get(entry.task).memory_needs(entry.params_m) if entry.task in tasks.names() else None
    if needs is None:
        return "", ""
    fits = needs["here"] <= needs["have"]
    short = tr("fits this machine's memory", lang) if fits else tr("too big for this machine's memory", lang)
    per = ", ".join(f"{tr(words, lang)} ~{gb:g} GB" for words, gb in needs["gpu"])
    detail = tr("Training memory on a GPU: {per}.", lang, per=per)
    here = (tr("The usual strategy fits this machine ({here} of {have} GB).", lang, here=f"{needs['here']:g}",
               have=needs["have"]) if fits else
            tr("Too big for this machine: the usual strategy needs {here} GB, it has {have} GB.", lang,
               here=f"{needs['here']:g}", have=needs["have"]))
    return f" · {short}", f" {detail} {here}"


def model_choices(task: str, lang: str = "en") -> list[tuple[str, str]]:
    """The catalog's models as cards to click: name, size, speed, where the weights come from, and (chat models)
    whether training fits this machine."""
    out = []
    for entry in catalog.for_task(task):
        where = tr("works offline", lang) if entry.offline else tr("downloads once", lang)
        out.append((f"{entry.title} — {size_words(entry.params_m, lang)} · {tr(entry.speed, lang)} · {where}"
                    f"{memory_words(entry, lang)[0]}", entry.name))
    return out


def details_html(model: str, lang: str) -> str:
    """What the chosen model is good for, below the cards."""
    entry = catalog.find(model)
    if entry is None:
        return f"<p class='hint'>{html.escape(tr('Using your own model: {name}', lang, name=model))}</p>"
    return (f"<p><b>{html.escape(entry.title)}</b>: {html.escape(tr(entry.good_for, lang))}</p>"
            f"<p class='hint'>{html.escape(tr('Size', lang))}: {html.escape(size_words(entry.params_m, lang))}. "
            f"{html.escape(tr('Speed', lang))}: {html.escape(tr(entry.speed, lang))}."
            f"{html.escape(memory_words(entry, lang)[1])}</p>")


def build(ctx, tab) -> None:
    ctx.static(gr.Markdown("### 1. Choose what the model will learn, and a pretrained model to start from\n"
                           "<span class='hint'>A pretrained model already knows a lot about images, language or "
                           "sound; the studio teaches it your examples.</span>"))
    first = sessions.new_session()["recipe"]
    task = gr.Radio(task_choices(), value=first["task"], label="What will the model learn?", elem_id="task")
    model = ctx.texts.keep_choices(gr.Radio(model_choices(first["task"]), value=first["model"],
                                            label="Pretrained model (click a card)", elem_id="model-choice",
                                            elem_classes=["model-cards"]))  # set in the page's language on load
    details = gr.HTML(details_html(first["model"], "en"), elem_id="model-details")
    cluster_note.add(ctx, tab)
    with gr.Accordion("Use another model (a name from huggingface.co, or a folder on this machine)", open=False):
        custom = gr.Textbox(label="Model name or folder", placeholder="e.g. google/vit-base-patch16-224 or "
                            "/models/my-bert", info="Any image, text or sound model that the transformers library "
                            "can load. Models from huggingface.co need internet the first time.")
        trust = gr.Checkbox(False, label="Trust this model's code", info=TRUST_INFO, elem_id="trust-code")
        use_custom = gr.Button("Use this model", size="sm", elem_id="use-custom")
        custom_note = gr.Markdown(elem_id="custom-note")
    ctx.nav(None, "data")

    def show(state) -> dict:
        """The session's task and model on the page (also what a reloaded page gets back)."""
        lang, draft = state["lang"], state["recipe"]
        chosen = draft["model"] if catalog.find(draft["model"]) else None
        return {task: gr.update(value=draft["task"]),
                model: gr.update(choices=model_choices(draft["task"], lang), value=chosen),
                details: details_html(draft["model"], lang)}

    def on_task(task_value, state):
        sessions.set_task(state, task_value)
        return {**show(state), ctx.session: state, ctx.summary: sessions.summary(state)}

    def on_model(name, state):
        if name:
            state["recipe"]["model"] = name
            state["recipe"]["trust_remote_code"] = False  # catalog models never need it
        return {details: details_html(state["recipe"]["model"], state["lang"]), trust: False, ctx.session: state,
                ctx.summary: sessions.summary(state)}

    def on_custom(text, trusted, state):
        """Checks the model at once (its config only, no weights), so a wrong name is answered here, in words."""
        lang = state["lang"]
        text = (text or "").strip()
        if not text:
            return {custom_note: tr("Type a model name such as `org/model-name`, or the path of a folder on this "
                                    "machine.", lang)}
        refused = tr("This model cannot be used:", lang)
        try:
            where = tasks.get(state["recipe"]["task"]).check_model(text, trust_remote_code=bool(trusted))
        except ModelError as exc:
            return {custom_note: f"**{refused}** {html.escape(str(exc))}"}
        except Exception as exc:  # never a traceback on the page
            log.exception("checking model %s failed", text)
            why = tr("the studio could not read it ({kind}).", lang, kind=type(exc).__name__)
            return {custom_note: f"**{refused}** {why}"}
        state["recipe"]["model"] = text
        state["recipe"]["trust_remote_code"] = bool(trusted)
        trusted_note = " " + tr("Its own code is trusted and will run.", lang) if trusted else ""
        return {custom_note: tr("Using **{name}**: {where}", lang, name=html.escape(text), where=where) + trusted_note,
                model: gr.update(value=None), details: details_html(text, lang), ctx.session: state,
                ctx.summary: sessions.summary(state)}

    def on_trust(trusted, state):
        if not trusted:
            state["recipe"]["trust_remote_code"] = False
        return {ctx.session: state}

    ctx.on(task.input, on_task, [task, ctx.session], [task, model, details, ctx.session, ctx.summary])
    ctx.on(model.input, on_model, [model, ctx.session], [details, trust, ctx.session, ctx.summary])
    ctx.on(use_custom.click, on_custom, [custom, trust, ctx.session],
           [custom_note, model, details, ctx.session, ctx.summary])
    ctx.on(trust.input, on_trust, [trust, ctx.session], [ctx.session])
    ctx.on_load(show, [task, model, details])
    # The Data tab switches the task too (an uploaded table is text): it redraws these with show().
    ctx.shared.update(task_view=[task, model, details], show_task=show)

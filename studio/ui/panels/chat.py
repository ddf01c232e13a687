"""Chat models on the page: the data as the model sees it (chat template applied, the learnt part highlighted, a
token-length histogram, what is over max_length, duplicates, empty responses), the tuned model against its base
on the Evaluate tab (loss, perplexity, held-out prompts answered by both), and a Playground that streams both
models' answers side by side. The engine answers in plain data and strings; no tensor reaches the page."""
from __future__ import annotations

import html
import logging
import threading
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go

from studio import tasks
from studio.errors import first_line
from studio.families.base import ModelInfo
from studio.runfolder import model_folder
from studio.tasks.instruction.model import load as load_chat
from studio.ui.i18n import tr, tr_said
from studio.ui.panels.base import Panel
from studio.ui.panels.chat_results import ChatResults
from studio.ui.recent import Recent

log = logging.getLogger(__name__)
_chats = Recent(2)  # loaded chat models kept (each holds a model in memory)


class Stops:
    """Each page's Stop button → the event its generation watches; an entry lives while its generation runs."""

    def __init__(self):
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, page: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(page, threading.Event())

    def stop(self, page: str) -> None:
        with self._lock:
            event = self._events.get(page)
        if event is not None:
            event.set()

    def end(self, page: str) -> None:
        with self._lock:
            self._events.pop(page, None)


def chat_for(run_dir: Path):
    """A run's tuned model (with its base), loaded once and kept while among the most recently used."""
    return _chats.get(str(run_dir), lambda: load_chat(model_folder(run_dir)))


# -- Data tab ------------------------------------------------------------------------------------------------------

def pieces_html(pieces: list) -> str:
    """One example as the model reads it: the learnt part highlighted, special tokens visible."""
    spans = "".join(f"<span class='{'learnt' if learnt else 'prompt'}'>{html.escape(text)}</span>"
                    for text, learnt in pieces)
    return f"<pre class='chat-example'>{spans}</pre>"


def pairs_html(pairs: list[dict], lang: str = "en") -> str:
    """Preference pairs side by side: the prompt, the better answer, the worse one."""
    head = "".join(f"<th>{html.escape(tr(c, lang))}</th>" for c in ("prompt", "better answer", "worse answer"))
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(p[k])}</td>" for k in ("prompt", "chosen", "rejected"))
                   + "</tr>" for p in pairs)
    return f"<table class='chat-pairs'><tr>{head}</tr>{rows}</table>"


PREVIEW_CSS = ("<style>.chat-example{white-space:pre-wrap;font-size:0.85em;border:1px solid "
               "var(--border-color-primary);border-radius:8px;padding:8px;} .chat-example .learnt{background:#dcfce7;"
               "color:#14532d;} .chat-example .prompt{color:var(--body-text-color-subdued);} .chat-pairs td{"
               "vertical-align:top;font-size:0.85em;}</style>")


def lengths_figure(lengths: list[int], max_length: int, lang: str = "en") -> go.Figure:
    fig = go.Figure(go.Histogram(x=lengths, nbinsx=30, marker_color="#6366f1"))
    fig.add_vline(x=max_length, line_dash="dash", line_color="#dc2626",
                  annotation_text=f"max_length {max_length}")
    fig.update_layout(title=tr("Tokens per example", lang), xaxis_title=tr("tokens", lang),
                      yaxis_title=tr("examples", lang), height=280, margin=dict(l=40, r=20, t=40, b=40))
    return fig


def stats_markdown(data, view: dict | None, lang: str = "en") -> str:
    report = data.report
    counts = dict(train=len(data.train_items), val=len(data.val_items), duplicates=report.duplicates,
                  empty=report.empty_responses)
    lines = [tr("**{train} training and {val} validation conversations** · {duplicates} duplicate(s) left out · "
                "{empty} empty response(s) skipped", lang, **counts) if data.form == "chat" else
             tr("**{train} training and {val} validation texts (continued pretraining)** · {duplicates} "
                "duplicate(s) left out · {empty} empty response(s) skipped", lang, **counts)]
    if view:
        lines.append(tr("{n} example(s) longer than max_length ({limit} tokens): they are cut from the start of the "
                        "prompt, so the answer stays whole. Each answer ends with `{end}`, so the tuned model stops. "
                        "<span class='learnt'>Highlighted</span>: what the model learns.", lang,
                        n=view["over_max_length"], limit=view["max_length"], end=view["end_of_turn"]))
        if view.get("template_note"):
            lines.append(f"> {tr_said(view['template_note'], lang)}")
    else:
        lines.append(tr("Choose a model on the Model tab to see the examples through its chat template.", lang))
    return "\n\n".join(lines)


# -- the panel -------------------------------------------------------------------------------------------------------

class ChatPanel(Panel):
    results_view = ChatResults
    answers_shared = False  # the chat below has its own answers

    def build_preview(self) -> None:
        self.stats = gr.Markdown(visible=False, elem_id="chat-data-stats")
        self.examples_html = gr.HTML(visible=False, elem_id="chat-preview")
        self.lengths = gr.Plot(visible=False, show_label=False, elem_id="chat-lengths")
        self.preview = [self.stats, self.examples_html, self.lengths]

    def show_preview(self, data, draft: dict, workspace, lang: str = "en", say=None) -> dict:
        """With the session's model (and the workspace, where packaged models are converted), the examples go
        through its tokenizer and chat template; without, the conversations are shown as they were read."""
        view = None
        model, max_length = draft.get("model"), draft["data"].get("max_length")
        if model:
            try:
                view = tasks.get(draft["task"]).preview(data, model, workspace.models_dir, max_length, log=say)
            except Exception as exc:  # a model that cannot be read is said on the Model tab; here it only hides
                log.info("no chat-template preview for %s: %s", model, exc)
        if view:
            shown = "".join(pieces_html(p) for p in view["examples"]) + (
                pairs_html(view["pairs"], lang) if view.get("pairs") else "")  # preference tuning's pairs
            figure = gr.update(value=lengths_figure(view["lengths"], view["max_length"], lang), visible=True)
        else:
            shown = "".join(pieces_html([(f"{m['role']}: {m['content']}\n", m["role"] == "assistant")
                                         for m in item]) if data.form == "chat" else pieces_html([(item, True)])
                            for item in data.train_items[:3])
            figure = gr.update(visible=False)
        return {self.stats: gr.update(value=stats_markdown(data, view, lang), visible=True),
                self.examples_html: gr.update(value=PREVIEW_CSS + shown, visible=True), self.lengths: figure}

    def build_mistakes(self) -> None:
        self.mistakes = []  # the held-out answers are part of the results view

    def show_mistakes(self, report: dict, run_dir, lang: str) -> dict:
        return {}

    def build_playground(self, ctx, run, predict) -> None:
        stops = Stops()
        run_dir = gr.State(None)
        with gr.Group(visible=False) as box:
            system = gr.Textbox(label="System prompt (the one used in training)", lines=2,
                                elem_id="chat-system")
            with gr.Row():
                temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.05, label="Temperature (0: greedy)",
                                        elem_id="chat-temperature")
                top_p = gr.Slider(0.05, 1.0, value=0.9, step=0.05, label="Top-p", elem_id="chat-top-p")
                max_new = gr.Slider(8, 1024, value=160, step=8, label="Max new tokens", elem_id="chat-max-new")
            with gr.Row():
                tuned = gr.Chatbot(label="Tuned model", height=320, elem_id="chat-tuned")
                base = gr.Chatbot(label="Base model (adapter off)", height=320, elem_id="chat-base")
            message = gr.Textbox(label="Your message", placeholder="Type a message and press Enter",
                                 elem_id="chat-message")
            with gr.Row():
                send = gr.Button("Send", variant="primary", elem_id="chat-send")
                stop = gr.Button("Stop", variant="stop", elem_id="chat-stop")
                clear = gr.Button("Clear", elem_id="chat-clear")
            examples = gr.Radio(label="Held-out prompts (click one)", choices=[], elem_id="chat-examples")
            note = gr.Markdown(elem_id="chat-note")

        def answers(folder, key, text, tuned_history, base_history, system_prompt, temp, p, limit):
            """The tuned model's answer, then the base model's, streamed: (tuned history, base history, note)."""
            text = (text or "").strip()
            if not folder or not text:
                yield tuned_history, base_history, "Choose a finished run and type a message."
                return
            try:
                chat = chat_for(Path(folder))
            except Exception as exc:  # never a traceback on the page
                log.exception("loading the chat model failed")
                yield tuned_history, base_history, f"**Could not load the model:** {first_line(exc)}"
                return
            stop_event = stops.start(key)
            stop_event.clear()
            histories = {"tuned": list(tuned_history or []), "base": list(base_history or [])}
            try:
                for side, flag in (("tuned", True), ("base", False)):
                    if not flag and not chat.has_base:
                        continue
                    earlier = [{"role": m["role"], "content": _text(m["content"])} for m in histories[side]]
                    messages = chat.messages(text, earlier, system_prompt)
                    histories[side] += [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
                    for so_far in chat.stream(messages, tuned=flag, max_new_tokens=int(limit),
                                              temperature=float(temp), top_p=float(p), stop=stop_event):
                        histories[side][-1]["content"] = so_far
                        yield histories["tuned"], histories["base"], ""
                    if stop_event.is_set():
                        break
            except Exception as exc:  # never a traceback on the page
                log.exception("generation failed")
                yield histories["tuned"], histories["base"], f"**Could not answer:** {first_line(exc)}"
                return
            finally:
                stops.end(key)
            yield histories["tuned"], histories["base"], ""

        # A page's connection (its session hash) is the key its Stop button and its generation share.
        def on_send(folder, text, tuned_history, base_history, system_prompt, temp, p, limit,
                    request: gr.Request):
            for tuned_now, base_now, said in answers(folder, request.session_hash, text, tuned_history,
                                                     base_history, system_prompt, temp, p, limit):
                yield {tuned: tuned_now, base: base_now, message: "", note: said}

        def on_stop(request: gr.Request):
            stops.stop(request.session_hash)

        inputs = [run_dir, message, tuned, base, system, temperature, top_p, max_new]
        outputs = [tuned, base, message, note]
        sent = [ctx.on(send.click, on_send, inputs, outputs), ctx.on(message.submit, on_send, inputs, outputs)]
        ctx.on(stop.click, on_stop, None, None, cancels=sent)
        ctx.on(clear.click, lambda: {tuned: [], base: [], note: ""}, None, [tuned, base, note])
        ctx.on(examples.input, lambda text: {message: text}, [examples], [message])
        self.input = message
        self._parts = dict(box=box, run_dir=run_dir, system=system, examples=examples, tuned=tuned, base=base)
        self.playground = [box, run_dir, system, examples, tuned, base]

    def show_playground(self, examples: list, run_dir) -> dict:
        """examples: the run's held-out prompts."""
        parts, system = self._parts, ""
        if run_dir is not None:
            try:
                system = ModelInfo.read(model_folder(run_dir)).preprocessing.get("system_prompt", "")
            except (OSError, ValueError, LookupError):
                pass
        # visible again each time: the Playground hides every panel's parts while another task's run is shown
        return {parts["box"]: gr.update(visible=True), parts["run_dir"]: str(run_dir) if run_dir else None,
                parts["system"]: gr.update(value=system, visible=True),
                parts["examples"]: gr.update(choices=examples, value=None, visible=True),
                parts["tuned"]: gr.update(value=[], visible=True), parts["base"]: gr.update(value=[], visible=True)}

    def hide_playground(self) -> dict:
        return {self._parts["box"]: gr.update(visible=False)}


def _text(content) -> str:
    """A chatbot message's text (gradio may hand back structured content)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text(c) for c in content)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return str(content)

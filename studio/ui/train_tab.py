"""Train: start and stop a run; a timer reads the run's events every second and redraws progress and curves.
No handler waits for training: the engine trains in its own thread."""
from __future__ import annotations

import html

import gradio as gr

from studio import recipe as recipes
from studio.runfolder import ACTIVE
from studio.ui import charts
from studio.ui import session as sessions

LOG_LINES = 14


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _bar(fraction: float, text: str) -> str:
    width = max(0.0, min(1.0, fraction)) * 100
    return (f"<div class='progress-outer'><div class='progress-inner' style='width:{width:.1f}%'></div></div>"
            f"<p id='progress-text'>{text}</p>")


def progress_html(status: dict, events: list[dict], queued_ahead: int) -> str:
    state = status.get("status", "queued")
    if state == "queued":
        ahead = f"{queued_ahead} run(s) ahead of it" if queued_ahead else "starting"
        return _bar(0, f"Waiting in the queue ({ahead}). One run trains at a time on this device.")
    if state == "completed":
        score = (f": validation accuracy {status['accuracy']:.1%}" if status.get("accuracy") is not None else "")
        return _bar(1, f"Finished in {status.get('wall_time_s', 0):.0f} s{score}. See the Evaluate and Playground "
                       "tabs.")
    if state == "failed":
        return _bar(0, f"The run failed: {html.escape(status.get('error', 'unknown error'))}")
    if state == "cancelled":
        return _bar(0, "Stopped. Start again whenever you like.")
    if state == "interrupted":
        return _bar(0, f"Interrupted: {html.escape(status.get('message', ''))} (Runs tab: Resume this run.)")
    moving = [e for e in events if e["type"] in ("progress", "step")]
    if not moving:
        return _bar(0, "Preparing: loading the data and the model…")
    last = moving[-1]
    if last["type"] == "progress":
        return _bar(last["done"] / last["total"], f"Reading each example once: {last['done']} / {last['total']} · "
                    f"{last['samples_per_s']:.1f} examples/s · about {_clock(last['eta'])} left")
    speed = (f"{last['tokens_per_s']:.0f} tokens/s" if last.get("tokens_per_s") is not None
             else f"{last['samples_per_s']:.1f} examples/s")
    return _bar(last["step"] / last["total_steps"],
                f"Step {last['step']} / {last['total_steps']} · epoch {last['epoch']} · {speed} · "
                f"about {_clock(last['eta'])} left")


def log_text(events: list[dict]) -> str:
    lines = []
    for e in events:
        if e["type"] == "log":
            lines.append(e["message"])
        elif e["type"] == "data":
            classes = f"{len(e['classes'])} classes, " if e.get("classes") else ""
            lines.append(f"Data: {classes}{e['train']} training and {e['validation']} validation examples")
        elif e["type"] == "model":
            lines.append(f"Model: {e['trainable']:,} of {e['total']:,} weights will train")
        elif e["type"] == "epoch":
            lines.append(f"Epoch {e['epoch']}/{e['total_epochs']}: training loss {e['train_loss']:.4f}, "
                         f"validation loss {e['val_loss']:.4f}"
                         + (f", accuracy {e['accuracy']:.1%}" if e.get("accuracy") is not None else ""))
        elif e["type"] == "status":
            lines.append(f"Status: {e['status']}" + (f" — {e['error']}" if e.get("error") else ""))
    return "\n".join(lines[-LOG_LINES:])


def build(ctx, tab) -> None:
    gr.Markdown("### 4. Train\n<span class='hint'>The studio keeps working while the model trains; you can look "
                "at other tabs and come back.</span>")
    with gr.Row():
        start = gr.Button("Start training", variant="primary", elem_id="start")
        stop = gr.Button("Stop", variant="stop", elem_id="stop")
    message = gr.Markdown(elem_id="train-message")
    progress = gr.HTML(_bar(0, "No run yet."), elem_id="progress")
    with gr.Row():
        loss_plot = gr.Plot(charts.empty_figure("The loss curve appears when training starts"),
                            elem_id="loss-plot", show_label=False)
        accuracy_plot = gr.Plot(charts.empty_figure("Accuracy appears after the first epoch"),
                                elem_id="accuracy-plot", show_label=False)
    log = gr.Textbox(label="Log", lines=8, max_lines=LOG_LINES, interactive=False, elem_id="train-log")
    ctx.nav("strategy", "evaluate")
    timer = gr.Timer(1.0, active=False)

    def refresh(state, force=False):
        run_id = state["run_id"]
        if not run_id:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False), state
        status, events = ctx.run_status(run_id), ctx.run_events(run_id)
        ahead = status.get("position", 0) if status.get("status") == "queued" else 0
        running = status.get("status") in ACTIVE
        # Redraw only what changed: on a small machine the browser's plot redraws compete with training.
        drawn = (run_id, status.get("status"), ahead, len(events))
        curves = sum(e["type"] in ("step", "epoch") for e in events)
        unchanged = not force and state.get("drawn") == drawn
        same_curves = not force and state.get("curves") == (run_id, curves)
        state.update(drawn=drawn, curves=(run_id, curves))
        if unchanged:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=running), state
        plots = (gr.skip(), gr.skip()) if same_curves else (charts.loss_figure(events), charts.accuracy_figure(events))
        return progress_html(status, events, ahead), *plots, log_text(events), gr.Timer(active=running), state

    def on_start(state):
        try:
            recipe = sessions.build_recipe(state)
            job = ctx.jobs.start(recipe)
        except recipes.RecipeError as exc:
            return f"**Cannot start yet.** {exc}", state, sessions.summary(state), gr.Timer(active=False)
        state["run_id"] = job.run_id
        return (f"Run `{job.run_id}` started.", state, sessions.summary(state), gr.Timer(active=True))

    def on_stop(state):
        run_id = state["run_id"]
        if not run_id or ctx.run_status(run_id).get("status") not in ACTIVE:
            return "Nothing is training right now."
        ctx.jobs.cancel(run_id)
        return f"Stopping run `{run_id}`…"

    outputs = [progress, loss_plot, accuracy_plot, log, timer, ctx.session]
    start.click(on_start, ctx.session, [message, ctx.session, ctx.summary, timer]).then(
        lambda state: refresh(state, force=True), ctx.session, outputs)
    stop.click(on_stop, ctx.session, message)
    timer.tick(refresh, ctx.session, outputs, show_progress="hidden")
    tab.select(lambda state: refresh(state, force=True), ctx.session, outputs, show_progress="hidden")

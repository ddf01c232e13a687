"""Train: start and stop this session's run, and watch it. Everything shown (its name, message, progress bar,
curves and log) comes from that run's folder, which a worker process writes; a timer reads it. A run too fast to
watch (feature extraction on a few hundred examples) is replayed for the eye: the page reveals its curve in a few
steps, which never adds time to the run."""
from __future__ import annotations

import html
import math
import time

import gradio as gr

from studio.errors import UserError
from studio.run.log_tails import LogTails
from studio.run.summary import headline
from studio.runfolder import ACTIVE
from studio.ui import charts
from studio.ui import session as sessions
from studio.ui.i18n import tr, tr_said

LOG_LINES = 14
JOB_LOG_LINES = 8
REPLAY_TICKS = 8  # a finished curve not yet seen appears over this many ticks
TICK_S, REPLAY_TICK_S = 1.0, 0.3
REPLAY_WITHIN_S = 30  # a run that ended longer ago than this is drawn whole
JOB_LOGS = LogTails(JOB_LOG_LINES)  # every page of this studio shares what the cluster last said


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _bar(fraction: float, text: str) -> str:
    width = max(0.0, min(1.0, fraction)) * 100
    return (f"<div class='progress-outer'><div class='progress-inner' style='width:{width:.1f}%'></div></div>"
            f"<p id='progress-text'>{text}</p>")


def waiting_words(status: dict, lang: str) -> str:
    """What a queued run waits for, from what admission wrote into its status: the runs ahead of it on its
    device, from this workspace and from others, and the time the one training now has left."""
    ahead = status.get("position", 0)
    if not ahead and status.get("cluster_free"):  # its turn: the cluster has too little free for it
        free, ask = status["cluster_free"], status["cluster_asks"]
        return tr("Waiting for the cluster: {cpus} CPUs and {gpus} GPUs free; this run asks for {ask_cpus} CPUs and "
                  "{ask_gpus} GPUs.", lang, cpus=f"{free['CPU']:g}", gpus=f"{free['GPU']:g}",
                  ask_cpus=f"{ask['CPU']:g}", ask_gpus=f"{ask['GPU']:g}")
    if not ahead:
        return tr("Starting: waiting for its turn on the device.", lang)
    here = status.get("ahead_here", 0)
    elsewhere = status.get("ahead_elsewhere", ahead - here)
    parts = [tr("1 run from this workspace", lang) if here == 1 else
             tr("{n} runs from this workspace", lang, n=here) if here else "",
             tr("1 run from another workspace", lang) if elsewhere == 1 else
             tr("{n} runs from other workspaces", lang, n=elsewhere) if elsewhere else ""]
    who = tr("{first} and {second}", lang, first=parts[0], second=parts[1]) if all(parts) else "".join(parts)
    if status.get("cluster"):
        return tr("Waiting for the cluster: {who}, then yours.", lang, who=who)
    device = tr("this machine's GPU", lang) if status.get("device") in ("cuda", "mps") else tr("this machine's CPU", lang)
    text = tr("Waiting for {device}: {who}, then yours. One run trains at a time on a device.", lang,
              device=device, who=who)
    if status.get("training_left_s") is not None:
        text += " " + tr("The one training now has about {eta} left.", lang, eta=_clock(status["training_left_s"]))
    return text


def progress_html(status: dict, events: list[dict], lang: str, stopping: bool = False) -> str:
    state = status.get("status", "queued")
    if state == "queued":
        return _bar(0, waiting_words(status, lang))
    if state == "completed":
        metric = headline(status)
        score = (f": {tr(metric['words'], lang)} {metric['shown']}" if metric and metric["value"] is not None
                 else "")
        return _bar(1, tr("Finished in {seconds} s{score}. See the Evaluate and Playground tabs.", lang,
                          seconds=f"{status.get('wall_time_s', 0):.0f}", score=score))
    if state == "failed":
        return _bar(0, tr("The run failed: {reason}", lang, reason=html.escape(status.get("error", ""))))
    if state == "cancelled":
        return _bar(0, tr("Stopped. Start again whenever you like.", lang))
    if state == "interrupted":
        return _bar(0, tr("Interrupted: {why} (Runs tab: Resume this run.)", lang,
                          why=html.escape(status.get("message", ""))))
    moving = [e for e in events if e["type"] in ("progress", "step")]
    prefix = tr("Stopping… ", lang) if stopping else ""
    if not moving:
        return _bar(0, prefix + tr("Preparing: loading the data and the model…", lang))
    last = moving[-1]
    if last["type"] == "progress" and last.get("phase") == "head":
        return _bar(last["done"] / last["total"], prefix + tr(
            "Choosing the final layer: candidate {done} / {total}, each scored on held-out training examples · "
            "about {eta} left", lang, done=last["done"], total=last["total"], eta=_clock(last["eta"])))
    if last["type"] == "progress":
        return _bar(last["done"] / last["total"], prefix + tr(
            "Reading each example once: {done} / {total} · {rate} examples/s · about {eta} left", lang,
            done=last["done"], total=last["total"], rate=f"{last['samples_per_s']:.1f}", eta=_clock(last["eta"])))
    speed = (tr("{rate} tokens/s", lang, rate=f"{last['tokens_per_s']:.0f}") if last.get("tokens_per_s") is not None
             else tr("{rate} examples/s", lang, rate=f"{last['samples_per_s']:.1f}"))
    return _bar(last["step"] / last["total_steps"], prefix + tr(
        "Step {step} / {total} · epoch {epoch} · {speed} · about {eta} left", lang, step=last["step"],
        total=last["total_steps"], epoch=last["epoch"], speed=speed, eta=_clock(last["eta"])))


def log_text(events: list[dict], lang: str, curves=()) -> str:
    """The run's story in lines; curves: the task's Metrics, the first one named in each epoch's line (a chat run's
    "accuracy" is its answer tokens predicted exactly, not a share of examples)."""
    first, lines = (curves[0] if curves else None), []
    for e in events:
        if e["type"] == "log":
            lines.append(tr_said(e["message"], lang))
        elif e["type"] == "data":
            classes = tr("{n} classes, ", lang, n=len(e["classes"])) if e.get("classes") else ""
            lines.append(tr("Data: {classes}{train} training and {val} validation examples", lang, classes=classes,
                            train=e["train"], val=e["validation"]))
        elif e["type"] == "model":
            lines.append(tr("Model: {trainable} of {total} learned numbers will change", lang,
                            trainable=f"{e['trainable']:,}", total=f"{e['total']:,}"))
        elif e["type"] == "epoch":
            figure = (f", {tr(first.words, lang)} {first.format(e[first.key])}"
                      if first is not None and e.get(first.key) is not None else "")
            lines.append(tr("Epoch {epoch}/{total}: training loss {train}, validation loss {val}", lang,
                            epoch=e["epoch"], total=e["total_epochs"], train=f"{e['train_loss']:.4f}",
                            val=f"{e['val_loss']:.4f}") + figure)
        elif e["type"] == "status":
            line = f"{tr('Status', lang)}: {tr(e['status'], lang)}" + (f" — {e['error']}" if e.get("error") else "")
            if not lines or lines[-1] != line:  # the starter and the worker both say "queued"
                lines.append(line)
    return "\n".join(lines[-LOG_LINES:])


def job_log(run, status: dict, events: int, lang: str) -> str:
    """The last lines of what a run's job printed on the cluster (Ray's job log) and Ray's word on the job, for a
    run a cluster carries; asked of the cluster only when the run has moved on (JOB_LOGS)."""
    if not status.get("cluster_job_id"):
        return ""
    try:
        tail = JOB_LOGS.get(run, status, events)
    except (OSError, RuntimeError, UserError):  # the cluster not answering: the run's own story still shows
        return ""
    if not tail.lines:
        return ""
    heading = tr("The job's log on the cluster (Ray: {state}):", lang, state=tail.job_status or "?")
    return "\n\n" + heading + "\n" + "\n".join(tail.lines)


def revealed(events: list[dict], shown: int) -> list[dict]:
    """The events up to step `shown` (the replay's position); everything but curve points passes."""
    return [e for e in events if e["type"] not in ("step", "epoch") or e.get("step", 0) <= shown]


def replay_position(status: dict, latest: int, total: int, shown: int) -> int:
    """The last step the page shows: all of a live run (or one long over); a run that ended moments ago, faster
    than the eye, is revealed over a few ticks."""
    just_ended = time.time() - (status.get("finished") or 0) < REPLAY_WITHIN_S
    if status.get("status") in ACTIVE or not just_ended:
        return latest
    return min(latest, shown + max(1, math.ceil(total / REPLAY_TICKS)))


def build(ctx, tab) -> None:
    ctx.static(gr.Markdown("### 4. Train\n<span class='hint'>The studio keeps working while the model trains; you "
                           "can look at other tabs, close the page and come back.</span>"))
    with gr.Row():
        start = gr.Button("Start training", variant="primary", elem_id="start")
        stop = gr.Button("Stop", variant="stop", elem_id="stop")
    heading = gr.Markdown(elem_id="train-run")
    message = gr.Markdown(elem_id="train-message")
    progress = gr.HTML(_bar(0, ""), elem_id="progress")
    with gr.Row():
        loss_plot = gr.Plot(charts.empty_figure(""), elem_id="loss-plot", show_label=False)
        accuracy_plot = gr.Plot(charts.empty_figure(""), elem_id="accuracy-plot", show_label=False)
    log = gr.Textbox(label="Log", lines=8, max_lines=LOG_LINES, interactive=False, elem_id="train-log")
    ctx.nav("strategy", "evaluate")
    timer = gr.Timer(TICK_S, active=False)
    view = gr.State({})  # what this page has drawn (not kept in the browser: a reload draws afresh)

    def refresh(state, seen, force=False) -> dict:
        lang, run_id = state["lang"], state["run_id"]
        if not run_id:
            return {start: gr.update(interactive=True), heading: "",
                    message: tr("No run yet: choose data and press Start.", lang), progress: _bar(0, ""),
                    loss_plot: charts.loss_figure([], lang), accuracy_plot: charts.metrics_figure([], (), lang),
                    log: "", timer: gr.Timer(active=False), view: {}}
        run = ctx.run(run_id)
        status, events = run.status(), run.events()
        latest = max((e["step"] for e in events if e["type"] == "step"), default=0)
        total = next((e["total_steps"] for e in reversed(events) if e["type"] == "step"), 0)
        fresh = seen.get("run") != run_id
        shown = replay_position(status, latest, total, 0 if fresh else seen.get("shown", 0))
        replaying = shown < latest
        stopping = run.cancel_requested() and status.get("status") in ACTIVE
        drawn = (run_id, status.get("status"), status.get("position"), status.get("message"), len(events), shown,
                 stopping)
        training = status.get("status") in ACTIVE
        out = {timer: gr.Timer(REPLAY_TICK_S if replaying else TICK_S, active=training or replaying),
               view: {"run": run_id, "shown": shown, "drawn": drawn}}
        if not force and not fresh and seen.get("drawn") == drawn:
            return out  # nothing new: no redraw for the browser to do
        visible = revealed(events, shown)
        name = sessions.run_name({**status, "id": run_id}, lang)
        curves = ctx.task_of(status).curves
        # Start stays greyed while this session's run trains: a second one would only wait behind it
        return {**out, start: gr.update(interactive=not training),
                heading: f"**{tr('Run', lang)}:** {name} <span class='hint'>({run_id})</span>",
                message: run_message(status, lang, stopping),
                progress: progress_html(status, visible if replaying else events, lang, stopping),
                loss_plot: charts.loss_figure(visible, lang),
                accuracy_plot: charts.metrics_figure(visible, curves, lang),
                log: log_text(events, lang, curves) + job_log(run, status, len(events), lang)}

    def on_start(state):
        lang = state["lang"]
        try:
            recipe = sessions.build_recipe(state)
            ctx.check(recipe)  # what this user's recipe may read and start from
            job = ctx.jobs.start(recipe, owner=ctx.owner())
        except UserError as exc:  # a recipe that cannot run, or a cluster that cannot take it
            return {message: f"**{tr('Cannot start yet.', lang)}** {exc}", ctx.session: state,
                    ctx.summary: sessions.summary(state)}
        ctx.audit("run started", run=job.run_id, task=recipe.task, model=recipe.model, strategy=recipe.strategy)
        sessions.add_run(state, job.run_id, recipe)
        return {message: "", ctx.session: state, ctx.summary: sessions.summary(state)}

    def on_stop(state):
        run_id = state["run_id"]
        if not run_id or ctx.run_status(run_id).get("status") not in ACTIVE:
            return {message: tr("Nothing is training right now.", state["lang"])}
        ctx.jobs.cancel(run_id)
        ctx.audit("run stopped", run=run_id)
        return {message: ""}

    outputs = [start, heading, message, progress, loss_plot, accuracy_plot, log, timer, view]
    started = ctx.on(start.click, on_start, [ctx.session], [message, ctx.session, ctx.summary])
    ctx.on(started.success, lambda state: refresh(state, {}, force=True), [ctx.session], outputs)
    stopped = ctx.on(stop.click, on_stop, [ctx.session], [message])
    ctx.on(stopped.then, lambda state, seen: refresh(state, seen, True), [ctx.session, view], outputs)
    ctx.on(timer.tick, refresh, [ctx.session, view], outputs, show_progress="hidden")
    ctx.on(tab.select, lambda state: refresh(state, {}, force=True), [ctx.session], outputs, show_progress="hidden")
    ctx.on_load(lambda state: refresh(state, {}, force=True), outputs)


def run_message(status: dict, lang: str, stopping: bool) -> str:
    """One line that follows the run's status."""
    state = status.get("status")
    if stopping:
        return tr("Stopping: the run ends after the step it is taking.", lang)
    return {"queued": tr("Queued.", lang), "running": tr("Training.", lang),
            "completed": tr("Done.", lang), "cancelled": tr("Stopped by you.", lang),
            "failed": tr("The run failed.", lang),
            "interrupted": tr("The training process stopped before the run finished.", lang)}.get(state, "")

"""The Playground's "Serve this model": start or stop `studio serve-model` for the chosen run (a process of its own,
on this machine only) and show its base URL, its key and what to paste into another program."""
from __future__ import annotations

import json

import gradio as gr

from studio.run.model_server import ModelServers
from studio.ui.i18n import tr

HINT = ("Other programs on this machine can use the model while it is served: chat models through an API like "
        "OpenAI's (the `openai` Python client works), classifiers through `/v1/classify`. It keeps running while "
        "the studio runs; stop it when you are done.")


def snippets(served_as: str, url: str, key: str, run_id: str, files: bool) -> str:
    """curl and Python lines that call the served model, ready to paste."""
    auth = f'-H "Authorization: Bearer {key}" -H "Content-Type: application/json"'
    if served_as == "chat":
        body = json.dumps({"model": run_id, "messages": [{"role": "user", "content": "Hello!"}]})
        python = (f'from openai import OpenAI\n\nclient = OpenAI(base_url="{url}", api_key="{key}")\n'
                  f'reply = client.chat.completions.create(model="{run_id}", messages=[{{"role": "user", '
                  f'"content": "Hello!"}}])\nprint(reply.choices[0].message.content)')
        return (f"```bash\ncurl {url}/chat/completions {auth} \\\n  -d '{body}'\n```\n"
                f"```python\n{python}\n```")
    if files:
        item = '{"filename": "example.png", "data": "\'"$(base64 -w0 example.png)"\'"}'
        body = f'{{"model": "{run_id}", "input": [{item}], "top_k": 3}}'
    else:
        body = json.dumps({"model": run_id, "input": ["a text to classify"], "top_k": 3})
    return f"```bash\ncurl {url}/classify {auth} \\\n  -d '{body}'\n```"


def info_markdown(ctx, run_id: str, served, lang: str) -> str:
    task = ctx.task_of(ctx.run_status(run_id))
    code = snippets(task.served_as, served.url, served.key, run_id, task.inputs_are_files)
    return (f"**{tr('Serving at', lang)}** `{served.url}`  \n**{tr('Key', lang)}** `{served.key}`  \n"
            f"**{tr('Model', lang)}** `{run_id}`\n\n{code}")


def build(ctx, run) -> list:
    """The panel under the Playground; returns its components a run change updates."""
    servers = ctx.shared["model_servers"] = ModelServers(ctx.workspace)  # a deleted run's server stops too
    with gr.Accordion("Serve this model", open=False, visible=False, elem_id="serve-panel") as panel:
        ctx.static(gr.Markdown(f"<span class='hint'>{HINT}</span>"))
        with gr.Row():
            start = gr.Button("Start serving", variant="primary", elem_id="serve-start")
            stop = gr.Button("Stop serving", elem_id="serve-stop", visible=False)
        info = gr.Markdown(elem_id="serve-info")

    def shown(run_id: str | None, lang: str) -> dict:
        """The panel for a run: visible for a task whose models are served, with the server's details if running."""
        served_as = ctx.task_of(ctx.run_status(run_id)).served_as if run_id else ""
        served = servers.get(ctx.run_dir(run_id)) if served_as else None
        return {panel: gr.update(visible=bool(served_as)), start: gr.update(visible=served is None),
                stop: gr.update(visible=served is not None),
                info: info_markdown(ctx, run_id, served, lang) if served else ""}

    def on_start(run_id, state):
        lang = state["lang"]
        if not run_id:
            yield {info: tr("Choose a finished run above first.", lang)}
            return
        served = servers.start(ctx.run_dir(run_id))
        yield {start: gr.update(visible=False), stop: gr.update(visible=True),
               info: tr("Starting the model server and loading the model…", lang)}
        why = servers.wait_ready(served)
        if why:
            servers.stop(ctx.run_dir(run_id))
            yield {start: gr.update(visible=True), stop: gr.update(visible=False),
                   info: f"**{tr('Could not serve the model:', lang)}** {why}"}
            return
        yield shown(run_id, lang)

    def on_stop(run_id, state):
        if run_id:
            servers.stop(ctx.run_dir(run_id))
        return {**shown(run_id, state["lang"]), info: tr("The model server has stopped.", state["lang"])}

    ctx.on(start.click, on_start, [run, ctx.session], [panel, start, stop, info])
    ctx.on(stop.click, on_stop, [run, ctx.session], [panel, start, stop, info])
    ctx.shared["serve_panel"] = shown
    return [panel, start, stop, info]

"""The studio app: a header with the current choices, seven tabs in wizard order, and the launcher."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from studio.engine.jobs import JobManager
from studio.runfolder import RunFolder
from studio.settings import env_number
from studio.examples import ASSETS
from studio.ui import session as sessions
from studio.workspace import Workspace, confine_caches

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_MB = 2048
TAB_ORDER = ["model", "data", "strategy", "train", "evaluate", "playground", "runs"]
TAB_NAMES = {"model": "Model", "data": "Data", "strategy": "Strategy", "train": "Train", "evaluate": "Evaluate",
             "playground": "Playground", "runs": "Runs"}

THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate",
                       font=["Inter", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
                       font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
CSS = """
#summary { padding: 8px 14px; border-radius: 10px; background: var(--block-background-fill);
           border: 1px solid var(--border-color-primary); font-size: 0.95em; }
.card-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px; }
.card.chosen { border: 2px solid var(--color-accent); }
.card h4 { margin: 0 0 4px 0; } .card p { margin: 2px 0; font-size: 0.9em; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 0.8em; margin-left: 4px; }
.badge.offline { background: #dcfce7; color: #166534; } .badge.download { background: #e0e7ff; color: #3730a3; }
.progress-outer { background: var(--neutral-200); border-radius: 999px; height: 14px; overflow: hidden; }
.progress-inner { background: var(--color-accent); height: 14px; transition: width 0.4s; }
.hint { color: var(--body-text-color-subdued); font-size: 0.92em; }
"""


@dataclass
class Context:
    """What every tab needs: the engine's job API, the workspace, and the shared wizard components."""
    workspace: Workspace
    jobs: JobManager
    session: gr.State
    summary: gr.Markdown
    tabs: gr.Tabs
    shared: dict = field(default_factory=dict)  # components a later tab updates (e.g. the task radio)

    def nav(self, back: str | None, forward: str | None) -> None:
        """Back / Next buttons to the neighbouring tabs."""
        with gr.Row():
            if back:
                gr.Button(f"← Back to {TAB_NAMES[back]}", size="sm").click(
                    lambda: gr.Tabs(selected=back), outputs=self.tabs)
            if forward:
                gr.Button(f"Next: {TAB_NAMES[forward]} →", variant="primary", size="sm").click(
                    lambda: gr.Tabs(selected=forward), outputs=self.tabs)

    def run_dir(self, run_id: str) -> Path:
        return self.workspace.find_run(run_id)

    def run(self, run_id: str) -> RunFolder:
        return RunFolder(self.run_dir(run_id))

    def run_status(self, run_id: str) -> dict:
        return self.run(run_id).status()

    def run_events(self, run_id: str) -> list[dict]:
        return self.run(run_id).events()

    def run_choices(self, completed_only: bool = True) -> list[tuple[str, str]]:
        """Dropdown choices, newest first: (readable label, run id)."""
        out = []
        for run in reversed(self.workspace.runs()):
            if completed_only and run["status"] != "completed":
                continue
            accuracy = f", accuracy {run['accuracy']:.0%}" if run["accuracy"] is not None else ""
            out.append((f"{run['id']}  ({run['status']}{accuracy})", run["id"]))
        return out

    def run_dropdown(self, state: dict, completed_only: bool = True) -> tuple[gr.Dropdown, str | None]:
        """The run picker, set to this session's run if listed, else the newest."""
        choices = self.run_choices(completed_only)
        ids = [run_id for _, run_id in choices]
        chosen = state["run_id"] if state["run_id"] in ids else (ids[0] if ids else None)
        return gr.Dropdown(choices=choices, value=chosen), chosen


def upload_limit_mb(value: float | None = None) -> float:
    """The largest upload in MB: the value given, else $STUDIO_MAX_UPLOAD_MB, else DEFAULT_UPLOAD_MB."""
    if value is None:
        value = env_number("STUDIO_MAX_UPLOAD_MB", DEFAULT_UPLOAD_MB)
    return value if value > 0 else DEFAULT_UPLOAD_MB


def build_app(workspace: Workspace, jobs: JobManager | None = None, max_upload_mb: float | None = None) -> gr.Blocks:
    from studio.ui import (data_tab, evaluate_tab, model_tab, playground_tab, runs_tab, strategy_tab,
                           train_tab)
    jobs = jobs or JobManager(workspace, spare=True)
    with gr.Blocks(title="Studio — fine-tune a model on your data") as app:
        gr.Markdown("## Studio &nbsp;<span class='hint'>teach a pretrained model your own labels — "
                    "no code needed</span>")
        session = gr.State(sessions.new_session)
        summary = gr.Markdown(sessions.summary(sessions.new_session()), elem_id="summary")
        with gr.Tabs(selected="model", elem_id="tabs") as tabs:
            ctx = Context(workspace, jobs, session, summary, tabs)
            ctx.shared["max_upload_mb"] = upload_limit_mb(max_upload_mb)
            modules = {"model": model_tab, "data": data_tab, "strategy": strategy_tab, "train": train_tab,
                       "evaluate": evaluate_tab, "playground": playground_tab, "runs": runs_tab}
            for tab_id in TAB_ORDER:
                with gr.Tab(TAB_NAMES[tab_id], id=tab_id, elem_id=f"tab-{tab_id}") as tab:
                    modules[tab_id].build(ctx, tab)
    return app


def launch(host: str = "127.0.0.1", port: int = 7860, workspace: str | Path = "workspace",
           block: bool = True, max_upload_mb: float | None = None,
           auth: list[tuple[str, str]] | None = None) -> gr.Blocks:
    """Serves the studio on host:port (this machine only by default; `studio serve` warns about any other host).
    auth: (user, password) pairs for gradio's login page; never shared through a gradio.live link."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    space = Workspace(Path(workspace))
    space.root.mkdir(parents=True, exist_ok=True)
    confine_caches(space.root)  # gradio keeps uploads in GRADIO_TEMP_DIR: inside the workspace too
    limit = upload_limit_mb(max_upload_mb)
    app = build_app(space, max_upload_mb=limit)
    app.queue(default_concurrency_limit=8)
    # Gradio's queue polls every millisecond when idle (and its progress loop every 10 ms): a fifth of a core and
    # a thousand GIL grabs a second, taken from the trainer thread (feature extraction ran 2-4x slower beside it).
    # Polling every 20 / 50 ms still feels instant.
    app._queue.sleep_when_free = 0.02
    app._queue.progress_update_sleep_when_free = 0.05
    app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, share=False, theme=THEME,
               css=CSS, allowed_paths=[str(space.root), str(ASSETS)], max_file_size=int(limit * 1024**2),
               auth=auth or None, auth_message="Log in with the user name and password you were given for this "
                                               "studio.", show_error=False, quiet=not block)
    return app

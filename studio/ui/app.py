"""The studio app: a header with the current choices, seven tabs in wizard order, and the launcher.

Every handler returns a {component: update} dict (a component it leaves alone is not in it) and is attached with
Context.on, which runs a session's events one at a time on its latest copy (ui/session_order.py). Everything a
tab shows of a task it asks the task (tasks/base.py) or the task's panel (ui/panels), never a task's name."""
from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder as gradio_uploads
from starlette.middleware import Middleware

from studio import audit, tasks
from studio.assets import ROOT as ASSETS
from studio.errors import UserError
from studio.run.jobs import JobManager
from studio.runfolder import RunFolder
from studio.settings import env_number
from studio.tasks.base import Task
from studio.ui import panels
from studio.ui import session as sessions
from studio.ui.i18n import LANGUAGES, PageTexts, pick_language, tr
from studio.ui.session_order import SessionOrder
from studio.ui.viewer import Hearing
from studio.ui import viewer
from studio.workspace import Workspace, confine_caches
from studio.runfolder import write_text
from studio.ui import data_tab, evaluate_tab, model_tab, playground_tab, runs_tab, strategy_tab, train_tab
from studio.ui import login
from studio.api import app as api
from studio.ui.file_wall import FileWall
from studio.run import ownership
from studio.users import Users

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_MB = 2048
TAB_ORDER = ["model", "data", "strategy", "train", "evaluate", "playground", "runs"]
TAB_NAMES = {"model": "Model", "data": "Data", "strategy": "Strategy", "train": "Train", "evaluate": "Evaluate",
             "playground": "Playground", "runs": "Runs"}
RELOAD = "() => { setTimeout(() => window.location.reload(), 300); }"

THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate",
                       font=["Inter", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
                       font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
CSS = """
#summary { padding: 8px 14px; border-radius: 10px; background: var(--block-background-fill);
           border: 1px solid var(--border-color-primary); font-size: 0.95em; }
.progress-outer { background: var(--neutral-200); border-radius: 999px; height: 14px; overflow: hidden; }
.progress-inner { background: var(--color-accent); height: 14px; transition: width 0.4s; }
.hint { color: var(--body-text-color-subdued); font-size: 0.92em; }
.veil { position: fixed; inset: 0; z-index: 1000; background: rgba(248, 250, 252, 0.85); display: flex;
        align-items: center; justify-content: center; }
/* Captions in full: "is triangle, taken for square (93% sure)" must not end in "…" */
#mistakes-gallery .caption-label, #data-gallery .caption-label { white-space: normal; max-width: 100%; }
/* Table headers break between words, never inside one */
table th, table th span { word-break: normal !important; overflow-wrap: normal !important; white-space: normal; }
/* The model picker: each choice is a card to click */
.model-cards .wrap { display: grid !important; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr));
                     gap: 10px; }
.model-cards label { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px;
                     align-items: flex-start; height: 100%; }
.model-cards label.selected { border: 2px solid var(--color-accent); }
"""


@dataclass
class Context:
    """What every tab needs: the job API, the workspace, the session (kept in the browser, so it survives a
    reload), the page's texts, the panels of this app, and the shared wizard components."""
    workspace: Workspace
    jobs: JobManager
    session: gr.BrowserState
    summary: gr.Markdown
    tabs: gr.Tabs
    texts: PageTexts
    panels: dict = field(default_factory=dict)  # view → its Panel, built for this app
    shared: dict = field(default_factory=dict)  # components and functions a later tab uses (e.g. the task radio)
    restores: list = field(default_factory=list)  # (fn, components) run when a page loads
    order: SessionOrder = field(default_factory=SessionOrder)
    data_roots: list = field(default_factory=list)  # folders an admin opened to every user's recipes
    hearing: Hearing | None = None  # runs each handler as its event's user (ui/viewer.py)
    logins: tuple = ()  # the names of the `--auth` pairs: users beside the accounts

    def __post_init__(self):
        self.hearing = self.hearing or Hearing(self.workspace, lambda old, name: sessions.new_session(
            {"lang": old.get("lang")}, user=name), self.logins)

    def on(self, trigger, fn, inputs, outputs, **kwargs):
        """Attaches fn to an event listener (e.g. button.click), as the event's user (on a session of theirs) and
        in its session's turn when it reads the session. Returns the event, for .then() and .success()."""
        inputs = inputs if isinstance(inputs, list) else [inputs] if inputs is not None else []
        position = next((i for i, c in enumerate(inputs) if c is self.session), None)
        fn, position = self.hearing.wrap(fn, position)  # gradio's request joins its arguments
        if position is not None:
            fn = self.order.wrap(fn, position, self.session)
        # The page's own endpoints are not the studio's API (gradio's API page would list them all): callable by
        # the page and gradio_client, listed nowhere.
        return trigger(fn, inputs, outputs, **{"api_visibility": "undocumented", **kwargs})

    def nav(self, back: str | None, forward: str | None) -> None:
        """Back / Next buttons to the neighbouring tabs."""
        with gr.Row():
            if back:
                self.on(gr.Button(f"← Back to {TAB_NAMES[back]}", size="sm").click,
                        lambda: gr.Tabs(selected=back), None, self.tabs)
            if forward:
                self.on(gr.Button(f"Next: {TAB_NAMES[forward]} →", variant="primary", size="sm").click,
                        lambda: gr.Tabs(selected=forward), None, self.tabs)

    def on_load(self, fn, components: list) -> None:
        """fn(session) → {component: update} (of these components), when a page (re)loads: a tab puts the
        session's state back."""
        self.restores.append((fn, components))

    def static(self, block):
        """A Markdown or HTML block whose text never changes: translated when a page loads."""
        return self.texts.static(block)

    def panel_for(self, task_name: str | None):
        """The panel that shows this task's pages: its view's, else the generic one (a task without a view of
        its own, or one this studio does not know)."""
        return self.panels.get(self.task_of({"task": task_name}).view) or self.panels[""]

    def task_of(self, status: dict) -> Task:
        """A run's task (from its status), or a bare Task for one this studio does not know (a plugin's)."""
        try:
            return tasks.get(status.get("task") or "")
        except UserError:
            return Task()

    def all_panels(self) -> list:
        return list(self.panels.values())

    def user(self) -> ownership.Viewer:
        """Who the event being handled is from (outside an event: no one logged in)."""
        return viewer.current() or ownership.viewer(self.workspace, None)

    def owner(self) -> str | None:
        """The name a run started now records as its owner (None in a studio without accounts)."""
        return self.user().owner

    def shows_owners(self) -> bool:
        """Whether runs are shown with their owners: to an admin of a studio with accounts."""
        user = self.user()
        return user.admin and user.accounts

    def uploads_dir(self) -> Path:
        """Where this user's uploads go (the only uploads their recipes may read)."""
        return self.workspace.user_uploads_dir(self.owner())

    def audit(self, what: str, **details) -> None:
        """One line of the audit trail for what this event's user did."""
        audit.record(self.workspace.root, what, self.user().name, viewer.address(), **details)

    def check(self, recipe, disk: bool = True) -> None:
        """RecipeError in words when this user may not start the recipe (what it reads, its model; disk: and
        whether their runs are over their disk limit)."""
        ownership.check_recipe(recipe, self.user(), self.workspace, self.data_roots, disk=disk)

    def check_disk(self) -> None:
        ownership.check_disk(self.workspace, self.user())

    def check_data(self, spec) -> None:
        """RecipeError in words when this user may not read the data (a session is the browser's: it may name
        anything)."""
        ownership.check_data(spec, self.user(), self.workspace, self.data_roots)

    def runs(self) -> list[dict]:
        """The workspace's runs this user may see, oldest first."""
        user = self.user()
        return [run for run in self.workspace.runs() if ownership.visible(run, user)]

    def run_dir(self, run_id: str) -> Path:
        """A run's folder by its id; RunNotFound, in the same words, for a run that does not exist and one this
        user may not see (a crafted id learns nothing)."""
        return ownership.find_run(self.workspace, self.user(), run_id)

    def run(self, run_id: str) -> RunFolder:
        return RunFolder(self.run_dir(run_id))

    def run_status(self, run_id: str) -> dict:
        return self.run(run_id).status()

    def run_choices(self, state: dict, completed_only: bool = True, with_id: bool = False) -> list[tuple[str, str]]:
        """Dropdown choices, newest first: (readable name, run id); with_id: the id too, where details belong."""
        lang = state.get("lang", "en")
        out = []
        owners = self.shows_owners()
        for run in reversed(self.runs()):
            if completed_only and run["status"] != "completed":
                continue
            name = sessions.run_name(run, lang)
            if owners:
                name += f" · {run.get('owner') or tr('no owner', lang)}"
            out.append((f"{name} · {run['id']}" if with_id else name, run["id"]))
        return out

    def run_dropdown(self, state: dict, completed_only: bool = True) -> tuple[dict, str | None]:
        """The run picker's update, set to this session's latest run if listed (never another session's), else
        empty; and that run's id."""
        choices = self.run_choices(state, completed_only)
        ids = [run_id for _, run_id in choices]
        chosen = state["run_id"] if state["run_id"] in ids else None
        return gr.update(choices=choices, value=chosen), chosen

    def exists(self, run_id: str | None) -> bool:
        try:
            return bool(run_id) and self.run_dir(run_id).exists()
        except LookupError:
            return False


def upload_limit_mb(value: float | None = None) -> float:
    """The largest upload in MB: the value given, else $STUDIO_MAX_UPLOAD_MB, else DEFAULT_UPLOAD_MB."""
    if value is None:
        value = env_number("STUDIO_MAX_UPLOAD_MB", DEFAULT_UPLOAD_MB)
    return value if value > 0 else DEFAULT_UPLOAD_MB


def session_secret(workspace: Workspace) -> str:
    """The key that encrypts the session kept in the browser: one per workspace, so a session survives a restart
    of the studio (a new key would make every browser's saved session unreadable)."""
    path = workspace.session_key
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()


def build_app(workspace: Workspace, jobs: JobManager | None = None, max_upload_mb: float | None = None,
              logout: bool = False, data_roots: list | None = None, logins: tuple = ()) -> gr.Blocks:
    """logout: a Log out button (to gradio's /logout), for a studio that asks for a login. data_roots: folders every
    user's recipes may read (`--data-root`). logins: the names of the `--auth` pairs."""
    jobs = jobs or JobManager(workspace, spare=True)
    texts = PageTexts()
    with gr.Blocks(title="Studio — fine-tune a model on your data") as app:
        session = gr.BrowserState(sessions.blank_session(), storage_key="studio-session",
                                  secret=session_secret(workspace))
        with gr.Row(equal_height=True):
            texts.static(gr.Markdown("## Studio &nbsp;<span class='hint'>teach a pretrained model your own labels "
                                     "— no code needed</span>"))
            language = texts.keep_choices(gr.Dropdown([(name, code) for code, name in LANGUAGES.items()], value="en",
                                                      label="Language", elem_id="language", scale=0, min_width=140))
            start_over = gr.Button("Start over", size="sm", scale=0, min_width=120, elem_id="start-over")
            if logout:
                gr.Button("Log out", link="/logout", size="sm", scale=0, min_width=100, elem_id="logout")
        summary = gr.Markdown(elem_id="summary")
        # Until the page has its session back, a veil keeps clicks off it: an answer computed from the session as
        # it was before loading would otherwise overwrite what the click did.
        veil = gr.HTML("<div class='veil'><div class='progress-outer' style='width:30%'><div class='progress-inner' "
                       "style='width:60%'></div></div></div>", elem_id="veil")
        with gr.Tabs(selected="model", elem_id="tabs") as tabs:
            ctx = Context(workspace, jobs, session, summary, tabs, texts, panels=panels.for_app(),
                          data_roots=list(data_roots or []), logins=tuple(logins))
            ctx.shared["max_upload_mb"] = upload_limit_mb(max_upload_mb)
            modules = {"model": model_tab, "data": data_tab, "strategy": strategy_tab, "train": train_tab,
                       "evaluate": evaluate_tab, "playground": playground_tab, "runs": runs_tab}
            for tab_id in TAB_ORDER:
                with gr.Tab(TAB_NAMES[tab_id], id=tab_id, elem_id=f"tab-{tab_id}") as tab:
                    modules[tab_id].build(ctx, tab)
        texts.collect(app.blocks)
        app.studio_texts = texts  # the page's texts, for the language files' check
        _load(app, ctx, language, veil)

        def on_language(lang, state):
            return {session: {**state, "lang": lang}}

        # The page is rebuilt in the new language by reloading it: the session comes back from the browser.
        ctx.on(language.input, on_language, [language, session], [session]).then(None, js=RELOAD)
        ctx.on(start_over.click, lambda state: {session: sessions.new_session(state)}, [session],
               [session]).then(None, js=RELOAD)
    return app


def _load(app: gr.Blocks, ctx: Context, language, veil) -> None:
    """A page (re)loads: its session back from the browser (or a new one), every tab's part of it in one event
    (a chained event could still read the session as it was before this one: the browser stores it
    asynchronously, and a first visit's session has no id before it), then the page's texts in its language."""
    session, texts = ctx.session, ctx.texts

    def on_load(state, request: gr.Request):
        state = sessions.ensure(state, pick_language(request.headers.get("accept-language")))
        status = ctx.run_status(state["run_id"]) if ctx.exists(state.get("run_id")) else {}
        updates = {session: state, ctx.summary: sessions.summary(state), language: gr.update(value=state["lang"])}
        if status.get("status") in ("queued", "running"):  # a session whose run is training: watch it live
            updates[ctx.tabs] = gr.Tabs(selected="train")
        for restore, _ in ctx.restores:
            updates.update(restore(state))
        return updates

    def translate(state, request: gr.Request):
        lang = (state or {}).get("lang") or pick_language(request.headers.get("accept-language"))
        return {**texts.updates(lang), veil: gr.HTML(visible=False)}

    restored = [c for _, components in ctx.restores for c in components]
    loaded = list({id(c): c for c in [session, ctx.summary, ctx.tabs, language, *restored]}.values())
    loading = ctx.on(app.load, on_load, [session], loaded, show_progress="hidden")
    ctx.on(loading.then, translate, [session], [*texts.components, veil], show_progress="hidden")


def launch(host: str = "127.0.0.1", port: int = 7860, workspace: str | Path = "workspace",
           block: bool = True, max_upload_mb: float | None = None,
           auth: list[tuple[str, str]] | None = None, trusted_proxy: str | None = None,
           data_roots: list[str] | None = None) -> gr.Blocks:
    """Serves the studio on host:port (this machine only by default; `studio serve` warns about any other host).
    A login is asked for when the workspace has accounts (`studio users`) or auth gives (user, password) pairs;
    then failed logins are counted and refused after too many, and every login is audited (ui/login.py). Never
    shared through a gradio.live link. trusted_proxy: the address (or comma-separated addresses/networks) of a
    reverse proxy whose X-Forwarded-For names the client; without it no one's is believed. data_roots: folders
    every user's recipes may read (`--data-root`). The JSON API is served beside the page, at /api (studio/api)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ["FORWARDED_ALLOW_IPS"] = trusted_proxy or ""  # uvicorn reads it when the server starts
    space = Workspace(Path(workspace))
    space.root.mkdir(parents=True, exist_ok=True)
    confine_caches(space.root)  # gradio keeps uploads in GRADIO_TEMP_DIR: inside the workspace too
    limit = upload_limit_mb(max_upload_mb)
    accounts = Users(space.root)
    needs_login = bool(auth) or accounts.exist()
    jobs = JobManager(space, spare=True)  # the page's and the API's
    logins = tuple(name for name, _ in auth or [])
    app = build_app(space, jobs=jobs, max_upload_mb=limit, logout=needs_login, data_roots=data_roots, logins=logins)
    app.queue(default_concurrency_limit=8)
    # No gradio footer: its links (API page, run history, settings, "built with Gradio") are not the product's.
    # gradio announces a finished event to screen readers with a text key its own catalogs lack: given here.
    done = {code: {"common.complete": tr("Finished", code)} for code in LANGUAGES}
    app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, share=False, theme=THEME,
               css=CSS, footer_links=[], i18n=gr.I18n(**done, **{"zh-CN": done["zh"]}),
               # The workspace is allowed for what handlers return (gradio serves their copies); its own paths are
               # walled off (ui/file_wall.py).
               allowed_paths=[str(space.root), str(ASSETS)], max_file_size=int(limit * 1024**2),
               blocked_paths=[str(p) for p in (accounts.path, audit.path(space.root), space.session_key)],
               auth=login.checker(accounts, auth) if needs_login else None,
               app_kwargs={"routes": [api.mount(space, jobs, needs_login, login.cookie_user, data_roots or [],
                                                limit, logins)],
                           "middleware": [Middleware(FileWall, root=space.root, served=gradio_uploads()),
                                          *([Middleware(login.GuardedLogin, root=space.root)] if needs_login else [])]},
               # gradio's login page shows nothing when a login is refused for too many failures (429): said here.
               auth_message="Log in with the user name and password you were given for this studio. After more than "
                            "10 failed tries in 5 minutes, logins pause for 5 minutes.",
               show_error=False, quiet=not block)
    return app

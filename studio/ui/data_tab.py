"""Data: try a bundled example, upload a .zip of class folders or a table (CSV/JSONL), or add files class by class.
The data is checked at once by its task and the report is shown in plain words; the task's panel previews it."""
from __future__ import annotations

import functools
import json
import logging
import math
import re
import shutil
from pathlib import Path

import gradio as gr

from studio import tasks
from studio.engine.data import DataError
from studio.engine.data.archive import file_digest
from studio.engine.data.tables import TABLE_SUFFIXES, table_columns
from studio.recipe import DataSpec, RecipeError
from studio.ui import charts
from studio.ui import session as sessions
from studio.tasks.base import guess_column
from studio.ui.data_checks import Checks, report_lines, task_for
from studio.ui.duplicates_view import DuplicatesView
from studio.ui.i18n import tr
from studio.ui.label_check_view import LabelCheckView

log = logging.getLogger(__name__)
NO_COLUMN = "(none)"  # the optional column pickers' choice of no column (its value; shown translated)
ELEM_IDS = {"text_column": "item-column", "path_column": "item-column-path", "label_column": "label-column",
            "group_column": "group-column"}
INFOS = {"group_column": "e.g. region or device: results are also shown per group, so you can see if the model "
                         "serves some groups worse."}


def _store_upload(ctx, source: str) -> Path:
    """Copies an upload into the workspace (gradio's temp files do not last), named by its content."""
    folder = ctx.uploads_dir() / "files" / file_digest(source)[:16]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source).name)
    shutil.copyfile(source, target)
    return target


def all_examples() -> list:
    return [(name, example) for name in tasks.names() for example in tasks.get(name).examples]


def class_folder(ctx, state) -> Path:
    return ctx.uploads_dir() / "classes" / str(state["id"])


class DataTab:
    """The Data tab's components, and its handlers as methods."""

    def __init__(self, ctx):
        self.ctx, self.checks = ctx, Checks()
        self.examples = all_examples()
        self.limit = ctx.shared.get("max_upload_mb")
        ctx.static(gr.Markdown("### 2. Give it labelled examples\n<span class='hint'>Images or sound clips: one "
                               "folder per class (zipped), or add them class by class. Text: a CSV or JSONL table "
                               "with a text column and a label column. Chat: a table of prompts and answers.</span>"))
        with gr.Row():
            self.example_buttons = [gr.Button(f"Try an example: {example.words}", elem_id=f"example-{example.id}")
                                    for _, example in self.examples]
        with gr.Row():
            with gr.Column():
                self.upload = gr.File(label="Upload a .zip of class folders, or a .csv / .jsonl table",
                                      file_types=[".zip", *TABLE_SUFFIXES], elem_id="data-upload")
                self.limit_note = gr.Markdown(elem_id="upload-limit")
            with gr.Column():
                self._class_by_class()
        self._pickers()
        self.split = gr.Slider(0.1, 0.4, value=0.2, step=0.05, label="Share held back to test the model",
                               info="These examples are never trained on; they measure accuracy honestly.",
                               elem_id="split")
        self.duplicates = DuplicatesView()
        self.duplicates.build_option()
        self.status = gr.Markdown(elem_id="data-status")
        self.labels = LabelCheckView()
        self.labels.build()
        with gr.Row():
            self.counts = gr.Plot(charts.empty_figure(""), show_label=False, elem_id="counts-plot")
            with gr.Column():
                for panel in ctx.all_panels():
                    panel.build_preview()
        self.duplicates.build()
        ctx.nav("model", "strategy")
        self.task_view, self.show_task = ctx.shared["task_view"], ctx.shared["show_task"]
        self.preview = [self.status, self.counts, *(c for p in ctx.all_panels() for c in p.preview),
                        *self.duplicates.components, *self.labels.components, ctx.session,
                        ctx.summary]
        self.columns_out = [self.columns_row, *self.pickers.values()]
        self._wire()

    def _class_by_class(self) -> None:
        with gr.Accordion("Or add files class by class (images or sound clips)", open=False):
            self.class_name = gr.Textbox(label="Class name", placeholder="e.g. cats", elem_id="class-name")
            kinds = [t.file_kind for t in map(tasks.get, tasks.names()) if t.file_kind]
            self.class_files = gr.File(label="Files of this class", file_count="multiple",
                                       file_types=sorted({e for kind in kinds for e in kind.extensions}),
                                       elem_id="class-images")
            self.add_class = gr.Button("Add these files to the class", size="sm", elem_id="add-class")
            with gr.Row():
                self.remove_name = gr.Dropdown(label="Classes added so far", choices=[], elem_id="class-list")
                self.remove_class = gr.Button("Remove this class", size="sm", elem_id="remove-class")

    def _pickers(self) -> None:
        """One picker per column any task reads (shown for the session's task when its data is a table)."""
        choices = {c.key: c for name in tasks.names() for c in tasks.get(name).table_columns}
        with gr.Row(visible=False) as self.columns_row:
            self.pickers = {key: gr.Dropdown(label=choice.words, choices=[], interactive=True, visible=False,
                                             elem_id=ELEM_IDS.get(key, f"column-{key.replace('_', '-')}"),
                                             info=INFOS.get(key))
                            for key, choice in choices.items()}

    def _wire(self) -> None:
        ctx, session = self.ctx, self.ctx.session
        everything = [*self.task_view, *self.columns_out, *self.preview]
        for index, button in enumerate(self.example_buttons):
            ctx.on(button.click, functools.partial(self.on_example, index), [session], everything)
        ctx.on(self.upload.upload, self.on_upload, [self.upload, session], everything)
        ctx.on(self.upload.clear, self.cleared, [session], [*self.columns_out, *self.preview])
        ctx.on(self.add_class.click, self.on_add_class, [self.class_name, self.class_files, session],
               [self.class_name, self.class_files, *self.task_view, self.remove_name, *self.preview])
        ctx.on(self.remove_class.click, self.on_remove_class, [self.remove_name, session],
               [self.remove_name, *self.columns_out, *self.preview])
        for picker in self.pickers.values():
            ctx.on(picker.input, self.on_columns, [session, *self.pickers.values()], self.preview)
        ctx.on(self.split.release, self.on_split, [self.split, session], self.preview)
        ctx.on(self.duplicates.drop.input, self.on_drop, [self.duplicates.drop, session], self.preview)
        self.labels.wire(ctx)
        restored = [*self.columns_out, self.split, self.remove_name, self.limit_note, *self.preview]
        ctx.on_load(self.restore, restored)
        # A task switched on the Model tab leaves no data of the previous task on this tab.
        ctx.on(self.task_view[0].input, self.restore, [session], restored)

    def hide_previews(self) -> dict:
        return {c: u for panel in self.ctx.all_panels() for c, u in panel.hide_preview().items()}

    def nothing(self, state, message: str | None = None) -> dict:
        """The preview of no data (or of refused data: `message` says why)."""
        lang = state["lang"]
        text = (f"**{tr('The data cannot be used yet.', lang)}** {message}" if message
                else tr("No data yet: try an example or upload your own.", lang))
        return {self.status: text, self.counts: charts.empty_figure(tr("No data to show", lang)),
                **self.hide_previews(), **self.duplicates.hide(), **self.labels.hide(),
                self.ctx.session: state, self.ctx.summary: sessions.summary(state)}

    def check(self, state: dict, reuse: bool = False, progress=None) -> dict:
        """Loads the session's data through its task; returns the preview's updates. reuse: a page reloading takes
        the last check of the same data in this app (checking decodes every file: slow for large data). progress:
        the handler's gr.Progress, told what takes a while."""
        say = (lambda words: progress(None, desc=words)) if progress is not None else None
        if say:
            say(tr("Reading the data…", state["lang"]))
        lang, draft = state["lang"], state["recipe"]
        if not draft["data"].get("path"):
            return self.nothing(state)
        task = tasks.get(draft["task"])
        key = json.dumps([draft["task"], draft["data"]], sort_keys=True)
        try:
            spec = DataSpec(**draft["data"])
            self.ctx.check_data(spec)  # before anything is read
            data = self.checks.get(key) if reuse else None
            data = data or task.load_data(spec, seed=0, uploads_dir=self.ctx.workspace.uploads_dir)
            self.checks.put(key, data)
        except Exception as exc:  # DataError says what to fix; anything else must not take the page down either
            if isinstance(exc, (DataError, RecipeError)):
                message = str(exc).replace(str(class_folder(self.ctx, state)), tr("your files", lang))
            else:
                log.exception("checking the data failed")
                message = tr("The studio could not read it ({kind}). Check that it is {hint}, and try again.", lang,
                             kind=type(exc).__name__, hint=task.data_hint)
            state.update(data_kind=None, data_note=tr("needs attention", lang), train_counts={}, data_error=message)
            return self.nothing(state, message)
        path = Path(draft["data"]["path"])
        name = tr("your files", lang) if path.parent == class_folder(self.ctx, state).parent else path.name
        note, text = report_lines(task, data, name, lang)
        state.update(data_kind=draft["task"], train_counts=data.report.train_counts, data_note=note, data_error=None)
        figure = (charts.counts_figure(data.report.to_dict(), lang) if task.classes and len(data.classes) > 1
                  else charts.empty_figure(""))
        return {self.status: text, self.counts: figure, **self.hide_previews(),
                **self.ctx.panel_for(draft["task"]).show_preview(data, draft, self.ctx.workspace, lang, say),
                **self.duplicates.show(data, draft, self.ctx.workspace, lang),
                **self.labels.show(data, draft, self.ctx.workspace, lang),
                self.ctx.session: state, self.ctx.summary: sessions.summary(state)}

    def use_path(self, state, task_name, path, columns: dict | None = None):
        sessions.set_task(state, task_name)
        state["recipe"]["data"] = {"path": str(path), **(columns or {}),
                                   "validation_split": state["recipe"]["data"].get("validation_split", 0.2)}

    def table_columns_of(self, state) -> list[str]:
        draft = state["recipe"]
        path = draft["data"].get("path", "")
        if Path(path).suffix.lower() not in TABLE_SUFFIXES or not tasks.get(draft["task"]).table_columns:
            return []
        try:
            self.ctx.check_data(DataSpec(path=path))  # the session is the browser's: it may name any file
            return table_columns(path)
        except (DataError, RecipeError):
            return []  # unreadable, or not this user's to read: the check says why

    def show_pickers(self, state) -> dict:
        """The column pickers for the session's data: its task's, shown for a table, with the columns it has."""
        draft = state["recipe"]
        own = {c.key: c for c in tasks.get(draft["task"]).table_columns}
        columns = self.table_columns_of(state)
        out = {self.columns_row: gr.update(visible=bool(columns))}
        for key, picker in self.pickers.items():
            if key not in own or not columns:
                out[picker] = gr.update(visible=False, choices=[], value=None)
                continue
            optional = [(tr(NO_COLUMN, state["lang"]), NO_COLUMN)] if not own[key].required else []
            out[picker] = gr.update(visible=True, choices=[*optional, *[(c, c) for c in columns]],
                                    value=draft["data"].get(key) or (NO_COLUMN if optional else None),
                                    label=tr(own[key].words, state["lang"]))
        return out

    def use_file(self, state, task_name, path, progress=None) -> dict:
        """Points the recipe at a file or folder; a table's columns are guessed only from their names. Returns
        the column pickers' and the check's updates."""
        task = tasks.get(task_name)
        self.use_path(state, task_name, path)
        columns = self.table_columns_of(state)
        chosen = {c.key: guess_column(columns, c.guesses) for c in task.table_columns} if columns else {}
        state["recipe"]["data"].update({k: v for k, v in chosen.items() if v})
        missing = [tr(c.words, state["lang"]) for c in task.table_columns if c.required and not chosen.get(c.key)]
        if columns and missing:  # say which column is missing, with the columns found: no wild guess
            lang = state["lang"]
            message = tr("No column of this table looks like one of these: {missing}. Its columns are: {columns}. "
                         "Choose them below.", lang, missing=tr(" and ", lang).join(missing),
                         columns=", ".join(columns))
            state.update(data_kind=None, data_error=message, data_note=tr("needs attention", lang))
            return {**self.show_pickers(state), **self.nothing(state, message)}
        return {**self.show_pickers(state), **self.check(state, progress=progress)}

    def on_example(self, index, state, progress=gr.Progress()):
        task_name, example = self.examples[index]
        checked = self.use_file(state, task_name, example.path, progress)
        return {**self.show_task(state), **checked}

    def on_upload(self, file, state, progress=gr.Progress()):
        if not file:
            return gr.skip()
        if self.too_large([file], state["lang"]):
            return gr.skip()
        try:
            stored = _store_upload(self.ctx, file)
        except OSError as exc:
            log.exception("storing an upload failed")
            gr.Warning(tr("The upload could not be stored in the workspace ({why}).", state["lang"],
                          why=exc.strerror or type(exc).__name__))
            return gr.skip()
        checked = self.use_file(state, task_for(stored, state["recipe"]["task"]), stored, progress)
        return {**self.show_task(state), **checked}

    def cleared(self, state) -> dict:
        """Removing the file removes what it produced: no data, no pickers, no preview, no old error."""
        state["recipe"]["data"] = {"path": "", "validation_split": state["recipe"]["data"].get("validation_split",
                                                                                              0.2)}
        state.update(data_kind=None, data_note="", data_error=None, train_counts={})
        return {self.columns_row: gr.update(visible=False),
                **{p: gr.update(choices=[], value=None, visible=False) for p in self.pickers.values()},
                **self.nothing(state)}

    def class_names(self, state) -> list[str]:
        folder = class_folder(self.ctx, state)
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def on_add_class(self, name, files, state):
        lang = state["lang"]
        name = (name or "").strip()
        if not re.fullmatch(r"[\w][\w .-]{0,63}", name):
            gr.Warning(tr("Give the class a short name: letters, digits, spaces, '-', '_' or '.'.", lang))
            return gr.skip()
        if not files:
            gr.Warning(tr("Choose some files of this class first.", lang))
            return gr.skip()
        if self.too_large(files, lang):
            return gr.skip()
        # The task whose files these are: the session's if it reads them, else the first that does.
        suffix = Path(files[0]).suffix.lower()
        readers = [n for n in tasks.names() if tasks.get(n).file_kind and suffix in tasks.get(n).file_kind.extensions]
        current = state["recipe"]["task"]
        task_name = current if current in readers else (readers or [n for n in tasks.names()
                                                                    if tasks.get(n).file_kind])[0]
        kind = tasks.get(task_name).file_kind
        folder = class_folder(self.ctx, state)
        refused, added = [], 0
        for file in files:  # each file checked as the data report would, before it joins the class
            path = Path(file)
            if path.suffix.lower() not in kind.extensions or kind.inspect(path)[0]:
                refused.append(f"{path.name} ({tr(kind.unreadable, lang)})")
                continue
            (folder / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(file, folder / name / re.sub(r"[^A-Za-z0-9_.-]+", "_", path.name))
            added += 1
        if refused:
            gr.Warning(tr("Not added: {files}.", lang, files="; ".join(refused)))
        if added:
            gr.Info(tr("Added {n} file(s) to '{name}'.", lang, n=added, name=name))
        done = {self.class_name: "", self.class_files: None}
        if not self.class_names(state):
            return {**done, **self.show_task(state), self.remove_name: gr.update(choices=[], value=None),
                    **self.nothing(state)}
        self.use_path(state, task_name, folder)
        return {**done, **self.show_task(state),
                self.remove_name: gr.update(choices=self.class_names(state), value=None),
                **self.check(state)}

    def on_remove_class(self, name, state):
        folder = class_folder(self.ctx, state)
        if name and (folder / name).is_dir():
            shutil.rmtree(folder / name)
            gr.Info(tr("Removed the class '{name}'.", state["lang"], name=name))
        names = self.class_names(state)
        if not names:
            return {self.remove_name: gr.update(choices=[], value=None), **self.cleared(state)}
        self.use_path(state, state["recipe"]["task"], folder)
        return {self.remove_name: gr.update(choices=names, value=None), **self.check(state)}

    def on_columns(self, state, *values):
        own = {c.key for c in tasks.get(state["recipe"]["task"]).table_columns}
        state["recipe"]["data"].update({key: None if value in (None, NO_COLUMN) else value
                                        for key, value in zip(self.pickers, values) if key in own})
        return self.check(state)

    def on_drop(self, value, state):
        state["recipe"]["data"]["drop_duplicates"] = value
        return self.check(state)

    def on_split(self, value, state):
        state["recipe"]["data"]["validation_split"] = float(value)
        return self.check(state)

    def too_large(self, files: list, lang: str) -> bool:
        """Whether an upload passes this user's limit (`studio users limit NAME --max-upload-mb`): said, if so."""
        limit = self.ctx.user().limits.max_upload_mb if self.ctx.user().accounts else None
        size = sum(Path(f).stat().st_size for f in files) / 2**20
        if limit is None or size <= limit:
            return False
        gr.Warning(tr("This upload is {size} MB; your uploads may be up to {limit} MB each (a limit an admin sets).",
                      lang, size=f"{size:,.1f}", limit=f"{limit:g}"))
        return True

    def restore(self, state) -> dict:
        """A reloaded page (or a task switched on the Model tab): the session's data checked again, with its
        pickers and class list."""
        split_value = state["recipe"]["data"].get("validation_split", 0.2)
        user = self.ctx.user()
        limit = min(self.limit or math.inf, user.limits.max_upload_mb) if user.accounts else self.limit
        words = tr("Up to {mb} MB.", state["lang"], mb=f"{limit:g}") if limit else ""
        note = f"<span class='hint'>{words}</span>" if words else ""
        return {**self.show_pickers(state), self.split: gr.update(value=split_value),
                self.remove_name: gr.update(choices=self.class_names(state)), self.limit_note: note,
                **self.check(state, reuse=True)}


def build(ctx, tab) -> None:
    DataTab(ctx)

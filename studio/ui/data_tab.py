"""Data: try a bundled example, upload a .zip of class folders or a table (CSV/JSONL), or add files class by class.
The data is checked at once by its task, and the report is shown in plain words; the task's panel previews it."""
from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import gradio as gr

from studio import tasks
from studio.engine.data import DataError
from studio.engine.data.archive import file_digest
from studio.engine.data.tables import table_columns
from studio.recipe import DataSpec
from studio.ui import charts, panels
from studio.ui import session as sessions

log = logging.getLogger(__name__)
TABLE_SUFFIXES = (".csv", ".jsonl")
NO_GROUP = "(none)"


def _store_upload(ctx, source: str) -> Path:
    """Copies an upload into the workspace (gradio's temp files do not last), named by its content."""
    folder = ctx.workspace.uploads_dir / "files" / file_digest(source)[:16]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source).name)
    shutil.copyfile(source, target)
    return target


def _guess(columns: list[str], names: tuple[str, ...], fallback: str) -> str:
    lower = {c.lower(): c for c in columns}
    return next((lower[k] for k in names if k in lower), fallback)


def task_for(path: Path, current: str) -> str:
    """The session's task if it can read this data, else the first task that can."""
    if tasks.get(current).accepts(path):
        return current
    return next((name for name in tasks.names() if tasks.get(name).accepts(path)), current)


def all_examples() -> list:
    return [(name, example) for name in tasks.names() for example in tasks.get(name).examples]


def build(ctx, tab) -> None:
    gr.Markdown("### 2. Give it labelled examples\n<span class='hint'>Images: one folder per class (zipped), or "
                "add images class by class. Text: a CSV or JSONL with a text column and a label column.</span>")
    examples = all_examples()
    with gr.Row():
        example_buttons = [gr.Button(f"Try an example: {example.words}", elem_id=f"example-{example.id}")
                           for _, example in examples]
    with gr.Row():
        with gr.Column():
            limit = ctx.shared.get("max_upload_mb")
            upload = gr.File(label="Upload a .zip of class folders, or a .csv / .jsonl file"
                                   + (f" (up to {limit:g} MB)" if limit else ""),
                             file_types=[".zip", *TABLE_SUFFIXES], elem_id="data-upload")
        with gr.Column():
            with gr.Accordion("Or add images class by class", open=False):
                class_name = gr.Textbox(label="Class name", placeholder="e.g. cats", elem_id="class-name")
                kinds = [t.file_kind for t in map(tasks.get, tasks.names()) if t.file_kind]
                class_files = gr.File(label="Files of this class", file_count="multiple",
                                      file_types=sorted({e for kind in kinds for e in kind.extensions}),
                                      elem_id="class-images")
                add_class = gr.Button("Add these files to the class", size="sm", elem_id="add-class")
    with gr.Row(visible=False) as columns_row:
        item_column = gr.Dropdown(label="Column with the examples", choices=[], interactive=True,
                                  elem_id="item-column")
        label_column = gr.Dropdown(label="Column with the label", choices=[], interactive=True,
                                   elem_id="label-column")
        group_column = gr.Dropdown(label="Group column (optional)", choices=[], interactive=True,
                                   elem_id="group-column",
                                   info="e.g. region or device: results are also shown per group, so you can see "
                                        "if the model serves some groups worse.")
    split = gr.Slider(0.1, 0.4, value=0.2, step=0.05, label="Share held back for validation",
                      info="These examples are never trained on; they measure accuracy honestly.")
    status = gr.Markdown("No data yet.", elem_id="data-status")
    with gr.Row():
        counts = gr.Plot(charts.empty_figure("No data to show"), label="Examples per class", elem_id="counts-plot")
        with gr.Column():
            all_panels = panels.all_panels()
            for panel in all_panels:
                panel.build_preview()
    ctx.nav("model", "strategy")

    previews = [c for panel in all_panels for c in panel.preview]
    preview = [status, counts, *previews, ctx.session, ctx.summary]
    task_radio = ctx.shared["task"]

    def check(state: dict):
        """Loads the session's data through its task; returns the preview outputs."""
        draft = state["recipe"]
        hidden = [gr.update(visible=False) for _ in previews]
        task = tasks.get(draft["task"])
        try:
            data = task.load_data(DataSpec(**draft["data"]), seed=0, uploads_dir=ctx.workspace.uploads_dir)
        except Exception as exc:  # DataError says what to fix; anything else must not take the page down either
            if isinstance(exc, DataError):
                message = str(exc)
            else:
                log.exception("checking the data failed")
                message = (f"The studio could not read it ({type(exc).__name__}). Check that it is "
                           f"{task.data_hint}, and try again.")
            state.update(data_kind=None, data_note="needs attention", train_counts={})
            return (f"**The data cannot be used yet.** {message}", charts.empty_figure("No data to show"), *hidden,
                    state, sessions.summary(state))
        report = data.report
        total = len(data.train_items) + len(data.val_items)
        path = Path(draft["data"]["path"])
        name = "your files" if path.parent == ctx.workspace.uploads_dir / "classes" else path.name
        state.update(data_kind=draft["task"], train_counts=report.train_counts,
                     data_note=f"{name}: {total} examples, {len(data.classes)} classes")
        lines = [f"**Ready:** {total} examples in {len(data.classes)} classes ({len(data.train_items)} for training, "
                 f"{len(data.val_items)} held back to measure accuracy)."]
        lines += [f"- **Note:** {w}" for w in report.warnings]
        if report.skipped:
            shown = report.skipped[:8]
            lines.append("\nSkipped: " + "; ".join(f"`{s['item']}` ({s['reason']})" for s in shown)
                         + (f"; and {len(report.skipped) - len(shown)} more" if len(report.skipped) > len(shown)
                            else ""))
        own = panels.get(draft["task"])
        updates = [update for panel in all_panels
                   for update in (panel.show_preview(data) if panel is own else [gr.update(visible=False)] * len(
                       panel.preview))]
        return "\n".join(lines), charts.counts_figure(report.to_dict()), *updates, state, sessions.summary(state)

    def use_path(state, task_name, path, columns: dict | None = None):
        sessions.set_task(state, task_name)
        state["recipe"]["data"] = {"path": str(path), **(columns or {}),
                                   "validation_split": state["recipe"]["data"].get("validation_split", 0.2)}

    def use_file(state, task_name, path):
        """Points the recipe at a file or folder (guessing a table's columns); returns the column pickers."""
        task = tasks.get(task_name)
        columns = []
        if Path(path).suffix.lower() in TABLE_SUFFIXES and task.table_item_key:
            try:
                columns = table_columns(path)
            except DataError:
                pass  # unreadable: the check that follows says why
        chosen = {}
        if columns:
            chosen = {task.table_item_key: _guess(columns, task.item_column_guesses, columns[0]),
                      "label_column": _guess(columns, ("label", "labels", "class", "category", "intent", "target"),
                                             columns[-1])}
        use_path(state, task_name, path, chosen)
        item = chosen.get(task.table_item_key)
        return (gr.Row(visible=bool(columns)),
                gr.Dropdown(choices=columns, value=item, label=task.item_column_words),
                gr.Dropdown(choices=columns, value=chosen.get("label_column")),
                gr.Dropdown(choices=[NO_GROUP, *columns], value=NO_GROUP))

    def on_example(index, state):
        task_name, example = examples[index]
        return task_name, *use_file(state, task_name, example.path), *check(state)

    def on_upload(file, state):
        skip = (gr.skip(),) * (5 + len(preview))
        if not file:
            return skip
        try:
            stored = _store_upload(ctx, file)
        except OSError as exc:
            log.exception("storing an upload failed")
            gr.Warning(f"The upload could not be stored in the workspace ({exc.strerror or type(exc).__name__}).")
            return skip
        task_name = task_for(stored, state["recipe"]["task"])
        return task_name, *use_file(state, task_name, stored), *check(state)

    def on_add_class(name, files, state):
        skip = (gr.skip(),) * (3 + len(preview))
        name = (name or "").strip()
        if not re.fullmatch(r"[\w][\w .-]{0,63}", name):
            gr.Warning("Give the class a short name: letters, digits, spaces, '-', '_' or '.'.")
            return skip
        if not files:
            gr.Warning("Choose some files of this class first.")
            return skip
        task_name = state["recipe"]["task"]
        if not tasks.get(task_name).file_kind:
            task_name = next(n for n in tasks.names() if tasks.get(n).file_kind)
        folder = ctx.workspace.uploads_dir / "classes" / state["id"]
        (folder / name).mkdir(parents=True, exist_ok=True)
        try:
            for file in files:
                shutil.copy(file, folder / name / re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(file).name))
        except OSError as exc:
            log.exception("storing class files failed")
            gr.Warning(f"The files could not be stored in the workspace ({exc.strerror or type(exc).__name__}).")
            return skip
        use_path(state, task_name, folder)
        gr.Info(f"Added {len(files)} {tasks.get(task_name).file_kind.noun}(s) to '{name}'.")
        return "", None, task_name, *check(state)  # empty pickers, ready for the next class

    def on_columns(item_col, label_col, group_col, state):
        key = tasks.get(state["recipe"]["task"]).table_item_key
        state["recipe"]["data"].update({key: item_col, "label_column": label_col,
                                        "group_column": None if group_col in (None, NO_GROUP) else group_col})
        return check(state)

    def on_split(value, state):
        state["recipe"]["data"]["validation_split"] = float(value)
        return check(state) if state["recipe"]["data"].get("path") else (gr.skip(),) * len(preview)

    columns_out = [columns_row, item_column, label_column, group_column]
    for index, button in enumerate(example_buttons):
        button.click(lambda s, i=index: on_example(i, s), ctx.session, [task_radio, *columns_out, *preview])
    upload.upload(on_upload, [upload, ctx.session], [task_radio, *columns_out, *preview])
    add_class.click(on_add_class, [class_name, class_files, ctx.session],
                    [class_name, class_files, task_radio, *preview])
    for picker in (item_column, label_column, group_column):
        picker.input(on_columns, [item_column, label_column, group_column, ctx.session], preview)
    split.release(on_split, [split, ctx.session], preview)

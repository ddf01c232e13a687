"""Data: upload a .zip of class folders, images class by class, or a CSV/JSONL; or try an example. The data is
checked at once by the engine, and the report is shown in plain words."""
from __future__ import annotations

import logging
import re
import shutil
import uuid
from pathlib import Path

import gradio as gr
import pandas as pd

from studio import catalog
from studio.engine.data import IMAGE_EXTENSIONS, DataError, file_digest, load_dataset, table_columns
from studio.examples import ASSETS, HELPDESK_CSV
from studio.recipe import DataSpec
from studio.ui import charts
from studio.ui import session as sessions

log = logging.getLogger(__name__)
SAMPLE_CHARS = 300  # a sample row shows this much of its text
EXAMPLES = {"shapes": (catalog.IMAGE, ASSETS / "examples" / "shapes"), "helpdesk": (catalog.TEXT, HELPDESK_CSV)}
THUMBS_PER_CLASS = 4


NO_GROUP = "(none)"


def _store_upload(ctx, source: str) -> Path:
    """Copies an upload into the workspace (gradio's temp files do not last), named by its content."""
    folder = ctx.workspace.uploads_dir / "files" / file_digest(source)[:16]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source).name)
    shutil.copyfile(source, target)
    return target


def _guess_columns(columns: list[str]) -> tuple[str, str]:
    lower = {c.lower(): c for c in columns}
    text = next((lower[k] for k in ("text", "message", "sentence", "review", "body", "content") if k in lower),
                columns[0])
    label = next((lower[k] for k in ("label", "labels", "class", "category", "intent", "target") if k in lower),
                 columns[-1])
    return text, label


def _check(ctx, state: dict):
    """Loads the session's data through the engine; returns the preview outputs."""
    draft = state["recipe"]
    kind = "image" if draft["task"] == catalog.IMAGE else "text"
    hide = (gr.Gallery(visible=False), gr.Dataframe(visible=False))
    try:
        data = load_dataset(DataSpec(**draft["data"]), draft["task"], seed=0, uploads_dir=ctx.workspace.uploads_dir)
    except Exception as exc:  # DataError says what to fix; anything else must not take the page down either
        if isinstance(exc, DataError):
            message = str(exc)
        else:
            log.exception("checking the data failed")
            message = (f"The studio could not read it ({type(exc).__name__}). Check that the file is a .zip of "
                       "class folders, a .csv or a .jsonl, and try again.")
        state.update(data_kind=None, data_note="needs attention", train_counts={})
        return (f"**The data cannot be used yet.** {message}", charts.empty_figure("No data to show"), *hide, state,
                sessions.summary(state))
    report = data.report
    total = len(data.train_items) + len(data.val_items)
    path = Path(draft["data"]["path"])
    name = "your images" if path.parent == ctx.workspace.uploads_dir / "classes" else path.name
    state.update(data_kind=draft["task"], train_counts=report.train_counts,
                 data_note=f"{name}: {total} examples, {len(data.classes)} classes")
    lines = [f"**Ready:** {total} examples in {len(data.classes)} classes ({len(data.train_items)} for training, "
             f"{len(data.val_items)} held back to measure accuracy)."]
    lines += [f"- **Note:** {w}" for w in report.warnings]
    if report.skipped:
        shown = report.skipped[:8]
        lines.append("\nSkipped: " + "; ".join(f"`{s['item']}` ({s['reason']})" for s in shown)
                     + (f"; and {len(report.skipped) - len(shown)} more" if len(report.skipped) > len(shown) else ""))
    examples = [(item, data.classes[label]) for item, label in zip(data.train_items, data.train_labels)]
    if kind == "image":
        thumbs = []
        for index, name in enumerate(data.classes):
            thumbs += [(item, name) for item, label in zip(data.train_items, data.train_labels)
                       if label == index][:THUMBS_PER_CLASS]
        previews = (gr.Gallery(value=thumbs, visible=True), gr.Dataframe(visible=False))
    else:
        rows = pd.DataFrame(examples, columns=["text", "label"]).groupby("label").head(2)
        rows["text"] = [t if len(t) <= SAMPLE_CHARS else t[:SAMPLE_CHARS] + "…" for t in rows["text"]]
        previews = (gr.Gallery(visible=False), gr.Dataframe(value=rows, visible=True))
    return "\n".join(lines), charts.counts_figure(report.to_dict()), *previews, state, sessions.summary(state)


def build(ctx, tab) -> None:
    gr.Markdown("### 2. Give it labelled examples\n<span class='hint'>Images: one folder per class (zipped), or "
                "add images class by class. Text: a CSV or JSONL with a text column and a label column.</span>")
    with gr.Row():
        shapes_btn = gr.Button("Try an example: shapes (images)", elem_id="example-shapes")
        helpdesk_btn = gr.Button("Try an example: help-desk messages (text)", elem_id="example-helpdesk")
    with gr.Row():
        with gr.Column():
            limit = ctx.shared.get("max_upload_mb")
            upload = gr.File(label="Upload a .zip of class folders, or a .csv / .jsonl file"
                                   + (f" (up to {limit:g} MB)" if limit else ""),
                             file_types=[".zip", ".csv", ".jsonl"], elem_id="data-upload")
        with gr.Column():
            with gr.Accordion("Or add images class by class", open=False):
                class_name = gr.Textbox(label="Class name", placeholder="e.g. cats", elem_id="class-name")
                class_images = gr.File(label="Images of this class", file_count="multiple",
                                       file_types=sorted(IMAGE_EXTENSIONS), elem_id="class-images")
                add_class = gr.Button("Add these images to the class", size="sm", elem_id="add-class")
    with gr.Row(visible=False) as columns_row:
        text_column = gr.Dropdown(label="Column with the text", choices=[], interactive=True)
        label_column = gr.Dropdown(label="Column with the label", choices=[], interactive=True)
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
            gallery = gr.Gallery(label="A few examples of each class", columns=4, height=320, visible=False,
                                 elem_id="data-gallery")
            samples = gr.Dataframe(label="Sample rows", visible=False, wrap=True)
    ctx.nav("model", "strategy")

    preview = [status, counts, gallery, samples, ctx.session, ctx.summary]
    task_radio = ctx.shared["task"]

    def use_path(state, task, path, text_col="text", label_col="label"):
        sessions.set_task(state, task)
        state["recipe"]["data"] = {"path": str(path), "text_column": text_col, "label_column": label_col,
                                   "validation_split": state["recipe"]["data"].get("validation_split", 0.2)}

    def use_file(state, task, path):
        """Points the recipe at a file or folder (guessing a table's columns); returns the column pickers."""
        columns = []
        if task == catalog.TEXT:
            try:
                columns = table_columns(path)
            except DataError:
                pass  # unreadable: the check that follows says why
        text_col, label_col = _guess_columns(columns) if columns else ("text", "label")
        use_path(state, task, path, text_col, label_col)
        return (gr.Row(visible=bool(columns)), gr.Dropdown(choices=columns, value=text_col if columns else None),
                gr.Dropdown(choices=columns, value=label_col if columns else None),
                gr.Dropdown(choices=[NO_GROUP, *columns], value=NO_GROUP))

    def on_example(name, state):
        task, path = EXAMPLES[name]
        return task, *use_file(state, task, path), *_check(ctx, state)

    def on_upload(file, state):
        if not file:
            return (gr.skip(),) * 11
        try:
            stored = _store_upload(ctx, file)
        except OSError as exc:
            log.exception("storing an upload failed")
            gr.Warning(f"The upload could not be stored in the workspace ({exc.strerror or type(exc).__name__}).")
            return (gr.skip(),) * 11
        task = catalog.TEXT if stored.suffix.lower() in (".csv", ".jsonl") else catalog.IMAGE
        return task, *use_file(state, task, stored), *_check(ctx, state)

    def on_add_class(name, files, state):
        name = (name or "").strip()
        if not re.fullmatch(r"[\w][\w .-]{0,63}", name):
            gr.Warning("Give the class a short name: letters, digits, spaces, '-', '_' or '.'.")
            return (gr.skip(),) * 9
        if not files:
            gr.Warning("Choose some images of this class first.")
            return (gr.skip(),) * 9
        state.setdefault("id", uuid.uuid4().hex[:12])
        folder = ctx.workspace.uploads_dir / "classes" / state["id"]
        (folder / name).mkdir(parents=True, exist_ok=True)
        try:
            for file in files:
                shutil.copy(file, folder / name / re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(file).name))
        except OSError as exc:
            log.exception("storing class images failed")
            gr.Warning(f"The images could not be stored in the workspace ({exc.strerror or type(exc).__name__}).")
            return (gr.skip(),) * 9
        use_path(state, catalog.IMAGE, folder)
        gr.Info(f"Added {len(files)} image(s) to '{name}'.")
        return "", None, catalog.IMAGE, *_check(ctx, state)  # empty pickers, ready for the next class

    def on_columns(text_col, label_col, group_col, state):
        state["recipe"]["data"].update(text_column=text_col, label_column=label_col,
                                       group_column=None if group_col in (None, NO_GROUP) else group_col)
        return _check(ctx, state)

    def on_split(value, state):
        state["recipe"]["data"]["validation_split"] = float(value)
        return _check(ctx, state) if state["recipe"]["data"].get("path") else (gr.skip(),) * 6

    columns_out = [columns_row, text_column, label_column, group_column]
    shapes_btn.click(lambda s: on_example("shapes", s), ctx.session, [task_radio, *columns_out, *preview])
    helpdesk_btn.click(lambda s: on_example("helpdesk", s), ctx.session, [task_radio, *columns_out, *preview])
    upload.upload(on_upload, [upload, ctx.session], [task_radio, *columns_out, *preview])
    add_class.click(on_add_class, [class_name, class_images, ctx.session],
                    [class_name, class_images, task_radio, *preview])
    for picker in (text_column, label_column, group_column):
        picker.input(on_columns, [text_column, label_column, group_column, ctx.session], preview)
    split.release(on_split, [split, ctx.session], preview)

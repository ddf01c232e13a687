"""The Data tab's duplicates: how many copies the data holds (exact ones as it loads; near ones once a run has
cached this model's features for this data: the page never runs a model), a warning when validation examples copy
training ones, the pairs side by side (thumbnails, the two texts, playable clips), and data.drop_duplicates."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.tasks.classification import duplicates
from studio.ui.i18n import tr, tr_said
from studio.ui.panels.image import thumbnail

PAIRS_SHOWN = 12
CLIP_PAIRS = 3
TEXT_CHARS = 300
DROP_CHOICES = [("Only report them", "none"), ("Leave out validation copies of training examples", "validation"),
                ("Keep one example of each group of copies", "all")]


class DuplicatesView:
    """Built once on the Data tab; shows the duplicates of any classification data (hidden for other tasks)."""

    def build_option(self) -> None:
        self.drop = gr.Radio(DROP_CHOICES, value="none", label="Duplicate examples", elem_id="drop-duplicates",
                             visible=False, info="A validation example with a copy in training makes the accuracy "
                                                 "look better than it is on new data.")

    def build(self) -> None:
        self.note = gr.Markdown(visible=False, elem_id="duplicates-note")
        self.gallery = gr.Gallery(label="Duplicate pairs, side by side", columns=2, height="auto", visible=False,
                                  elem_id="duplicates-gallery")
        self.table = gr.Dataframe(label="Duplicate pairs", interactive=False, wrap=True, visible=False,
                                  elem_id="duplicates-table")
        self.clips = []
        for n in range(CLIP_PAIRS):
            with gr.Row():
                self.clips += [gr.Audio(type="filepath", interactive=False, visible=False,
                                        elem_id=f"duplicates-clip-{n}-{side}") for side in ("a", "b")]
        self.components = [self.drop, self.note, self.gallery, self.table, *self.clips]

    def hide(self) -> dict:
        return {c: gr.update(visible=False) for c in self.components}

    def show(self, data, draft: dict, workspace, lang: str) -> dict:
        """The duplicates of checked data: the near ones too when a run already found them for this model."""
        report = getattr(getattr(data, "report", None), "duplicates", None)
        if not isinstance(report, dict):  # not checked, or a task whose own panel shows its count (chat: a number)
            return self.hide()
        found = duplicates.cached_near(data, draft.get("model"), workspace.cache_dir) or report
        pairs = found["examples"][:PAIRS_SHOWN]
        modality = data.report.modality
        out = {**self.hide(), self.note: gr.update(value=summary(found, lang), visible=True),
               self.drop: gr.update(value=draft["data"].get("drop_duplicates", "none"), visible=True)}
        if not pairs:
            return out
        out[self.table] = gr.update(value=pair_rows(pairs, modality == "text", lang), visible=True)
        if modality == "image":
            shown = [(thumbnail(r[side]["item"]), caption(r[side], lang)) for r in pairs for side in ("a", "b")]
            out[self.gallery] = gr.update(value=shown, visible=True)
        if modality == "audio":
            for n, r in enumerate(pairs[:CLIP_PAIRS]):
                for side, player in zip(("a", "b"), self.clips[2 * n:2 * n + 2]):
                    out[player] = gr.update(value=r[side]["item"], label=caption(r[side], lang), visible=True)
        return out


def caption(example: dict, lang: str) -> str:
    """'row 3 · training · billing': a table's examples by row number (an int), files by their path."""
    name = example["example"]
    named = tr("row {n}", lang, n=name) if isinstance(name, int) else name
    return tr("{example} · {split} · {label}", lang, example=named, split=tr(example["split"], lang),
              label=example["label"])


def pair_rows(pairs: list[dict], texts: bool, lang: str) -> pd.DataFrame:
    """One row per pair: each side named (and, for texts, the text itself), how alike they are."""
    def side(example: dict) -> str:
        named = caption(example, lang)
        return f"{example['item'][:TEXT_CHARS]} ({named})" if texts else named
    return pd.DataFrame([[side(r["a"]), side(r["b"]), tr("exact copy", lang) if r["kind"] == "exact"
                          else f"{r['similarity']:.3f}"] for r in pairs],
                        columns=[tr("first", lang), tr("second", lang), tr("similarity", lang)])


def summary(found: dict, lang: str) -> str:
    """The counts in words, the leak's warning, pairs under two labels, what was left out."""
    near = found.get("near")
    if not found["exact"] and not near:
        text = tr("**No duplicate examples found.**", lang)
    elif near is None:
        text = tr("**Duplicates:** {exact} exact copies.", lang, exact=found["exact"])
    else:
        text = tr("**Duplicates:** {exact} exact copies, {near} near copies.", lang, exact=found["exact"], near=near)
    if near is None:
        text += " " + tr("Near copies (a re-encoded photo, a text with one word changed) are looked for once a run "
                         "has read this data with this model.", lang)
    parts = [text]
    if duplicates.warning(found):
        parts.append(f"> ⚠️ {tr_said(duplicates.warning(found), lang)}")
    if found.get("different_labels"):
        parts.append(tr("{n} pair(s) carry different labels: check which label is right.", lang,
                        n=found["different_labels"]))
    if found.get("dropped"):
        parts.append(tr("{n} copies are left out of this data (data.drop_duplicates).", lang, n=found["dropped"]))
    return "\n\n".join(parts)

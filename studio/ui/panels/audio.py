"""Audio on the page: the checked clips' counts and lengths (a histogram) with a few clips of each class to play
(the player draws the waveform), the misclassified validation clips to play, and a playground that records from
the microphone or takes an upload, with the run's example clips to click."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from studio.engine.data.audio import clip_info, duration_words, inspect_clip
from studio.runfolder import EXAMPLES, RunFolder
from studio.ui import charts
from studio.ui.explain_view import segments_figure
from studio.ui.i18n import tr
from studio.tasks.classification.report import copied
from studio.ui.panels.base import MISTAKE_WIDTHS, mistakes_update
from studio.ui.panels.classification import ClassificationPanel

PLAYERS = 8  # clips shown on the Data tab, shared among the classes
MISTAKE_PLAYERS = 6  # the most confident mistakes get a player; the table lists them all
WAVEFORM = {"waveform_color": "#c7d2fe", "waveform_progress_color": "#6366f1", "show_recording_waveform": True}


def _player(elem_id: str, label: str = "A clip") -> gr.Audio:
    return gr.Audio(label=label, type="filepath", interactive=False, visible=False, elem_id=elem_id,
                    waveform_options=WAVEFORM)


def _seconds(path: str) -> float:
    try:
        return clip_info(path).seconds
    except Exception:  # a clip that vanished since it was checked: left out of the histogram, not the page
        return float("nan")


def picked(data, per_class: int) -> list[tuple[str, str]]:
    """(path, class) of the first `per_class` training clips of each class."""
    out = []
    for index, name in enumerate(data.classes):
        out += [(item, name) for item, label in zip(data.train_items, data.train_labels) if label == index][:per_class]
    return out


class AudioPanel(ClassificationPanel):
    # -- Data tab -------------------------------------------------------------------------------------------------
    def build_preview(self) -> None:
        self.summary = gr.Markdown(visible=False, elem_id="audio-summary")
        self.lengths = gr.Plot(charts.empty_figure("No clips yet"), visible=False, show_label=False,
                               elem_id="audio-durations")
        with gr.Row():
            self.players = [_player(f"audio-preview-{n}") for n in range(PLAYERS)]
        self.preview = [self.summary, self.lengths, *self.players]

    def show_preview(self, data, draft: dict, workspace, lang: str = "en", say=None) -> dict:
        durations: dict[str, list[float]] = {name: [] for name in data.classes}
        for item, label in zip(data.train_items + data.val_items, data.train_labels + data.val_labels):
            durations[data.classes[label]].append(_seconds(item))
        every = [s for seconds in durations.values() for s in seconds if s == s]
        total = sum(every)
        text = tr("**{n} clips, {total} in all**, from {shortest} to {longest} each", lang, n=len(every),
                  total=duration_words(total), shortest=duration_words(min(every)),
                  longest=duration_words(max(every))) if every else ""
        shown = picked(data, max(1, PLAYERS // len(data.classes)))[:PLAYERS]
        out = {self.summary: gr.update(value=text, visible=True),
               self.lengths: gr.update(value=charts.durations_figure(durations, lang), visible=True)}
        for n, player in enumerate(self.players):
            out[player] = (gr.update(value=shown[n][0], label=f"{shown[n][1]} · {Path(shown[n][0]).stem}",
                                     visible=True) if n < len(shown) else gr.update(value=None, visible=False))
        return out

    # -- Evaluate tab -----------------------------------------------------------------------------------------------
    def build_mistakes(self) -> None:
        with gr.Row():
            self.mistake_players = [_player(f"audio-mistake-{n}") for n in range(MISTAKE_PLAYERS)]
        self.mistakes_table = gr.Dataframe(label="Misclassified validation clips", interactive=False, visible=False,
                                           column_widths=MISTAKE_WIDTHS,
                                           elem_id="audio-mistakes-table")
        self.mistakes = [*self.mistake_players, self.mistakes_table]

    def show_mistakes(self, report: dict, run_dir, lang: str) -> dict:
        wrong = report.get("misclassified", [])
        playable = [w for w in wrong if copied(w) and (Path(run_dir) / copied(w)).is_file()][:MISTAKE_PLAYERS]
        out = {}
        for n, player in enumerate(self.mistake_players):
            if n < len(playable):
                w = playable[n]
                out[player] = gr.update(value=str(Path(run_dir) / copied(w)), visible=True, label=tr(
                    "is {true}, taken for {predicted} ({confidence} sure)", lang, true=w["true"],
                    predicted=w["predicted"], confidence=f"{w['confidence']:.0%}"))
            else:
                out[player] = gr.update(value=None, visible=False)
        out[self.mistakes_table] = mistakes_update(report, "clip", lambda item: Path(str(item)).name, lang)
        return out

    # -- Playground tab -------------------------------------------------------------------------------------------
    def build_playground(self, ctx, run, predict) -> None:
        clip = gr.Audio(label="A clip: record one or upload a file", sources=["upload", "microphone"],
                        type="filepath", visible=False, elem_id="playground-audio", waveform_options=WAVEFORM)
        examples = gr.Radio(label="Examples (click one)", choices=[], visible=False,
                            elem_id="playground-audio-examples")
        answer = ctx.shared["answer"]

        def on_clip(run_id, path, state):
            """A file that is not a clip the studio can read is answered in words, not with an error."""
            if not path:
                return gr.skip()
            reason = inspect_clip(Path(path))[0]
            if reason:
                lang = state["lang"]
                return {answer[0]: f"**{tr('this is not an audio clip we can read', lang).capitalize()}.** {reason}",
                        answer[1]: charts.empty_figure(tr("No answer", lang))}
            return predict(run_id, path, state)

        ctx.on(clip.upload, on_clip, [run, clip, ctx.session], answer)
        ctx.on(clip.stop_recording, on_clip, [run, clip, ctx.session], answer)
        ctx.on(examples.input, lambda r, path, state: {clip: path, **on_clip(r, path, state)},
               [run, examples, ctx.session], [clip, *answer])
        self.input, self.examples = clip, examples
        self.playground = [clip, examples]

    def show_playground(self, examples: list, run_dir) -> dict:
        return {self.input: gr.update(visible=True, value=None),
                self.examples: gr.update(choices=_example_choices(examples, run_dir), value=None, visible=True)}

    def build_explanation(self) -> None:
        self.segments = gr.Plot(label="Moments that led to the answer", visible=False, elem_id="explain-segments",
                                render=False)
        self.explanation = [self.segments]

    def show_explanation(self, result: dict, value, lang: str) -> dict:
        return {self.segments: gr.update(value=segments_figure(value, result["segments"], lang), visible=True)}


def _example_choices(paths: list[str], run_dir) -> list[tuple[str, str]]:
    """(what the button says, the clip's path): its number and true class (from the run's examples.json)."""
    if not paths:
        return []
    run = RunFolder(Path(run_dir))
    labels = {str(run.path / e["input"]): e["label"] for e in (run.read(EXAMPLES) or {}).get("examples", [])}
    return [(f"{n + 1}. {labels.get(path, '?')}", path) for n, path in enumerate(paths)]  # no words to translate

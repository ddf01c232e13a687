"""A tuned chat model on the Evaluate tab: its figures against its base (start) model's, in a sentence and, for
preference tuning, side by side in a table; and held-out prompts answered by both, beside the reference answer
(preference tuning: the better and the worse one)."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from studio import tasks
from studio.ui.i18n import tr, tr_said

SAMPLE_COLUMNS = ["prompt", "tuned model", "base model", "ROUGE-L tuned", "ROUGE-L base", "reference"]
SAMPLE_WIDTHS = ["18%", "25%", "25%", "8%", "8%", "16%"]  # the answers, the point of the demo, get the room
PAIR_COLUMNS = [*SAMPLE_COLUMNS[:-1], "better answer", "worse answer"]  # a preference run's two references
PAIR_WIDTHS = ["14%", "21%", "21%", "7%", "7%", "15%", "15%"]
# (what, the start model's figure, the tuned model's, its format): the figures a preference run's eval.json has for
# both models; the ROUGE-L rows are means over the held-out prompts' answers.
VERSUS = (("better answer more probable", "base_preference_accuracy", "preference_accuracy", "{:.0%}"),
          ("reward accuracy", "base_reward_accuracy", "reward_accuracy", "{:.0%}"),
          ("reward margin", "base_reward_margin", "reward_margin", "{:.3f}"),
          ("loss on general text (lower: more kept)", "base_general_loss", "general_loss", "{:.3f}"),
          ("answers' ROUGE-L to the better answer", "base_similarity", "similarity", "{:.2f}"),
          ("answers' ROUGE-L to the worse answer", "base_worse_similarity", "worse_similarity", "{:.2f}"))


def samples_table(report: dict, lang: str = "en") -> pd.DataFrame:
    """The held-out prompts: the tuned and base answers and how close each is to the reference, first."""
    samples = report.get("samples", [])
    paired = any("worse_reference" in s for s in samples)
    rows = [[s["prompt"], s["tuned_answer"], s["base_answer"], round(s["similarity"], 2),
             round(s.get("base_similarity", 0.0), 2), s["reference"], *([s.get("worse_reference", "")] * paired)]
            for s in samples]
    return pd.DataFrame(rows, columns=[tr(c, lang) for c in (PAIR_COLUMNS if paired else SAMPLE_COLUMNS)])


def versus_table(report: dict, lang: str = "en") -> pd.DataFrame:
    """The start and the tuned model side by side, on the figures both have."""
    samples = report.get("samples", [])
    means = {key: sum(s[key] for s in samples) / len(samples) for key in
             ("similarity", "base_similarity", "worse_similarity", "base_worse_similarity")
             if samples and all(key in s for s in samples)}
    figures = {**report, **means}
    rows = [[tr(words, lang), fmt.format(figures[base]), fmt.format(figures[tuned])]
            for words, base, tuned, fmt in VERSUS
            if isinstance(figures.get(base), (int, float)) and isinstance(figures.get(tuned), (int, float))]
    return pd.DataFrame(rows, columns=[tr(c, lang) for c in ("measure", "start model", "tuned model")])


def results_markdown(report: dict, status: dict, lang: str = "en") -> str:
    notes = "".join(f"\n\n> ⚠️ {tr_said(w, lang)}" for w in report.get("warnings", []))
    speed = (" · " + tr("{rate} learnt tokens/s", lang, rate=f"{report['tokens_per_s']:.0f}")
             if report.get("tokens_per_s") else "")
    kept = f"\n\n{tr_said(report['general_knowledge'], lang)}" if report.get("general_knowledge") else ""
    if "perplexity" not in report:  # another task on chat models (preference tuning): the figures it names
        task = tasks.get(status["task"])
        figures = " · ".join(f"**{tr(m.words, lang)}** {m.format(report[m.key])}"
                             for m in (task.headline, *task.curves) if isinstance(report.get(m.key), (int, float)))
        return (f"{figures}{speed} · {status.get('wall_time_s', 0):.0f} s\n\n<span class='hint'>"
                f"{tr_said(report.get('comparison', ''), lang)}</span>{kept}{notes}")
    figures = tr("**Validation loss {loss}** (base model {base_loss}) · perplexity {perplexity} (base "
                 "{base_perplexity}) · answer tokens predicted exactly {accuracy} (base {base_accuracy}) · {n} "
                 "validation examples · best epoch {epoch} · {trained} trained weights", lang,
                 loss=f"{report['loss']:.4f}", base_loss=f"{report['base_loss']:.4f}",
                 perplexity=f"{report['perplexity']:.2f}", base_perplexity=f"{report['base_perplexity']:.2f}",
                 accuracy=f"{report['accuracy']:.1%}", base_accuracy=f"{report['base_accuracy']:.1%}",
                 n=report["num_examples"], epoch=report["best_epoch"], trained=f"{report['trainable_parameters']:,}")
    healthy = tr("No sign of overfitting: validation loss did not rise while training loss fell.", lang)
    return (f"{figures}{speed} · {status.get('wall_time_s', 0):.0f} s\n\n<span class='hint'>"
            f"{tr_said(report.get('comparison', ''), lang)} "
            + tr("The base model's figures come from the same weights with the adapter switched off.", lang)
            + "</span>" + kept + (notes or f"\n\n<span class='hint'>{healthy}</span>"))


class ChatResults:
    """eval.json of a tuned chat model: tuned vs base in figures, and held-out prompts answered by both."""

    def build(self) -> None:
        self.metrics = gr.Markdown(visible=False, elem_id="chat-metrics")
        self.versus = gr.Dataframe(label="The start model and the tuned model side by side (validation)",
                                   interactive=False, visible=False, elem_id="chat-versus")
        self.samples = gr.Dataframe(label="Held-out prompts: reference, base and tuned answers (greedy)",
                                    interactive=False, wrap=True, visible=False, elem_id="chat-samples",
                                    column_widths=SAMPLE_WIDTHS)
        self.components = [self.metrics, self.versus, self.samples]

    def show(self, report: dict, status: dict, lang: str) -> dict:  # the figures' words are English for now
        versus = versus_table(report, lang) if "reward_accuracy" in report else pd.DataFrame()
        samples = samples_table(report, lang)
        widths = PAIR_WIDTHS if len(samples.columns) == len(PAIR_COLUMNS) else SAMPLE_WIDTHS
        return {self.metrics: gr.update(value=results_markdown(report, status, lang), visible=True),
                self.versus: gr.update(value=versus, visible=not versus.empty),
                self.samples: gr.update(value=samples, visible=bool(report.get("samples")), column_widths=widths)}

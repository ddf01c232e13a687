"""Preference tuning: teach a chat model which of two answers to a prompt is better (DPO, IPO, ORPO, SimPO), or
which answers are good and which bad (KTO). It is the chat task with another loss: the same models, chat template
and end-of-turn handling, strategies (lora, qlora, dora, ia3, full), playground and exports. The training pipeline
is in preference_pipeline.py."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from studio import tasks
from studio.assets import HELPDESK_PREFERENCES
from studio.recipe import DataSpec, Recipe, RecipeError
from studio.tasks.base import TOKENS_KEPT, ColumnChoice, Example, Metric, Option
from studio.tasks.instruction import data as chat_data
from studio.tasks.instruction import preference_data, preference_pipeline
from studio.tasks.instruction.preference_loss import LOSSES
from studio.tasks.instruction.strategies import STRATEGIES
from studio.tasks.instruction.task import InstructionTuning
from studio.tasks.instruction.tokens import ChatFormat
from studio.tasks.instruction.tokens import preview as tokens_preview

# strategy_options by trl's names (DPOConfig, CPOConfig, ORPOConfig, KTOConfig), on top of each strategy's own.
LOSS_OPTIONS = {
    "loss": Option(str, "dpo", choices=LOSSES, words="Preference loss",
                   info="dpo (the usual), ipo, orpo and simpo (no reference model), kto (answers marked good or bad)"),
    "beta": Option(float, 0.1, 0.001, 100.0, words="Beta",
                   info="how far the tuned model may move from the start model (orpo: the weight of the odds ratio)"),
    "simpo_gamma": Option(float, 0.5, 0.0, 100.0, words="SimPO target margin (gamma)"),
    "cpo_alpha": Option(float, 0.0, 0.0, 100.0, words="SimPO: weight of the chosen answers' own loss"),
    "desirable_weight": Option(float, 1.0, 0.0, 100.0, words="KTO: weight of good answers"),
    "undesirable_weight": Option(float, 1.0, 0.0, 100.0, words="KTO: weight of bad answers")}
# Measured on SmolLM2-135M, DPO, 38 pairs of the help-desk example, 2 epochs of batches of 8: at 5e-5 LoRA ranks the
# pairs by implicit reward but the tuned model still finds none of the better answers more probable; at 5e-4 it does
# after one epoch (1e-3 saturates the loss at once). Half the chat task's rates; full fine-tuning as trl's examples.
LEARNING_RATES = {"lora": 5e-4, "qlora": 5e-4, "dora": 5e-4, "ia3": 1.5e-3, "full": 5e-6}
STRATEGY_MENU = {name: dataclasses.replace(STRATEGIES[name], options={**STRATEGIES[name].options, **LOSS_OPTIONS},
                                           defaults={"epochs": 2, "batch_size": 8, "learning_rate": rate})
                 for name, rate in LEARNING_RATES.items()}


class PreferenceTuning(InstructionTuning):
    name = "preference-tuning"
    title = "Teach a chat model which answers are better (preference tuning)"
    strategies = STRATEGY_MENU
    data_hint = ("a .csv or .jsonl file with prompt, chosen and rejected columns (a better and a worse answer), or "
                 "answers with a good/bad label column for KTO")
    examples = (Example("helpdesk-preferences", "help-desk answers, better and worse (preference)",
                        HELPDESK_PREFERENCES),)
    table_columns = (
        ColumnChoice("prompt_column", "Column with the prompts (questions)", chat_data.PROMPT_GUESSES, False),
        ColumnChoice("chosen_column", "Column with the better answers", preference_data.CHOSEN_GUESSES, False),
        ColumnChoice("rejected_column", "Column with the worse answers", preference_data.REJECTED_GUESSES, False),
        ColumnChoice("system_column", "Column with the system message (optional)", chat_data.SYSTEM_GUESSES,
                     False))
    essential_columns = (("chosen_column", "rejected_column"),)
    data_defaults = {"max_length": 1024}
    train_keys = ()
    headline = Metric("reward_accuracy", "reward accuracy", percent=True,
                      explain="the share of validation pairs whose better answer gets the higher reward")
    curves = (Metric("reward_margin", "reward margin",
                     explain="how much higher the better answers' rewards are than the worse ones', on average"),
              Metric("preference_accuracy", "better answer more probable", percent=True,
                     explain="the share of validation pairs whose better answer the model finds more probable"))
    fields = (TOKENS_KEPT,)
    comparisons = ()

    # -- the recipe ---------------------------------------------------------------------------------------------
    def data_keys(self, data: DataSpec) -> tuple[str, ...]:
        return ("prompt_column", "chosen_column", "rejected_column", "response_column", "label_column",
                "system_column", "max_length")

    def check_recipe(self, recipe: Recipe) -> None:
        d, loss = recipe.data, recipe.strategy_options.get("loss", LOSS_OPTIONS["loss"].default)
        if d.response_column and (d.chosen_column or d.rejected_column):
            raise RecipeError("Recipe keys 'data.response_column' and 'data.chosen_column'/'rejected_column' are "
                              "both set; give either pairs (chosen and rejected columns) or answers with a "
                              "good/bad label (response and label columns, for KTO).")
        if bool(d.chosen_column) != bool(d.rejected_column):
            given, missing = ("chosen", "rejected") if d.chosen_column else ("rejected", "chosen")
            raise RecipeError(f"Recipe key 'data.{given}_column' is set without 'data.{missing}_column'; pairs need "
                              "both the better and the worse answer.")
        if d.response_column and loss != "kto":
            raise RecipeError(f"Recipe key 'data.response_column' gives answers marked good or bad one by one, which "
                              f"only 'strategy_options.loss: kto' reads; '{loss}' compares a better and a worse "
                              "answer to the same prompt. Use kto, or give chosen and rejected columns.")

    def check_model(self, model: str, trust_remote_code: bool = False) -> str:
        """A chat model as the chat task checks it, or the folder of a completed chat run (its merged weights)."""
        run = preference_pipeline.start_run(model)
        if run is None:
            return super().check_model(model, trust_remote_code)
        return f"the tuned model of run {run.id}, its adapter merged into its base."

    # -- data -----------------------------------------------------------------------------------------------------
    def load_data(self, spec: DataSpec, seed: int, uploads_dir: Path) -> preference_data.PreferenceData:
        return preference_data.load(spec, seed)

    def preview(self, data, model: str, models_dir: Path, max_length: int | None = None,
                train_on_prompt: bool = False, trust_remote_code: bool = False, log=None) -> dict:
        """The Data tab's view: each prompt with its better answer as the model sees it (the chat view's pieces),
        and the pairs side by side."""
        from studio.families import causal_lm
        source = causal_lm.resolve(model, self.name, models_dir, log or (lambda message: None))
        tokenizer, note = causal_lm.load_tokenizer(source.path, self.name, trust_remote_code)
        fmt = ChatFormat(tokenizer, max_length or self.data_defaults["max_length"])
        items = data.train_items + data.val_items
        return {**tokens_preview(data.conversations(items), "chat", fmt), "template_note": note,
                "duplicates": data.report.duplicates, "empty_responses": data.report.empty_responses,
                "pairs": [{"prompt": i["prompt"][-1]["content"], "chosen": i["chosen"], "rejected": i["rejected"]}
                          for i in items[:5]] if data.paired else []}

    # -- training ---------------------------------------------------------------------------------------------------
    def train(self, ctx) -> dict:
        return preference_pipeline.train(self, ctx)


TASK = PreferenceTuning()
tasks.register(TASK)

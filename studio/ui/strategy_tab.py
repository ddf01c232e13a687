"""Strategy: how to adapt the model, with a recommendation from the data, advanced settings, and the recipe."""
from __future__ import annotations

import gradio as gr

from studio import advice, catalog
from studio import recipe as recipes
from studio.engine.device import pick_device
from studio.ui import session as sessions

EXPLAIN = {
    "feature-extraction": "keep the pretrained model frozen and train only a new final layer. Fast, even on a CPU.",
    "full": "let every weight adjust to your data. Most accurate with enough data and a GPU.",
    "partial": "freeze the early layers (general shapes and words) and adjust the last few.",
    "layerwise": "adjust everything, the last layers the most and the early layers gently.",
    "lora": "add small trainable adapters inside the model; almost as good as full fine-tuning, far lighter.",
    "scratch": "start from random weights: the baseline that shows what pretraining buys you.",
}
OPTION_FIELDS = ["trainable_blocks", "lr_decay", "lora_r", "lora_alpha", "lora_dropout"]
KEPT_TRAIN_KEYS = ("early_stopping_patience", "retry_smaller_batch")  # not tied to a strategy: kept on a switch


def recommendation(state: dict) -> str:
    if not state["train_counts"]:
        return "Check your data on the Data tab to get a recommendation."
    kind = "image" if state["recipe"]["task"] == catalog.IMAGE else "text"
    strategy, why = advice.recommend(kind, state["train_counts"], pick_device().type)
    return f"**Recommended: {sessions.STRATEGY_WORDS[strategy]}.** {why}"


def build(ctx, tab) -> None:
    gr.Markdown("### 3. Choose how to adapt the model")
    advice_md = gr.Markdown(elem_id="recommendation")
    strategy = gr.Radio([(f"{sessions.STRATEGY_WORDS[k]} — {v}", k) for k, v in EXPLAIN.items()],
                        value="feature-extraction", label="Strategy", elem_id="strategy")
    first = recipes.STRATEGY_DEFAULTS["feature-extraction"]
    with gr.Accordion("Advanced settings", open=False, elem_id="advanced"):
        with gr.Row():
            epochs = gr.Number(first["epochs"], label="Epochs", precision=0,
                               info="Passes over the training data.", elem_id="epochs")
            batch = gr.Number(first["batch_size"], label="Batch size", precision=0,
                              info="Examples per step; lower it if memory runs out.")
            lr = gr.Number(first["learning_rate"], label="Learning rate",
                           info="How big each correction is.")
        with gr.Row():
            patience = gr.Number(recipes.TrainSpec.early_stopping_patience, label="Early stopping patience",
                                 precision=0, elem_id="patience",
                                 info="Stop after this many epochs without a better validation loss (0: never).")
            retry = gr.Checkbox(recipes.TrainSpec.retry_smaller_batch, label="If memory runs out, retry with half "
                                "the batch", info="Automatic, down to a batch of 1.")
        with gr.Row():
            blocks = gr.Number(2, label="Blocks to fine-tune", precision=0, visible=False)
            decay = gr.Slider(0.3, 1.0, value=0.8, step=0.05, label="Learning-rate decay per block", visible=False)
            lora_r = gr.Number(8, label="LoRA rank", precision=0, visible=False)
            lora_alpha = gr.Number(16, label="LoRA alpha", visible=False)
            lora_dropout = gr.Number(0.05, label="LoRA dropout", visible=False)
    with gr.Row():
        show = gr.Button("Show recipe", size="sm", elem_id="show-recipe")
        download = gr.DownloadButton("Download recipe", size="sm", visible=False)
    recipe_view = gr.Code(language="yaml", label="The recipe this run will use", visible=False,
                          elem_id="recipe-yaml")
    ctx.nav("data", "train")
    fields = [epochs, batch, lr, patience, retry, blocks, decay, lora_r, lora_alpha, lora_dropout]

    def apply(state, name, *values):
        """Writes the settings into the session's recipe, or says in words which one is out of range."""
        known = recipes.STRATEGY_OPTIONS[name]
        candidate = dict(state["recipe"], strategy=name,
                         train={"epochs": values[0], "batch_size": values[1], "learning_rate": values[2],
                                "early_stopping_patience": values[3], "retry_smaller_batch": values[4]},
                         strategy_options={key: value for key, value in zip(OPTION_FIELDS, values[5:])
                                           if key in known and value is not None})
        try:  # the recipe's own checks, with a stand-in data path when no data is chosen yet
            recipes.from_dict(dict(candidate, data=dict(candidate["data"], path=candidate["data"]["path"] or "-")))
        except recipes.RecipeError as exc:
            gr.Warning(str(exc))
            return state, sessions.summary(state)
        state["recipe"] = candidate
        return state, sessions.summary(state)

    def on_strategy(name, state):
        """A new strategy starts from its own defaults; only its options are shown."""
        kept = {k: v for k, v in state["recipe"]["train"].items() if k in KEPT_TRAIN_KEYS}
        train = dict(recipes.STRATEGY_DEFAULTS[name], **kept)
        options = {key: spec[1] for key, spec in recipes.STRATEGY_OPTIONS[name].items()}
        state["recipe"].update(strategy=name, train=train, strategy_options=options)
        shown = [gr.update(value=options[key], visible=True) if key in options else gr.update(visible=False)
                 for key in OPTION_FIELDS]
        return (train["epochs"], train["batch_size"], train["learning_rate"], gr.skip(), gr.skip(), *shown, state,
                sessions.summary(state))

    def on_show(state, name, *values):
        # The fields are read here too: an edit whose own event is still in flight must show up in the recipe.
        state, summary = apply(state, name, *values)
        try:
            recipe = sessions.build_recipe(state).resolved()
        except recipes.RecipeError as exc:
            return gr.Code(value=f"# {exc}", visible=True), gr.DownloadButton(visible=False), state, summary
        path = ctx.workspace.root / "recipes" / f"recipe-{state.setdefault('id', 'draft')}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        recipe.save(path)
        return (gr.Code(value=recipe.to_yaml(), visible=True), gr.DownloadButton(value=str(path), visible=True),
                state, summary)

    strategy.input(on_strategy, [strategy, ctx.session], [*fields, ctx.session, ctx.summary])
    for field in fields:
        field.input(lambda state, name, *v: apply(state, name, *v), [ctx.session, strategy, *fields],
                    [ctx.session, ctx.summary])
    show.click(on_show, [ctx.session, strategy, *fields], [recipe_view, download, ctx.session, ctx.summary])
    tab.select(recommendation, ctx.session, advice_md)

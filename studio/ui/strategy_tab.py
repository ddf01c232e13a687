"""Strategy: how to adapt the model (the task's menu), with a recommendation from the data, advanced settings
(the devices to train on among them), and the recipe."""
from __future__ import annotations

import json

import gradio as gr

from studio import recipe as recipes
from studio import tasks
from studio.engine.device import devices_found, pick_device
from studio.ui import session as sessions
from studio.ui.i18n import tr

# Words for every strategy option any task offers; an option missing here shows its recipe key.
OPTION_WORDS = {"trainable_blocks": "Blocks to fine-tune", "lr_decay": "Learning-rate decay per block",
                "lora_r": "LoRA rank", "lora_alpha": "LoRA alpha", "lora_dropout": "LoRA dropout",
                "num_virtual_tokens": "Virtual tokens", "target_modules": "Layers to adapt",
                "head_solver": "How the new final layer is fitted", "lr_finder": "Learning-rate range test"}
OPTION_INFO = {"head_solver": "lbfgs: the best final layer for your data, found exactly (recommended); sgd: trained "
                              "over the epochs below, like the other strategies.",
               "lr_finder": "A short test of learning rates before training, which suggests one for your next run. "
                            "auto: only where it takes under a tenth of the run."}
FIELD_WORDS = {"epochs": "Epochs", "batch_size": "Batch size", "learning_rate": "Learning rate",
               "early_stopping_patience": "Early stopping patience", "devices": "Devices to train on",
               "gradient_accumulation_steps": "Gradient accumulation steps"}
# Train keys not tied to a strategy: kept when the strategy changes.
KEPT_TRAIN_KEYS = ("early_stopping_patience", "retry_smaller_batch", "devices", "gradient_accumulation_steps",
                   "gradient_checkpointing")


def strategy_choices(task_name: str, lang: str = "en") -> list[tuple[str, str]]:
    return [(f"{tr(s.words, lang)} — {tr(s.explain, lang)}", s.name) for s in tasks.get(task_name).strategies.values()]


def all_options() -> dict[str, tuple]:
    """Every strategy option of every task: name → (type, default, low, high)."""
    out = {}
    for name in tasks.names():
        for strategy in tasks.get(name).strategies.values():
            out.update(strategy.options)
    return out


def recommendation(state: dict) -> str:
    lang = state["lang"]
    if not state["train_counts"]:
        return tr("Check your data on the Data tab to get a recommendation.", lang)
    task = state["recipe"]["task"]
    strategy, why = tasks.get(task).recommend(state["train_counts"], pick_device().type)
    return f"**{tr('Recommended: {strategy}.', lang, strategy=sessions.strategy_words(task, strategy, lang))}** {why}"


def corrected(key: str, value, kind: type, low: float, high: float, default, lang: str) -> tuple[object, str | None]:
    """A box's value made valid, and a note in words when it had to change (never changed silently)."""
    words = tr(FIELD_WORDS.get(key) or OPTION_WORDS.get(key, key), lang)
    if value is None or value == "":
        return default, tr("{field} was empty: it is back to its default, {value}.", lang, field=words, value=default)
    fixed = value
    if kind is int and float(value) != int(value):
        fixed = int(value)
    fixed = min(max(fixed, low), high)
    if fixed != value:
        return fixed, tr("{field} must be a {kind} between {low:g} and {high:g}: {given} became {value}.", lang,
                         field=words, kind=tr("whole number" if kind is int else "number", lang), low=low,
                         high=high, given=value, value=fixed)
    return value, None


def fields_view(state: dict) -> str:
    """What the setting boxes show of the session's recipe: when it has not changed, opening the tab leaves the
    boxes alone (rewriting them would undo what the person is typing in them)."""
    recipe = state["recipe"]
    return json.dumps([recipe["task"], recipe["strategy"], recipe["train"], recipe["strategy_options"],
                       recipe["data"].get("max_length"), recipe["data"].get("train_on_prompt")],
                      sort_keys=True, default=str)


def shown_values(view: str, train_keys: list, option_names: list) -> list:
    """The values of the train and option boxes in a fields_view()."""
    _, _, train, options, *_ = json.loads(view)
    spec = recipes.TrainSpec()
    return [train.get(key, getattr(spec, key)) for key in train_keys] + [options.get(key) for key in option_names]


def unchanged_left_alone(boxes: list, before: list) -> list:
    """Boxes whose value is already shown keep it (a slow answer would otherwise undo a number typed meanwhile):
    a plain value becomes gr.skip(), an update loses its value."""
    out = list(boxes)
    for index, shown in enumerate(before):
        box = out[index]
        if isinstance(box, dict) and box.get("value") == shown:
            out[index] = {k: v for k, v in box.items() if k != "value"}
        elif not isinstance(box, dict) and box == shown:
            out[index] = gr.skip()
    return out


def option_field(name: str, spec: tuple):
    """A strategy option's box: its choices where it has a few, else a text or a number."""
    words = dict(label=OPTION_WORDS.get(name, name), info=OPTION_INFO.get(name), visible=False,
                 elem_id=f"option-{name.replace('_', '-')}")
    if spec[0] is str and isinstance(spec[2], tuple):
        return gr.Radio(list(spec[2]), value=spec[1], **words)
    return gr.Textbox(spec[1], **words) if spec[0] is str else gr.Number(spec[1], **words)


def devices_note(lang: str) -> str:
    found = devices_found()
    if found["kind"] == "cpu":
        return tr("No GPU found: training runs on the CPU. Two or more processes can share it (mostly useful to "
                  "check a multi-GPU recipe).", lang)
    return tr("Found {count} {kind} device(s): {names}.", lang, count=found["count"], kind=found["kind"].upper(),
              names=", ".join(found["names"]))


def build(ctx, tab) -> None:
    ctx.static(gr.Markdown("### 3. Choose how to adapt the model"))
    advice_md = gr.Markdown(elem_id="recommendation")
    first = sessions.new_session()["recipe"]
    first_task = tasks.get(first["task"])
    strategy = ctx.texts.keep_choices(gr.Radio(strategy_choices(first["task"]), value=first["strategy"],
                                               label="Strategy", elem_id="strategy"))  # set in the page's language
    defaults = first_task.strategies[first["strategy"]].defaults
    options = all_options()
    with gr.Accordion("Advanced settings", open=False, elem_id="advanced"):
        with gr.Row():
            # No precision=0: gradio would round 2.5 to 2 before the studio sees it; corrected() says so instead.
            epochs = gr.Number(defaults["epochs"], label="Epochs", elem_id="epochs",
                               info="How many times the model goes through all your training examples.")
            batch = gr.Number(defaults["batch_size"], label="Batch size", elem_id="batch-size",
                              info="How many examples the model looks at before each correction (per device); "
                                   "lower it if memory runs out.")
            lr = gr.Number(defaults["learning_rate"], label="Learning rate", elem_id="learning-rate",
                           info="How big each correction is: too big and the model forgets what it knew, too "
                                "small and it learns slowly.")
        with gr.Row():
            patience = gr.Number(recipes.TrainSpec.early_stopping_patience, label="Early stopping patience",
                                 elem_id="patience",
                                 info="Stop after this many passes without fewer mistakes on the held-back examples "
                                      "(0: never stop early).")
            retry = gr.Checkbox(recipes.TrainSpec.retry_smaller_batch, label="If memory runs out, retry with half "
                                "the batch", info="Automatic, down to a batch of 1.")
        with gr.Row():
            devices = gr.Number(1, label="Devices to train on", elem_id="devices",
                                info="How many processors train together.")
            accumulation = gr.Number(1, label="Gradient accumulation steps",
                                     info="Batches added up before each update: a larger effective batch in the "
                                          "same memory.")
            checkpointing = gr.Checkbox(False, label="Gradient checkpointing",
                                        info="Less memory for slower steps (models that support it).")
        with gr.Row():
            option_fields = {name: option_field(name, spec) for name, spec in options.items()}
        with gr.Row():  # what some tasks read besides (chat models: tokens kept, packing, answers only)
            max_length = gr.Number(None, label="Tokens kept per example", visible=False, elem_id="max-length",
                                   info="Longer examples are cut (a chat's prompt from its start, so the answer "
                                        "stays whole).")
            packing = gr.Checkbox(False, label="Pack short examples together", visible=False, elem_id="packing",
                                  info="Several short examples share one row without seeing each other: faster, "
                                       "same result.")
            train_on_prompt = gr.Checkbox(False, label="Learn the prompts too", visible=False,
                                          elem_id="train-on-prompt",
                                          info="Off: the model learns only to write the answers (the usual choice).")
    with gr.Row():
        show = gr.Button("Show recipe", size="sm", elem_id="show-recipe")
        download = gr.DownloadButton("Download recipe", size="sm", visible=False)
    fix_note = gr.Markdown(elem_id="strategy-note")
    recipe_view = gr.Code(language="yaml", label="The recipe this run will use", visible=False,
                          elem_id="recipe-yaml", max_lines=None)
    # fields_view() of what the boxes show on this page: at first, what they were built with.
    view = gr.State(fields_view(dict(recipe=dict(first, train=defaults, strategy_options={
        name: spec[1] for name, spec in first_task.strategies[first["strategy"]].options.items()}))))
    ctx.nav("data", "train")
    train_fields = [epochs, batch, lr, patience, retry, devices, accumulation, checkpointing]
    train_keys = ["epochs", "batch_size", "learning_rate", "early_stopping_patience", "retry_smaller_batch",
                  "devices", "gradient_accumulation_steps", "gradient_checkpointing"]
    option_names = list(option_fields)
    extras = {"max_length": max_length, "packing": packing, "train_on_prompt": train_on_prompt}
    fields = [*train_fields, *option_fields.values(), *extras.values()]

    def apply(state, name, *values):
        """Writes the settings into the session's recipe. A value out of range is corrected in its box, with a
        note saying so; the recipe's own checks have the last word."""
        lang = state["lang"]
        spec = tasks.get(state["recipe"]["task"]).strategies[name]
        defaults = {**spec.defaults, **{k: getattr(recipes.TrainSpec(), k) for k in train_keys
                                         if k not in spec.defaults}}
        values, notes = list(values), []
        for index, key in enumerate(train_keys):
            if key in recipes.TRAIN_RANGES:
                kind = float if key == "learning_rate" else int
                values[index], note = corrected(key, values[index], kind, *recipes.TRAIN_RANGES[key],
                                                defaults[key], lang)
                notes += [note] if note else []
        for index, key in enumerate(option_names, start=len(train_keys)):
            if key in spec.options and spec.options[key][0] is not str:
                kind, default, low, high = spec.options[key]
                values[index], note = corrected(key, values[index], kind, low, high, default, lang)
                notes += [note] if note else []
        task = tasks.get(state["recipe"]["task"])
        extra = dict(zip(extras, values[len(train_keys) + len(option_names):]))
        train = dict(zip(train_keys, values[:len(train_keys)]))
        data = dict(state["recipe"]["data"])
        keys = task.data_keys(recipes.DataSpec(**{**data, "path": data.get("path") or "-"}))
        for key in ("max_length", "train_on_prompt"):
            if key in keys and extra[key] not in (None, ""):
                data[key] = int(extra[key]) if key == "max_length" else bool(extra[key])
        if "packing" in task.train_keys:
            train["packing"] = bool(extra["packing"])
        options = dict(zip(option_names, values[len(train_keys):len(train_keys) + len(option_names)]))
        candidate = dict(state["recipe"], strategy=name, train=train, data=data,
                         strategy_options={key: value for key, value in options.items() if key in spec.options})
        try:  # the recipe's own checks, with a stand-in data path when no data is chosen yet
            recipes.from_dict(dict(candidate, data=dict(candidate["data"], path=candidate["data"]["path"] or "-")))
        except recipes.RecipeError as exc:
            notes.append(str(exc))
        else:
            state["recipe"] = candidate
        return (*values, " ".join(notes), state, sessions.summary(state))

    def show_strategy(state, name, keep_settings=False):
        """A strategy's own defaults and options (the session's own settings when keep_settings); only its
        options are shown."""
        spec = tasks.get(state["recipe"]["task"]).strategies[name]
        current = state["recipe"]["train"]
        kept = current if keep_settings else {k: v for k, v in current.items() if k in KEPT_TRAIN_KEYS}
        train = {**spec.defaults, **{k: v for k, v in kept.items() if v is not None}}
        chosen = {key: o[1] for key, o in spec.options.items()}
        if keep_settings:
            chosen.update({k: v for k, v in state["recipe"]["strategy_options"].items() if k in chosen})
        state["recipe"].update(strategy=name, train=train, strategy_options=chosen)
        shown = [gr.update(value=chosen[key], visible=True) if key in chosen else gr.update(visible=False)
                 for key in option_names]
        task = tasks.get(state["recipe"]["task"])
        data = state["recipe"]["data"]
        keys = task.data_keys(recipes.DataSpec(**{**data, "path": data.get("path") or "-"}))
        defaults = getattr(task, "data_defaults", {})
        extra = [gr.update(visible="max_length" in keys, value=data.get("max_length") or defaults.get("max_length")),
                 gr.update(visible="packing" in task.train_keys, value=bool(train.get("packing"))),
                 gr.update(visible="train_on_prompt" in keys, value=bool(data.get("train_on_prompt")))]
        spec_train = recipes.TrainSpec()
        return (*(train.get(key, getattr(spec_train, key)) for key in train_keys), *shown, *extra, state,
                sessions.summary(state), fields_view(state))

    def on_open(state, shown):
        """The task may have changed on the Model tab: its menu, with the session's strategy chosen."""
        task = state["recipe"]["task"]
        name = state["recipe"]["strategy"] or tasks.get(task).default_strategy
        note = devices_note(state["lang"])
        if state["recipe"]["strategy"] and shown == fields_view(state):
            boxes = [gr.skip()] * len(fields)
            boxes[train_keys.index("devices")] = gr.update(info=note)
            return recommendation(state), gr.skip(), *boxes, state, sessions.summary(state), shown
        *boxes, state, summary, now = show_strategy(state, name, keep_settings=True)
        boxes = unchanged_left_alone(boxes, shown_values(shown, train_keys, option_names))
        devices_box = boxes[train_keys.index("devices")]
        boxes[train_keys.index("devices")] = gr.update(info=note, **(
            {} if isinstance(devices_box, dict) else {"value": devices_box}))
        return (recommendation(state), gr.Radio(choices=strategy_choices(task, state["lang"]), value=name), *boxes,
                state, summary, now)

    strategy_out = [*fields, ctx.session, ctx.summary, view]
    strategy.input(lambda name, state: show_strategy(state, name), [strategy, ctx.session], strategy_out)
    def apply_one(index, state, name, *values):
        """One box left: only its own value is written back (writing all of them would undo what the person
        is typing in the next box)."""
        *shown, note, state, summary = apply(state, name, *values)
        return shown[index], note, state, summary, fields_view(state)

    for index, field in enumerate(fields):  # numbers when the box is left (not at each key), ticks at once
        listen = field.blur if hasattr(field, "blur") else field.input
        listen(lambda state, name, *v, i=index: apply_one(i, state, name, *v), [ctx.session, strategy, *fields],
               [field, fix_note, ctx.session, ctx.summary, view])

    def on_show(state, name, *values):
        # The fields are read here too: an edit whose own event is still in flight must show up in the recipe.
        *shown, note, state, summary = apply(state, name, *values)
        try:
            recipe = sessions.build_recipe(state).resolved()
        except recipes.RecipeError as exc:
            return (*shown, note, gr.Code(value=f"# {exc}", visible=True), gr.DownloadButton(visible=False), state,
                    summary, fields_view(state))
        path = ctx.workspace.root / "recipes" / f"recipe-{state['id']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        recipe.save(path)
        return (*shown, note, gr.Code(value=recipe.to_yaml(), visible=True),
                gr.DownloadButton(value=str(path), visible=True), state, summary, fields_view(state))

    show.click(on_show, [ctx.session, strategy, *fields], [*fields, fix_note, recipe_view, download, ctx.session,
                                                            ctx.summary, view])
    tab.select(on_open, [ctx.session, view], [advice_md, strategy, *strategy_out])

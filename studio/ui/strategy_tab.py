"""Strategy: how to adapt the model (the task's menu), with a recommendation from the data, advanced settings (the
devices to train on among them), and the recipe. The boxes come from the tasks: every strategy option any task
offers (Option) and every setting any task reads besides (Field); each is shown for the tasks that use it."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from studio import recipe as recipes
from studio import tasks
from studio.engine.device import devices_found, pick_device
from studio.engine.trackers import TRACKERS
from studio.tasks.base import Field, Option
from studio.ui import cluster_note
from studio.ui import session as sessions
from studio.ui.i18n import tr, tr_said
from studio.ui.sweep_form import SweepForm

FIELD_WORDS = {"epochs": "Epochs", "batch_size": "Batch size", "learning_rate": "Learning rate",
               "early_stopping_patience": "Early stopping patience", "devices": "Devices to train on",
               "gradient_accumulation_steps": "Gradient accumulation steps"}
# Train keys not tied to a strategy: kept when the strategy changes.
KEPT_TRAIN_KEYS = ("early_stopping_patience", "retry_smaller_batch", "devices", "gradient_accumulation_steps",
                   "gradient_checkpointing", "report_to")


@dataclass
class Box:
    """A setting's box: what it is ("train": every task's; "option": a strategy's; "field": some tasks'), where
    its value lives in the recipe draft ("train", "strategy_options", "data") under which key, its type and allowed
    range (numbers are corrected to it, with a note)."""
    kind: str
    section: str
    key: str
    component: object
    type: type = int
    low: float | None = None
    high: float | None = None

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


def strategy_choices(task_name: str, lang: str = "en") -> list[tuple[str, str]]:
    return [(f"{tr(s.words, lang)} — {tr(s.explain, lang)}", s.name)
            for s in tasks.get(task_name).strategies.values()]


def all_options() -> dict[str, Option]:
    """Every strategy option of every task, by name (the first task's wording wins)."""
    out = {}
    for name in tasks.names():
        for strategy in tasks.get(name).strategies.values():
            for key, option in strategy.options.items():
                out.setdefault(key, option)
    return out


def all_fields() -> dict[str, Field]:
    """Every setting any task reads besides the strategy's options, by recipe key."""
    return {f.key: f for name in tasks.names() for f in tasks.get(name).fields}


def recommendation(state: dict) -> str:
    lang = state["lang"]
    if not state["train_counts"]:
        return tr("Check your data on the Data tab to get a recommendation.", lang)
    task = state["recipe"]["task"]
    strategy, why = tasks.get(task).recommend(state["train_counts"], pick_device().type)
    words = sessions.strategy_words(task, strategy, lang)
    return f"**{tr('Recommended: {strategy}.', lang, strategy=words)}** {tr_said(why, lang)}"


def corrected(words: str, value, kind: type, low: float, high: float, default, lang: str) -> tuple[object, str | None]:
    """A box's value made valid, and a note in words when it had to change (never changed silently)."""
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


def option_box(name: str, option: Option):
    """A strategy option's box: its choices where it has a few, else a text or a number."""
    words = dict(label=option.words or name, info=option.info, visible=False,
                 elem_id=f"option-{name.replace('_', '-')}")
    if option.type is str and option.choices:
        return gr.Radio(list(option.choices), value=option.default, **words)
    return gr.Textbox(option.default, **words) if option.type is str else gr.Number(option.default, **words)


def field_box(field: Field):
    elem_id = field.key.split(".", 1)[1].replace("_", "-")
    words = dict(label=field.words, info=field.info, visible=False, elem_id=elem_id)
    return gr.Checkbox(False, **words) if field.type is bool else gr.Number(None, **words)


def devices_note(lang: str) -> str:
    found = devices_found()
    if found["kind"] == "cpu":
        return tr("No GPU found: training runs on the CPU. Two or more processes can share it (mostly useful to "
                  "check a multi-GPU recipe).", lang)
    return tr("Found {count} {kind} device(s): {names}.", lang, count=found["count"], kind=found["kind"].upper(),
              names=", ".join(found["names"]))


def _train_boxes() -> list[Box]:
    spec = recipes.TrainSpec()
    ranges = recipes.TRAIN_RANGES
    with gr.Row():
        # No precision=0: gradio would round 2.5 to 2 before the studio sees it; corrected() says so instead.
        epochs = gr.Number(5, label="Epochs", elem_id="epochs",
                           info="How many times the model goes through all your training examples.")
        batch = gr.Number(16, label="Batch size", elem_id="batch-size",
                          info="How many examples the model looks at before each correction (per device); "
                               "lower it if memory runs out.")
        lr = gr.Number(1e-4, label="Learning rate", elem_id="learning-rate",
                       info="How big each correction is: too big and the model forgets what it knew, too small and "
                            "it learns slowly.")
    with gr.Row():
        patience = gr.Number(spec.early_stopping_patience, label="Early stopping patience", elem_id="patience",
                             info="Stop after this many passes without fewer mistakes on the held-back examples "
                                  "(0: never stop early).")
        retry = gr.Checkbox(spec.retry_smaller_batch, label="If memory runs out, retry with half the batch",
                            info="Automatic, down to a batch of 1.")
    with gr.Row():
        devices = gr.Number(1, label="Devices to train on", elem_id="devices", info="How many processors train "
                                                                                   "together.")
        accumulation = gr.Number(1, label="Gradient accumulation steps",
                                 info="Batches added up before each update: a larger effective batch in the same "
                                      "memory.")
        checkpointing = gr.Checkbox(False, label="Gradient checkpointing",
                                    info="Less memory for slower steps (models that support it).")
    trackers = gr.CheckboxGroup([(tracker.name, key) for key, tracker in TRACKERS.items()], value=[],
                                label="Report to", elem_id="report-to",
                                info="Also send the training curves to these experiment trackers; their files stay "
                                     "in the workspace (`studio tensorboard` opens TensorBoard).")
    numbers = {"epochs": epochs, "batch_size": batch, "learning_rate": lr, "early_stopping_patience": patience,
               "devices": devices, "gradient_accumulation_steps": accumulation}
    return [*(Box("train", "train", key, box, float if key == "learning_rate" else int, *ranges[key])
              for key, box in numbers.items()),
            Box("train", "train", "retry_smaller_batch", retry, bool),
            Box("train", "train", "gradient_checkpointing", checkpointing, bool),
            Box("train", "train", "report_to", trackers, list)]


class StrategyTab:
    """The Strategy tab's components, and its handlers as methods."""

    def __init__(self, ctx, tab):
        self.ctx = ctx
        ctx.static(gr.Markdown("### 3. Choose how to adapt the model"))
        cluster_note.add(ctx, tab)
        self.advice_md = gr.Markdown(elem_id="recommendation")
        first = sessions.new_session()["recipe"]
        self.strategy = ctx.texts.keep_choices(gr.Radio(strategy_choices(first["task"]), value=first["strategy"],
                                                        label="Strategy", elem_id="strategy"))  # in the page's language
        with gr.Accordion("Advanced settings", open=False, elem_id="advanced"):
            self.boxes = _train_boxes()
            with gr.Row():
                self.boxes += [Box("option", "strategy_options", name, option_box(name, o), o.type, o.low, o.high)
                               for name, o in all_options().items()]
            with gr.Row():  # what some tasks read besides (chat models: tokens kept, packing, answers only)
                for f in all_fields().values():
                    section, key = f.key.split(".")
                    low, high = recipes.DATA_RANGES.get(key, (None, None)) if section == "data" else (None, None)
                    self.boxes.append(Box("field", section, key, field_box(f), f.type, low, high))
        self.sweep = SweepForm(ctx, self)
        with gr.Row():
            self.show = gr.Button("Show recipe", size="sm", elem_id="show-recipe")
            self.download = gr.DownloadButton("Download recipe", size="sm", visible=False)
        self.fix_note = gr.Markdown(elem_id="strategy-note")
        self.recipe_view = gr.Code(language="yaml", label="The recipe this run will use", visible=False,
                                   elem_id="recipe-yaml", max_lines=None)
        self.shown = gr.State({})  # what the boxes show on this page, by Box.name
        ctx.nav("data", "train")
        self.components = [b.component for b in self.boxes]
        self.devices_box = next(b for b in self.boxes if b.key == "devices").component
        self._wire(tab)

    def _wire(self, tab) -> None:
        ctx, session = self.ctx, self.ctx.session
        written = [*self.components, session, ctx.summary, self.shown]
        ctx.on(self.strategy.input, lambda name, state, before: self.show_strategy(state, name, before),
               [self.strategy, session, self.shown], written)
        for index, box in enumerate(self.boxes):  # numbers when the box is left (not at each key), ticks at once
            listen = box.component.blur if hasattr(box.component, "blur") else box.component.input
            ctx.on(listen, lambda state, name, *v, i=index: self.apply_one(i, state, name, *v),
                   [session, self.strategy, *self.components],
                   [box.component, self.fix_note, session, ctx.summary, self.shown])
        ctx.on(self.show.click, self.on_show, [session, self.strategy, *self.components],
               [self.fix_note, self.recipe_view, self.download, session, ctx.summary, self.shown])
        ctx.on(tab.select, self.on_open, [session, self.shown], [self.advice_md, self.strategy, *written])
        self.sweep.wire(tab)

    def settings(self, state, name: str, keep_settings: bool) -> dict:
        """The strategy's defaults (the session's own settings when keep_settings) written into the session; the
        values of the boxes this task and strategy show, by Box.name."""
        task = tasks.get(state["recipe"]["task"])
        spec = task.strategies[name]
        draft = state["recipe"]
        kept = draft["train"] if keep_settings else {k: v for k, v in draft["train"].items() if k in KEPT_TRAIN_KEYS}
        train = {**spec.defaults, **{k: v for k, v in kept.items() if v is not None}}
        options = {key: o.default for key, o in spec.options.items()}
        if keep_settings:
            options.update({k: v for k, v in draft["strategy_options"].items() if k in options})
        draft.update(strategy=name, train=train, strategy_options=options)
        values = {}
        for box in self.shown_boxes(task, spec):
            if box.kind == "option":
                values[box.name] = options[box.key]
            elif box.kind == "train":
                values[box.name] = train.get(box.key, getattr(recipes.TrainSpec(), box.key))
            else:
                value = draft[box.section].get(box.key) or task.data_defaults.get(box.key)
                values[box.name] = bool(value) if box.type is bool else value
        return values

    def shown_boxes(self, task, spec) -> list[Box]:
        fields = {f.key for f in task.fields}
        return [b for b in self.boxes if b.kind == "train" or (b.kind == "option" and b.key in spec.options)
                or (b.kind == "field" and b.name in fields)]

    def show_strategy(self, state, name, before, keep_settings=False, extra: dict | None = None) -> dict:
        values = self.settings(state, name, keep_settings)
        return {**box_updates(self.boxes, values, before, extra), self.ctx.session: state,
                self.ctx.summary: sessions.summary(state), self.shown: values}

    def apply(self, state, name, *entered) -> tuple[dict, list[str], dict]:
        """Writes the boxes' values into the session's recipe: ({Box.name: value as corrected}, notes, state). A
        value out of range is corrected in its box, with a note saying so; the recipe's own checks have the last
        word."""
        lang, draft = state["lang"], state["recipe"]
        task = tasks.get(draft["task"])
        spec = task.strategies[name]
        used = {b.name for b in self.shown_boxes(task, spec)}
        values, notes = {}, []
        candidate = dict(draft, strategy=name, train=dict(draft["train"]), data=dict(draft["data"]),
                         strategy_options={})
        for box, value in zip(self.boxes, entered):
            if box.name not in used:
                continue
            if box.type in (int, float) and box.low is not None:
                default = (spec.options[box.key].default if box.kind == "option" else
                           spec.defaults.get(box.key, task.data_defaults.get(
                               box.key, getattr(recipes.TrainSpec(), box.key, None))))
                value, note = corrected(tr(_words(box), lang), value, box.type, box.low, box.high, default, lang)
                notes += [note] if note else []
            elif box.type is bool:
                value = bool(value)
            values[box.name] = value
            candidate[box.section] = {**candidate[box.section], box.key: value}
        try:  # the recipe's own checks, with a stand-in data path when no data is chosen yet
            tasks.from_dict(dict(candidate, data=dict(candidate["data"], path=candidate["data"]["path"] or "-")))
        except recipes.RecipeError as exc:
            notes.append(str(exc))
        else:
            state["recipe"] = candidate
        return values, notes, state

    def apply_one(self, index, state, name, *entered):
        """One box left: only its own value is written back (writing all of them would undo what the person is
        typing in the next box)."""
        values, notes, state = self.apply(state, name, *entered)
        box = self.boxes[index]
        out = {self.fix_note: " ".join(notes), self.ctx.session: state, self.ctx.summary: sessions.summary(state),
               self.shown: {**values}}
        if box.name in values and values[box.name] != entered[index]:
            out[box.component] = values[box.name]
        return out

    def on_open(self, state, before):
        """The task may have changed on the Model tab: its menu, with the session's strategy chosen."""
        task = state["recipe"]["task"]
        name = state["recipe"]["strategy"] or tasks.get(task).default_strategy
        out = self.show_strategy(state, name, before, keep_settings=True,
                            extra={self.devices_box: {"info": devices_note(state["lang"])}})
        return {**out, self.advice_md: recommendation(state),
                self.strategy: gr.update(choices=strategy_choices(task, state["lang"]), value=name)}

    def on_show(self, state, name, *entered):
        # The boxes are read here too: an edit whose own event is still in flight must show up in the recipe.
        values, notes, state = self.apply(state, name, *entered)
        out = {self.fix_note: " ".join(notes), self.ctx.session: state, self.ctx.summary: sessions.summary(state),
               self.shown: values}
        try:
            recipe = tasks.resolved(sessions.build_recipe(state))
        except recipes.RecipeError as exc:
            return {**out, self.recipe_view: gr.update(value=f"# {exc}", visible=True),
                    self.download: gr.update(visible=False)}
        path = self.ctx.workspace.recipes_dir / f"recipe-{state['id']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        recipe.save(path)
        return {**out, self.recipe_view: gr.update(value=recipe.to_yaml(), visible=True),
                self.download: gr.update(value=str(path), visible=True)}


def build(ctx, tab) -> None:
    StrategyTab(ctx, tab)


def box_updates(boxes: list[Box], values: dict, before: dict, extra: dict | None = None) -> dict:
    """Each box shown (values holds it) or hidden; its value written only where it differs from what the page
    shows (`before`): a slow answer would otherwise undo a number typed meanwhile. extra: more properties per
    component."""
    out = {}
    for box in boxes:
        changes = {"visible": box.name in values, **(extra or {}).get(box.component, {})}
        if box.name in values and before.get(box.name) != values[box.name]:
            changes["value"] = values[box.name]
        out[box.component] = gr.update(**changes)
    return out


def _words(box: Box) -> str:
    return FIELD_WORDS.get(box.key) or box.component.label or box.key

"""Preference tuning's pipeline, read top to bottom: data (pairs, or answers marked good or bad) → the chat task's
start model, checked before loading, and its chat format → tokens → strategy → the start model's log-probabilities
of every answer (measured once with the adapter switched off, or before full fine-tuning changes the weights; kept
in the run folder so a resumed run uses the same) → the studio's loop with the preference loss → evaluation (tuned
vs start model, sample answers) → saved adapter or model, model card."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch

from studio import recipe as recipes
from studio.engine.callbacks import Callback, load_state_file, save_state, standard
from studio.engine.device import peak_memory_mb
from studio.engine.distributed import ShardedSampler, unwrap
from studio.engine.data.errors import DataError
from studio.engine.export import ExportError
from studio.engine.loop import Loop, LoopConfig, count_parameters
from studio.families.base import ModelError, ModelInfo
from studio.runfolder import DATA_REPORT, EVAL, EXAMPLES, HF_DIR, STATUS, RunFolder, read_json, write_json
from studio.tasks.instruction import evaluation, model
from studio.tasks.instruction import export as chat_export
from studio.tasks.instruction.card import write_card
from studio.tasks.instruction.chat import Chat
from studio.tasks.instruction.evaluation import rouge_l
from studio.tasks.instruction.pipeline import _examples, load_weights, start_model, trained_and_reported
from studio.tasks.instruction.preference_batches import Answers, Pairs, PreferenceCollate, measure_reference
from studio.tasks.instruction.preference_data import PreferenceData
from studio.tasks.instruction.preference_loss import PreferenceLoss, PreferenceMetrics, Settings, learnt_tokens
from studio.tasks.instruction.strategies import gradient_checkpointing
from studio.tasks.instruction.tokens import ChatFormat
from studio.words import said


CHAT_TASKS = ("instruction-tuning", "preference-tuning")  # runs whose model a preference run can start from


class StepFigures(Callback):
    """The reward accuracy and margin of each optimizer step's batches, for its step event."""

    def __init__(self, compute: PreferenceLoss):
        self.compute = compute

    def on_step_end(self, loop) -> None:
        loop.figures = self.compute.take_step_figures()


@dataclass
class Prepared:
    """Everything a run checks and builds before the strategy changes the model."""
    data: PreferenceData
    source: object  # causal_lm.Source
    tokenizer: object
    fmt: ChatFormat
    train_set: Pairs | Answers
    val_set: Pairs | Answers
    weights: object  # the start model, on the device


def prepare(task, recipe, workspace, device, log) -> Prepared:
    """The data, the start model's files (checked from its config alone), tokens and the weights on the device, as
    the chat task prepares them; errors in words."""
    data = task.load_data(recipe.data, recipe.train.seed, workspace.uploads_dir)
    recipe = start_from_run(recipe, workspace, log)
    source, tokenizer = start_model(task, recipe, workspace, device, data.report.warnings, log)
    fmt = ChatFormat(tokenizer, recipe.data.max_length)
    train_set, val_set = datasets(data, Settings.of(recipe.strategy_options), fmt, recipe.train.batch_size, log)
    return Prepared(data, source, tokenizer, fmt, train_set, val_set, load_weights(task, recipe, source, device, log))


def start_run(ref: str, run_dirs=()) -> RunFolder | None:
    """The completed chat run `ref` names (its folder, or its id among run_dirs); None when it names no run;
    ModelError in words for a run that cannot be the start model."""
    path = Path(ref).expanduser()
    named = [folder for folder in run_dirs if folder.name == ref]
    folder = path if (path / STATUS).is_file() else named[-1] if named else None
    if folder is None:
        return None
    run = RunFolder(folder)
    status = run.status()
    if status.get("task") not in CHAT_TASKS or status.get("status") != "completed":
        raise ModelError(f"'{ref}' is a run of {status.get('task')} whose status is {status.get('status')}. "
                         "Preference tuning starts from a chat model or a completed instruction-tuning run.")
    return run


def start_from_run(recipe, workspace, log):
    """A recipe whose model names a completed chat run (its id or folder) starts from that run's merged weights, its
    hf export (made once): the same recipe with that folder as its model. Any other recipe comes back as it is."""
    run = start_run(recipe.model, workspace.run_dirs())
    if run is None:
        return recipe
    merged = run.model_dir / HF_DIR
    if not (merged / "config.json").exists():
        log(said("Merging the adapter of run {run} into its base model: the start model", run=run.id))
        try:
            chat_export.hf(run)
        except ExportError as exc:
            raise ModelError(f"Run {run.id} cannot be the start model: {exc}") from None
    out = recipes.from_dict(recipes.to_dict(recipe))
    out.model = str(merged)
    return out


def train(task, ctx) -> dict:
    """Trains ctx's recipe start to finish (every rank of it); returns the figures status.json keeps."""
    recipe, run, events, dist = ctx.recipe, ctx.run, ctx.events, ctx.dist
    strategy, settings = task.strategies[recipe.strategy], Settings.of(recipe.strategy_options)
    log = lambda message: events.emit("log", message=message)  # noqa: E731
    p = prepare(task, recipe, ctx.workspace, ctx.device, log)
    report = p.data.report
    events.emit("data", classes=[], train=len(p.train_set), validation=len(p.val_set), skipped=len(report.skipped),
                warnings=report.warnings)
    conversations = p.data.conversations(p.data.val_items)  # each prompt with its better answer
    if dist.is_main:
        run.write(DATA_REPORT, report.to_dict())
        run.write(EXAMPLES, {"examples": _examples(SimpleNamespace(val_items=conversations, form="chat"), run)})
    trained_model, groups = strategy.prepare(p.weights, recipe)
    if recipe.train.gradient_checkpointing:
        log(gradient_checkpointing(trained_model, strategy))
    params = count_parameters(trained_model)
    events.emit("model", family=model.FAMILY, **params)
    compute = PreferenceLoss(trained_model, settings)
    collate = PreferenceCollate(p.tokenizer.pad_token_id)
    _reference(ctx, trained_model, compute, p.train_set, p.val_set, collate)
    loop, best = _loop(ctx, task, trained_model, groups, compute, p.train_set, p.val_set, collate)
    chat = Chat(unwrap(trained_model), p.fmt, ctx.device, p.data.system_prompt)
    base_answers = None if strategy.adapter else _base_answers(chat, conversations, run, ctx)
    result, figures = trained_and_reported(
        ctx, loop, best, unwrap(trained_model), p.tokenizer, p.source.path,
        lambda result: _report(loop, chat, conversations, result, params, ctx, base_answers, settings,
                               p.data.worse_answers(p.data.val_items)))
    if dist.is_main:
        run.write(EVAL, figures)
        _save(task, recipe, p, unwrap(trained_model), settings, run)
        run.last_state.unlink(missing_ok=True)  # finished: nothing left to resume
    dist.barrier()
    return {"val_loss": figures["loss"], **{k: figures.get(k) for k in ("reward_accuracy", "reward_margin",
                                                                         "preference_accuracy",
                                                                         "base_preference_accuracy")},
            "best_epoch": result["best_epoch"], "trainable_parameters": params["trainable"],
            "tokens_per_s": result.get("tokens_per_s")}


def _save(task, recipe, p: Prepared, trained_model, settings: Settings, run: RunFolder) -> None:
    """The tuned model as the chat task saves its own (it loads, chats and exports alike), and its card."""
    strategy = task.strategies[recipe.strategy]
    info = ModelInfo(model=recipe.model, family=model.FAMILY, arch=p.weights.config.model_type, task=task.name,
                     preprocessing={"base": p.source.path, "strategy": strategy.name, "form": "chat",
                                    "max_length": recipe.data.max_length, "train_on_prompt": False,
                                    "system_prompt": p.data.system_prompt, "eot": p.fmt.eot, "loss": settings.loss},
                     trust_remote_code=recipe.trust_remote_code)
    model.save(strategy, trained_model, p.tokenizer, info, run.model_dir)
    write_card(run)


def unpaired(items: list[dict]) -> list[dict]:
    """Pairs as KTO reads them: the chosen answer marked good, the rejected one bad, side by side (as trl's
    unpair_preference_dataset)."""
    return [{"prompt": p["prompt"], "completion": p[key], "label": key == "chosen", "pair": n}
            for n, p in enumerate(items) for key in ("chosen", "rejected")]


def datasets(data, settings: Settings, fmt: ChatFormat, batch_size: int, log):
    """(training, validation) examples as the loss reads them, with what did not fit reported in words."""
    if not data.paired and settings.loss != "kto":
        raise DataError(f"The data has answers marked good or bad one by one (columns "
                        f"{', '.join(data.report.columns.values())}), which only 'strategy_options.loss: kto' "
                        f"reads; '{settings.loss}' compares a better and a worse answer to the same prompt. Use kto, "
                        "or give prompt, chosen and rejected columns.")
    if settings.loss == "kto":
        train_items, val_items = (unpaired(x) if data.paired else x for x in (data.train_items, data.val_items))
        train_set, val_set = Answers(train_items, fmt, batch_size), Answers(val_items, fmt, batch_size)
    else:
        train_set, val_set = Pairs(data.train_items, fmt), Pairs(data.val_items, fmt)
    counts, words = train_set.counts + val_set.counts, []
    if counts["truncated"]:
        words.append(said("{n} example(s) were longer than {limit} tokens (data.max_length) and were cut from the "
                          "start of the prompt, so that the answer stays whole.", n=counts["truncated"],
                          limit=fmt.max_length))
    if counts["too_long"]:
        words.append(said("{n} example(s) were skipped because their answer alone is longer than {limit} tokens.",
                          n=counts["too_long"], limit=fmt.max_length))
    for sentence in words:
        data.report.warnings.append(sentence)
        log(sentence)
    if len(train_set) == 0 or len(val_set) == 0:
        raise ModelError(f"No {'training' if not len(train_set) else 'validation'} example fits in "
                         f"{fmt.max_length} tokens (data.max_length); raise it.")
    return train_set, val_set


def _reference(ctx, trained_model, compute: PreferenceLoss, train_set, val_set, collate) -> None:
    """The start model's log-probabilities of the answers: of the validation ones always (the base model's figures),
    of the training ones when the loss compares with a reference. Measured once per run."""
    run, batch_size = ctx.run, ctx.recipe.train.batch_size
    if run.reference.exists():
        saved = load_state_file(run.reference)
    else:
        ctx.events.emit("log", message=said("Measuring the start model's log-probabilities of the answers"))

        def measure(dataset):
            return measure_reference(trained_model, compute.logps, dataset, collate, batch_size, ctx.device,
                                     ctx.amp_dtype)
        saved = {"val": measure(val_set)}
        if compute.settings.needs_reference:
            saved["train"] = measure(train_set)
        if ctx.dist.is_main:
            run.checkpoints.mkdir(parents=True, exist_ok=True)
            save_state(run.reference, saved)
    val_set.reference = saved["val"]
    if "train" in saved:
        train_set.reference = saved["train"]


def _loop(ctx, task, trained_model, groups, compute, train_set, val_set, collate):
    t = ctx.recipe.train
    trained, groups = ctx.dist.wrap(trained_model, groups)
    common = dict(collate_fn=collate, num_workers=t.num_workers, pin_memory=ctx.device.type == "cuda",
                  persistent_workers=t.num_workers > 0, generator=torch.Generator().manual_seed(t.seed))
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=t.batch_size, **common,
                                               sampler=ShardedSampler(len(train_set), ctx.dist, shuffle=True,
                                                                      seed=t.seed))
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=t.batch_size, **common,
                                             sampler=ShardedSampler(len(val_set), ctx.dist, shuffle=False))
    loop = Loop(trained, groups, train_loader, val_loader,
                LoopConfig(epochs=t.epochs, device=ctx.device, amp_dtype=ctx.amp_dtype, weight_decay=t.weight_decay,
                           warmup_ratio=t.warmup_ratio, accumulation=t.gradient_accumulation_steps,
                           tokens=learnt_tokens),
                ctx.events, compute, PreferenceMetrics, ctx.cancel, dist=ctx.dist)
    loop.callbacks, best = standard(ctx.run, t.early_stopping_patience, task.best,
                                    extra=[StepFigures(compute), *ctx.callbacks])
    return loop, best


def _base_answers(chat: Chat, conversations: list, run: RunFolder, ctx) -> list[str]:
    """Full fine-tuning changes the start weights themselves: their answers are written before training (kept in
    the run folder, so a resumed run does not answer with the changed weights)."""
    if run.base_figures.exists():
        return read_json(run.base_figures)["answers"]
    answers = [s["tuned_answer"] for s in evaluation.samples(chat, conversations, "chat")] \
        if ctx.dist.is_main else []
    if ctx.dist.is_main:
        run.base_figures.parent.mkdir(parents=True, exist_ok=True)
        write_json(run.base_figures, {"answers": answers})
    return answers


def _report(loop, chat: Chat, conversations: list, result: dict, params: dict, ctx, base_answers, settings,
            worse: list[str]) -> dict:
    report = {**loop.evaluate(), "loss_name": settings.loss, "num_examples": len(loop.val_loader.dataset)}
    samples = evaluation.samples(chat, conversations, "chat", base_answers, ctx.cancel) if ctx.dist.is_main else []
    for sample, answer in zip(samples, worse):  # the pair's other reference, beside the better one
        sample.update(worse_reference=answer, worse_similarity=round(rouge_l(sample["tuned_answer"], answer), 4),
                      base_worse_similarity=round(rouge_l(sample["base_answer"], answer), 4))
    report.update(samples=samples, comparison=comparison_words(report), best_epoch=result["best_epoch"],
                  steps=result["steps"], history=result["history"], stopped_early=result["stopped_early"],
                  samples_per_s=result["samples_per_s"], tokens_per_s=result.get("tokens_per_s"),
                  trainable_parameters=params["trainable"], total_parameters=params["total"],
                  device=ctx.device.type, world_size=ctx.dist.world_size, peak_memory_mb=peak_memory_mb(ctx.device),
                  warnings=[])
    return report


def comparison_words(report: dict) -> str:
    """One sentence: how often the tuned and the start model give the better answer the higher probability."""
    if report.get("preference_accuracy") is None:
        return said("Reward accuracy on the validation answers: {accuracy}.",
                    accuracy=f"{report['reward_accuracy']:.0%}")
    return said("On the validation pairs the tuned model gives the better answer the higher probability in "
                "{tuned} of them (the start model: {base}); reward accuracy {accuracy}.",
                tuned=f"{report['preference_accuracy']:.0%}", base=f"{report['base_preference_accuracy']:.0%}",
                accuracy=f"{report['reward_accuracy']:.0%}")

"""Instruction tuning's pipeline, read top to bottom: data → model (checked to fit before loading) → tokens (chat
template, answers learnt) → strategy → loop → evaluation (tuned vs base, sample answers) → saved adapter or
model, model card. The strategy object answers every question about what to do."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from studio.engine.callbacks import load_state_file, standard
from studio.engine.device import peak_memory_mb, reset_peak_memory
from studio.engine.distributed import ShardedSampler, unwrap
from studio.engine.loop import Loop, LoopConfig, count_parameters
from studio.families import causal_lm
from studio.families.base import ModelError, ModelInfo
from studio.runfolder import DATA_REPORT, EVAL, EXAMPLES, EXAMPLES_DIR, RunFolder, read_json, write_json
from studio.tasks.instruction import data as chat_data
from studio.tasks.instruction import evaluation, general_knowledge, model
from studio.tasks.instruction.card import write_card
from studio.tasks.instruction.chat import Chat
from studio.tasks.instruction.loss import TokenLoss, TokenMetrics, packing_works
from studio.tasks.instruction.strategies import gradient_checkpointing
from studio.tasks.instruction.tokens import ChatFormat, Collate, Examples, learnt_tokens, tokenize
from studio.words import said

EXAMPLE_PROMPTS = 6  # held-out prompts the Playground offers


@dataclass
class Prepared:
    """Everything a run checks and builds before its first step."""
    data: chat_data.ChatData
    source: causal_lm.Source
    tokenizer: object
    fmt: ChatFormat
    train_tokens: list
    val_tokens: list
    model: object  # on the device


def trained_and_reported(ctx, loop, best, model, tokenizer, base_path: str, report) -> tuple[dict, dict]:
    """Trains to the end (from where a resumed run stopped), puts the best epoch's weights back and returns the
    loop's result and report(result) with the general-knowledge figures (the base one measured before training
    changes the weights)."""
    base_general = general_knowledge.base_loss(model, tokenizer, ctx.device, base_path,
                                               ctx.workspace.general_loss_cache, ctx.dist.is_main)
    if ctx.resume and ctx.run.last_state.exists():
        loop.restore(load_state_file(ctx.run.last_state))
    reset_peak_memory(ctx.device)
    result = loop.run()
    best.restore(loop)
    ctx.events.emit("log", message=said("Evaluating the tuned model and the base model on the validation examples"))
    figures = report(result)
    general_knowledge.add_to(figures, model, tokenizer, ctx.device, base_general)
    return result, figures


def train(task, ctx) -> dict:
    """Trains ctx's recipe start to finish (every rank of it); returns the figures status.json keeps."""
    recipe, run, events, dist = ctx.recipe, ctx.run, ctx.events, ctx.dist
    strategy = task.strategies[recipe.strategy]
    log = lambda message: events.emit("log", message=message)  # noqa: E731
    p = prepare(task, recipe, ctx.workspace, ctx.device, log)
    data = p.data
    events.emit("data", classes=[], train=len(data.train_items), validation=len(data.val_items),
                skipped=len(data.report.skipped), warnings=data.report.warnings)
    if dist.is_main:
        run.write(DATA_REPORT, data.report.to_dict())
        run.write(EXAMPLES, {"examples": _examples(data, run)})
    packing = recipe.train.packing and _packing_allowed(p.model, ctx.device, log)
    trained_model, groups = strategy.prepare(p.model, recipe)
    if recipe.train.gradient_checkpointing:
        log(gradient_checkpointing(trained_model, strategy))
    params = count_parameters(trained_model)
    events.emit("model", family=model.FAMILY, **params)
    loop, best = _loop(ctx, task, trained_model, groups, p, packing, log)
    chat = Chat(unwrap(trained_model), p.fmt, ctx.device, data.system_prompt)
    base = None if strategy.adapter else _base_before_training(loop, chat, data, run, ctx)
    result, report = trained_and_reported(ctx, loop, best, unwrap(trained_model), p.tokenizer, p.source.path,
                                          lambda result: _report(loop, chat, data, result, params, ctx, base,
                                                                 packing))
    if dist.is_main:
        run.write(EVAL, report)
        info = ModelInfo(model=recipe.model, family=model.FAMILY, arch=p.model.config.model_type, task=task.name,
                         preprocessing={"base": p.source.path, "strategy": strategy.name, "form": data.form,
                                        "max_length": recipe.data.max_length,
                                        "train_on_prompt": recipe.data.train_on_prompt,
                                        "system_prompt": data.system_prompt, "eot": p.fmt.eot},
                         trust_remote_code=recipe.trust_remote_code)
        model.save(strategy, unwrap(trained_model), p.tokenizer, info, run.model_dir)
        write_card(run)
        run.last_state.unlink(missing_ok=True)  # finished: nothing left to resume
    dist.barrier()
    return {"val_loss": report["loss"], "perplexity": report["perplexity"], "token_accuracy": report["accuracy"],
            "base_loss": report.get("base_loss"), "best_epoch": result["best_epoch"],
            "trainable_parameters": params["trainable"], "tokens_per_s": result.get("tokens_per_s")}


def prepare(task, recipe, workspace, device, log) -> Prepared:
    """Everything a run of this (resolved) recipe checks and builds before the strategy changes the model: the
    data, the model's files (checked from its config alone: it can chat, training it fits), tokens and the model on
    the device. Errors in words."""
    data = task.load_data(recipe.data, recipe.train.seed, workspace.uploads_dir)
    source, tokenizer = start_model(task, recipe, workspace, device, data.report.warnings, log)
    fmt = ChatFormat(tokenizer, recipe.data.max_length, recipe.data.train_on_prompt)
    train_tokens, counts = tokenize(data.train_items, data.form, fmt, workspace.datasets_dir)
    val_tokens, val_counts = tokenize(data.val_items, data.form, fmt, workspace.datasets_dir)
    _report_lengths(data, counts, val_counts, recipe.data.max_length, log)
    return Prepared(data, source, tokenizer, fmt, train_tokens, val_tokens, load_weights(task, recipe, source, device,
                                                                                         log))


def start_model(task, recipe, workspace, device, warnings: list, log):
    """(where the start model is, its tokenizer): checked from its config alone (it can chat, training it fits);
    a note about its chat template goes into `warnings` and the log."""
    strategy = task.strategies[recipe.strategy]
    source = causal_lm.resolve(recipe.model, task.name, workspace.models_dir, log)
    config = causal_lm.load_config(source.path, task.name, recipe.trust_remote_code)
    strategy.check_fits(recipe.model, causal_lm.parameter_count(config, recipe.trust_remote_code), device)
    tokenizer, note = causal_lm.load_tokenizer(source.path, task.name, recipe.trust_remote_code)
    if note:
        warnings.append(note)
        log(note)
    return source, tokenizer


def load_weights(task, recipe, source, device, log):
    """The start model's weights on the device, as the strategy keeps them."""
    strategy = task.strategies[recipe.strategy]
    log(said("Loading model {model}", model=recipe.model))
    weights = causal_lm.load_model(source.path, task.name, strategy.weights_dtype(device), strategy.quantized,
                                   recipe.trust_remote_code)
    if not strategy.quantized:  # a 4-bit model is placed on its GPU as it loads
        weights.to(device)
    return weights


def _loop(ctx, task, trained_model, groups, p: Prepared, packing: bool, log):
    t = ctx.recipe.train
    trained, groups = ctx.dist.wrap(trained_model, groups)
    train_set = Examples(p.train_tokens, ctx.recipe.data.max_length if packing else None)
    train_loader, val_loader = _loaders(ctx, train_set, Examples(p.val_tokens), p.tokenizer,
                                        _rows_per_batch(t.batch_size, train_set, packing, log))
    loop = Loop(trained, groups, train_loader, val_loader,
                LoopConfig(epochs=t.epochs, device=ctx.device, amp_dtype=ctx.amp_dtype, weight_decay=t.weight_decay,
                           warmup_ratio=t.warmup_ratio, accumulation=t.gradient_accumulation_steps,
                           tokens=learnt_tokens),
                ctx.events, TokenLoss(trained_model), TokenMetrics, ctx.cancel, dist=ctx.dist)
    loop.callbacks, best = standard(ctx.run, t.early_stopping_patience, task.best, extra=ctx.callbacks)
    return loop, best


def _examples(data, run: RunFolder) -> list[dict]:
    """Held-out prompts for the Playground to offer, each a text file in the run folder (examples/NNN.txt)."""
    folder = run.path / EXAMPLES_DIR
    folder.mkdir(exist_ok=True)
    picked = []
    for n, item in enumerate(data.val_items[:EXAMPLE_PROMPTS]):
        text = item[:200] if data.form == "text" else chat_data.prompt_and_reference(item)[0][-1]["content"]
        (folder / f"{n:03d}.txt").write_text(text, encoding="utf-8")
        picked.append({"input": f"{EXAMPLES_DIR}/{n:03d}.txt", "label": ""})
    return picked


def _report_lengths(data, counts: dict, val_counts: dict, max_length: int, log) -> None:
    """Rows over max_length, in words, into the data report."""
    report = data.report
    cut = counts.get("truncated", 0) + val_counts.get("truncated", 0)
    dropped = counts.get("too_long", 0) + val_counts.get("too_long", 0)
    split = counts.get("split", 0) + val_counts.get("split", 0)
    report.over_max_length = cut + dropped + split
    words = []
    if cut:
        words.append(said("{n} example(s) were longer than {limit} tokens (data.max_length) and were cut from the "
                          "start of the prompt, so that the answer stays whole.", n=cut, limit=max_length))
    if dropped:
        words.append(said("{n} example(s) were skipped because their answer alone is longer than {limit} tokens.",
                          n=dropped, limit=max_length))
    if split:
        words.append(said("{n} piece(s) of text come from texts longer than {limit} tokens, split to fit.",
                          n=split, limit=max_length))
    if counts.get("ok", 0) + counts.get("truncated", 0) + counts.get("split", 0) == 0:
        raise ModelError(f"No training example fits in {max_length} tokens (data.max_length); raise it.")
    for sentence in words:
        report.warnings.append(sentence)
        log(sentence)


def _packing_allowed(weights, device, log) -> bool:
    if packing_works(weights, device):
        log(said("Packing: several short examples share each sequence; none attends to another."))
        return True
    log(said("Packing is off: this {arch} model would let packed examples attend to each other.",
             arch=weights.config.model_type))
    return False


def _rows_per_batch(batch_size: int, train_set: Examples, packing: bool, log) -> int:
    """train.batch_size counts examples; packed, a step takes the rows that hold about as many (a batch of 8 full
    rows of 1024 tokens would be many times the work, and memory, of 8 short examples)."""
    if not packing:
        return batch_size
    examples = sum(len(row) for row in train_set.rows)
    rows = max(1, round(batch_size * len(train_set) / examples))
    log(said("Packing: {n} examples in {sequences} sequences; {rows} sequence(s) per step hold about {batch} "
             "examples.", n=examples, sequences=len(train_set), rows=rows, batch=batch_size))
    return rows


def _loaders(ctx, train_set, val_set, tokenizer, rows_per_batch: int):
    t = ctx.recipe.train
    collate = Collate(tokenizer.pad_token_id)
    common = dict(collate_fn=collate, num_workers=t.num_workers, pin_memory=ctx.device.type == "cuda",
                  persistent_workers=t.num_workers > 0, generator=torch.Generator().manual_seed(t.seed))
    train_loader = DataLoader(train_set, batch_size=rows_per_batch, **common,
                              sampler=ShardedSampler(len(train_set), ctx.dist, shuffle=True, seed=t.seed))
    val_loader = DataLoader(val_set, batch_size=t.batch_size, **common,
                            sampler=ShardedSampler(len(val_set), ctx.dist, shuffle=False))
    return train_loader, val_loader


def _base_before_training(loop, chat: Chat, data, run: RunFolder, ctx) -> dict:
    """Full fine-tuning changes the base weights themselves: the base model is measured before (kept in the run
    folder, so a resumed run does not measure the changed weights)."""
    if run.base_figures.exists():
        return read_json(run.base_figures)
    ctx.events.emit("log", message=said("Measuring the base model before its weights change"))
    figures = loop.evaluate(TokenMetrics())
    answers = [s["tuned_answer"] for s in evaluation.samples(chat, data.val_items, data.form)] \
        if ctx.dist.is_main else []
    base = {"loss": figures["loss"], "perplexity": figures["perplexity"], "accuracy": figures["accuracy"],
            "answers": answers}
    if ctx.dist.is_main:
        run.base_figures.parent.mkdir(parents=True, exist_ok=True)
        write_json(run.base_figures, base)
    return base


def _report(loop, chat: Chat, data, result: dict, params: dict, ctx, base: dict | None, packing: bool) -> dict:
    final = loop.evaluate(TokenMetrics())
    if base is None:  # the same weights with the adapter switched off
        with unwrap(loop.model).disable_adapter():
            base = loop.evaluate(TokenMetrics())
    report = {**final, "base_loss": base["loss"], "base_perplexity": base["perplexity"],
              "base_accuracy": base["accuracy"], "num_examples": len(data.val_items)}
    samples = []
    if ctx.dist.is_main:  # full fine-tuning: the base answered before training (base["answers"])
        samples = evaluation.samples(chat, data.val_items, data.form, base.get("answers"), ctx.cancel)
    note = evaluation.overfitting_note(result["history"], result["best_epoch"])
    report.update(samples=samples, comparison=evaluation.comparison_words(report),
                  best_epoch=result["best_epoch"], steps=result["steps"], history=result["history"],
                  stopped_early=result["stopped_early"], samples_per_s=result["samples_per_s"],
                  tokens_per_s=result.get("tokens_per_s"), trainable_parameters=params["trainable"],
                  total_parameters=params["total"], device=ctx.device.type, world_size=ctx.dist.world_size,
                  peak_memory_mb=peak_memory_mb(ctx.device), packing=packing, warnings=[note] if note else [])
    return report

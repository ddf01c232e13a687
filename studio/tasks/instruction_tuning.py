"""Instruction tuning: adapt a chat model to prompt→response data (or continue its pretraining on plain text) with
LoRA, QLoRA, DoRA, IA3, prompt or prefix tuning, or full fine-tuning; evaluate it against its base model; chat with
it. The pipeline: data → model (checked to fit before loading) → tokens (chat template, answers learnt) →
strategy → loop → evaluation (tuned vs base, sample answers) → saved adapter or model, model card."""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from studio import catalog, tasks
from studio.engine.callbacks import BestWeights, Checkpoint, EarlyStopping, load_state_file
from studio.engine.device import peak_memory_mb, reset_peak_memory
from studio.engine.distributed import ShardedSampler, unwrap
from studio.engine.loop import Loop, LoopConfig
from studio.examples import HELPDESK_CHAT
from studio.families import causal_lm
from studio.families.base import ModelError, ModelInfo
from studio.recipe import DataSpec, Recipe, RecipeError
from studio.runfolder import DATA_REPORT, EVAL, EXAMPLES, RunFolder
from studio.tasks import instruction_data, instruction_eval, instruction_model
from studio.tasks.base import ColumnChoice, Example, Task
from studio.tasks.instruction_chat import Chat
from studio.tasks.instruction_loss import TokenLoss, TokenMetrics, packing_works
from studio.tasks.instruction_peft import PROMPT_LEARNING, STRATEGIES, count_parameters, gradient_checkpointing, \
    prepare
from studio.tasks.instruction_tokens import ChatFormat, Collate, Examples, learnt_tokens, tokenize
from studio.tasks.instruction_tokens import preview as tokens_preview

BASE_FILE = "base.json"  # full fine-tuning: the base model's figures, measured before its weights change


class InstructionTuning(Task):
    name = "instruction-tuning"
    title = "Teach a chat model (instruction tuning)"
    modality = "text"
    strategies = STRATEGIES
    default_strategy = "lora"
    data_hint = ("a .csv or .jsonl file with prompt and response columns, JSON Lines of chat messages, or a text "
                 "column for continued pretraining")
    examples = (Example("helpdesk-chat", "help-desk answers (chat)", HELPDESK_CHAT),)
    # The columns are detected when none is chosen (instruction_data.columns_for); the pickers can override it.
    table_columns = (
        ColumnChoice("prompt_column", "Column with the prompts (questions)", instruction_data.PROMPT_GUESSES, False),
        ColumnChoice("response_column", "Column with the answers", instruction_data.RESPONSE_GUESSES, False),
        ColumnChoice("system_column", "Column with the system message (optional)", instruction_data.SYSTEM_GUESSES,
                     False),
        ColumnChoice("messages_column", "Column with whole chats (optional)", instruction_data.MESSAGES_GUESSES,
                     False))
    data_defaults = {"max_length": 1024}
    train_keys = ("packing",)
    cpu_tokens_per_s = 200.0  # SmolLM2-135M, LoRA, 2 CPU cores

    # -- the recipe ---------------------------------------------------------------------------------------------
    def data_keys(self, data: DataSpec) -> tuple[str, ...]:
        return ("prompt_column", "response_column", "system_column", "messages_column", "text_column",
                "max_length", "train_on_prompt")

    def check_recipe(self, recipe: Recipe) -> None:
        d, t, strategy = recipe.data, recipe.train, recipe.strategy or self.default_strategy
        if d.messages_column and (d.prompt_column or d.response_column or d.system_column):
            raise RecipeError("Recipe keys 'data.messages_column' and 'data.prompt_column'/'response_column' are "
                              "both set; give either a column of chat messages or prompt and response columns.")
        if d.system_column and not d.prompt_column:
            raise RecipeError("Recipe key 'data.system_column' is set without 'data.prompt_column'; the system "
                              "prompt goes with prompt and response columns.")
        if strategy == "qlora" and not _cuda_for(t.device):
            raise RecipeError("Strategy 'qlora' keeps the base model in 4 bits with bitsandbytes, which needs a CUDA "
                              "GPU, and this machine has none (or train.device says otherwise). Use 'lora': the "
                              "same adapters on the full-precision model.")
        if t.packing and strategy in PROMPT_LEARNING:
            raise RecipeError(f"Recipe key 'train.packing' cannot be used with '{strategy}': its virtual tokens "
                              "would be shared by every example packed into a sequence. Turn packing off.")
        if t.distributed == "fsdp" and strategy != "full":
            raise RecipeError(f"Recipe key 'train.distributed' is 'fsdp', which shards a model too big for one "
                              f"device; with '{strategy}' only a small adapter trains, so use ddp.")

    def check_model(self, model: str, trust_remote_code: bool = False) -> str:
        entry = catalog.find(model)
        if entry is not None and entry.family == "gguf":
            from studio.families.gguf import package_file
            package_file(entry)
            return f"{entry.title} from the {entry.package} package (works offline)."
        source = causal_lm.resolve(model, self.name, Path("."))
        config = causal_lm.load_config(source.path, self.name, trust_remote_code)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        causal_lm.check_fits(model, causal_lm.parameter_count(config, trust_remote_code), self.default_strategy,
                             device.type, causal_lm.available_gb(device))
        where = "this folder" if causal_lm.hf.looks_local(source.path) else "the Hugging Face hub (or its cache)"
        return f"a {config.model_type} chat model from {where}."

    def recommend(self, train_counts: dict[str, int], device_type: str) -> tuple[str, str]:
        if device_type == "cpu":
            examples = sum(train_counts.values())
            return "lora", (f"No GPU here: LoRA trains the small model at about {self.cpu_tokens_per_s:.0f} tokens "
                            f"a second, a few minutes for {examples} short examples; larger models need a GPU.")
        return "lora", "LoRA on all linear layers: the usual choice; QLoRA when the model barely fits the GPU."

    # -- data -----------------------------------------------------------------------------------------------------
    def accepts(self, path: Path) -> bool:
        return path.suffix.lower() in instruction_data.SUFFIXES

    def load_data(self, spec: DataSpec, seed: int, uploads_dir: Path) -> instruction_data.ChatData:
        return instruction_data.load(spec, seed)

    def preview(self, data, model: str, models_dir: Path, max_length: int | None = None,
                train_on_prompt: bool = False, trust_remote_code: bool = False) -> dict:
        """The Data tab's view of checked data through the model's tokenizer and chat template (plain data:
        pieces of text marked learnt or not, token lengths, counts); see instruction_tokens.preview."""
        source = causal_lm.resolve(model, self.name, models_dir)
        tokenizer, note = causal_lm.load_tokenizer(source.path, self.name, trust_remote_code)
        fmt = ChatFormat(tokenizer, max_length or self.data_defaults["max_length"], train_on_prompt)
        return {**tokens_preview(data.train_items + data.val_items, data.kind, fmt), "template_note": note,
                "duplicates": data.report.duplicates, "empty_responses": data.report.empty_responses}

    # -- training ---------------------------------------------------------------------------------------------------
    def prepare(self, recipe: Recipe, workspace, device: torch.device, log) -> tuple:
        """Everything a run checks and builds before its first step: (data, tokenizer, format, training tokens,
        validation tokens, model on the device). Errors in words: data, a model that cannot chat or does not
        fit (decided from its config, before any weight is read), a method the model cannot take."""
        data = self.load_data(recipe.data, recipe.train.seed, workspace.uploads_dir)
        source = self._checked_source(recipe, workspace, device, log)
        tokenizer, note = causal_lm.load_tokenizer(source.path, self.name, recipe.trust_remote_code)
        if note:
            data.report.warnings.append(note)
            log(note)
        fmt = ChatFormat(tokenizer, recipe.data.max_length, recipe.data.train_on_prompt)
        cache = workspace.root / "cache" / "datasets"
        train_tokens, counts = tokenize(data.train_items, data.kind, fmt, cache)
        val_tokens, val_counts = tokenize(data.val_items, data.kind, fmt, cache)
        self._report_lengths(data, counts, val_counts, recipe.data.max_length, log)
        log(f"Loading model {recipe.model}")
        model = causal_lm.load_model(source.path, self.name, instruction_model.weights_dtype(device, recipe.strategy),
                                     recipe.strategy == "qlora", recipe.trust_remote_code)
        if recipe.strategy != "qlora":
            model.to(device)
        return data, source, tokenizer, fmt, train_tokens, val_tokens, model

    def dry_run(self, recipe: Recipe, workspace) -> list[str]:
        """Checks a recipe as far as a run would go before training (the model built with its strategy): the
        data report's warnings and skipped rows, in words; UserError when it could not start."""
        data, *_, model = self.prepare(recipe, workspace, torch.device("cpu"), lambda message: None)
        prepare(model, recipe)
        return data.report.warnings + [f"{s['item']} ({s['reason']})" for s in data.report.skipped]

    # -- training ---------------------------------------------------------------------------------------------------
    def train(self, ctx) -> dict:
        recipe, run, events, dist = ctx.recipe, ctx.run, ctx.events, ctx.dist

        def log(message):
            events.emit("log", message=message)
        data, source, tokenizer, fmt, train_tokens, val_tokens, model = self.prepare(recipe, ctx.workspace,
                                                                                    ctx.device, log)
        events.emit("data", classes=[], train=len(data.train_items), validation=len(data.val_items),
                    skipped=len(data.report.skipped), warnings=data.report.warnings)
        if dist.is_main:
            run.write(DATA_REPORT, data.report.to_dict())
            run.write(EXAMPLES, {"examples": self._examples(data, run)})
        packing = recipe.train.packing and self._packing_allowed(model, ctx.device, log)
        model, groups = prepare(model, recipe)
        if recipe.train.gradient_checkpointing:
            log(gradient_checkpointing(model, recipe.strategy))
        params = count_parameters(model)
        events.emit("model", family=instruction_model.FAMILY, **params)
        compute = TokenLoss(model)
        trained, groups = dist.wrap(model, groups)
        t = recipe.train
        train_set = Examples(train_tokens, recipe.data.max_length if packing else None)
        train_loader, val_loader = self._loaders(ctx, train_set, Examples(val_tokens), tokenizer,
                                                 self._rows_per_batch(t.batch_size, train_set, packing, log))
        loop = Loop(trained, groups, train_loader, val_loader,
                    LoopConfig(epochs=t.epochs, device=ctx.device, amp_dtype=ctx.amp_dtype,
                               weight_decay=t.weight_decay, warmup_ratio=t.warmup_ratio,
                               accumulation=t.gradient_accumulation_steps, tokens=learnt_tokens),
                    events, compute, TokenMetrics, ctx.cancel, dist=dist)
        chat = Chat(unwrap(model), fmt, ctx.device, data.system_prompt)
        base = self._base_before_training(loop, chat, data, run, ctx) if recipe.strategy == "full" else None
        best = BestWeights(run.best_weights)
        loop.callbacks = [best, Checkpoint(run.last_state), EarlyStopping(t.early_stopping_patience),
                          *ctx.callbacks]
        if ctx.resume and run.last_state.exists():
            loop.restore(load_state_file(run.last_state))
        reset_peak_memory(ctx.device)
        result = loop.run()
        best.restore(loop)
        log("Evaluating the tuned model and the base model on the validation examples")
        report = self._report(loop, chat, data, result, params, ctx, base, packing)
        if dist.is_main:
            run.write(EVAL, report)
            info = ModelInfo(model=recipe.model, family=instruction_model.FAMILY, arch=model.config.model_type,
                             task=self.name, preprocessing={
                                 "base": source.path, "strategy": recipe.strategy, "kind": data.kind,
                                 "max_length": recipe.data.max_length, "train_on_prompt": recipe.data.train_on_prompt,
                                 "system_prompt": data.system_prompt, "eot": fmt.eot},
                             trust_remote_code=recipe.trust_remote_code)
            instruction_model.save(unwrap(model), tokenizer, info, run.model_dir)
            from studio.tasks.instruction_export import write_card
            write_card(self, run)
            run.last_state.unlink(missing_ok=True)  # finished: nothing left to resume
        dist.barrier()
        return {"val_loss": report["loss"], "perplexity": report["perplexity"],
                "token_accuracy": report["accuracy"], "base_loss": report.get("base_loss"),
                "best_epoch": result["best_epoch"], "trainable_parameters": params["trainable"],
                "tokens_per_s": result.get("tokens_per_s")}

    def _examples(self, data, run: RunFolder, count: int = 6) -> list[dict]:
        """Held-out prompts for the Playground to offer, each a text file in the run folder (examples/NNN.txt):
        the Playground finds a run's files, and so the run folder, from them."""
        folder = run.path / "examples"
        folder.mkdir(exist_ok=True)
        picked = []
        for n, item in enumerate(data.val_items[:count]):
            text = item[:200] if data.kind == "text" else instruction_data.prompt_and_reference(item)[0][-1]["content"]
            (folder / f"{n:03d}.txt").write_text(text, encoding="utf-8")
            picked.append({"input": f"examples/{n:03d}.txt", "label": ""})
        return picked

    def _checked_source(self, recipe: Recipe, workspace, device: torch.device, log) -> causal_lm.Source:
        """The model's files, after checking from its config alone that it can chat and that training it fits."""
        source = causal_lm.resolve(recipe.model, self.name, workspace.models_dir, log)
        config = causal_lm.load_config(source.path, self.name, recipe.trust_remote_code)
        params = causal_lm.parameter_count(config, recipe.trust_remote_code)
        causal_lm.check_fits(recipe.model, params, recipe.strategy, device.type, causal_lm.available_gb(device))
        return source

    def _report_lengths(self, data, counts: dict, val_counts: dict, max_length: int, log) -> None:
        """Rows over max_length, in words, into the data report."""
        report = data.report
        cut = counts.get("truncated", 0) + val_counts.get("truncated", 0)
        dropped = counts.get("too_long", 0) + val_counts.get("too_long", 0)
        split = counts.get("split", 0) + val_counts.get("split", 0)
        report.over_max_length = cut + dropped + split
        words = []
        if cut:
            words.append(f"{cut} example(s) were longer than {max_length} tokens (data.max_length) and were cut "
                         "from the start of the prompt, so that the answer stays whole")
        if dropped:
            words.append(f"{dropped} example(s) were skipped because their answer alone is longer than {max_length} "
                         "tokens")
        if split:
            words.append(f"{split} piece(s) of text come from texts longer than {max_length} tokens, split to fit")
        if counts.get("ok", 0) + counts.get("truncated", 0) + counts.get("split", 0) == 0:
            raise ModelError(f"No training example fits in {max_length} tokens (data.max_length); raise it.")
        for sentence in words:
            report.warnings.append(sentence + ".")
            log(sentence + ".")

    def _packing_allowed(self, model, device, log) -> bool:
        if packing_works(model, device):
            log("Packing: several short examples share each sequence; none attends to another.")
            return True
        log(f"Packing is off: this {model.config.model_type} model would let packed examples attend to each other.")
        return False

    def _rows_per_batch(self, batch_size: int, train_set: Examples, packing: bool, log) -> int:
        """train.batch_size counts examples; packed, a step takes the rows that hold about as many (a batch of 8
        full rows of 1024 tokens would be many times the work, and memory, of 8 short examples)."""
        if not packing:
            return batch_size
        examples = sum(len(row) for row in train_set.rows)
        rows = max(1, round(batch_size * len(train_set) / examples))
        log(f"Packing: {examples} examples in {len(train_set)} sequences; {rows} sequence(s) per step hold about "
            f"{batch_size} examples.")
        return rows

    def _loaders(self, ctx, train_set, val_set, tokenizer, rows_per_batch: int):
        t = ctx.recipe.train
        collate = Collate(tokenizer.pad_token_id)
        common = dict(collate_fn=collate, num_workers=t.num_workers, pin_memory=ctx.device.type == "cuda",
                      persistent_workers=t.num_workers > 0, generator=torch.Generator().manual_seed(t.seed))
        train = DataLoader(train_set, batch_size=rows_per_batch, **common,
                           sampler=ShardedSampler(len(train_set), ctx.dist, shuffle=True, seed=t.seed))
        val = DataLoader(val_set, batch_size=t.batch_size, **common,
                         sampler=ShardedSampler(len(val_set), ctx.dist, shuffle=False))
        return train, val

    def _base_before_training(self, loop, chat: Chat, data, run: RunFolder, ctx) -> dict:
        """Full fine-tuning changes the base weights themselves: the base model is measured before (kept in the
        run folder, so a resumed run does not measure the changed weights)."""
        path = run.checkpoints / BASE_FILE
        if path.exists():
            return run.read(f"{path.parent.name}/{path.name}")
        ctx.events.emit("log", message="Measuring the base model before its weights change")
        figures = loop.evaluate(TokenMetrics())
        answers = [s["tuned_answer"] for s in instruction_eval.samples(chat, data.val_items, data.kind)] \
            if ctx.dist.is_main else []
        base = {"loss": figures["loss"], "perplexity": figures["perplexity"], "accuracy": figures["accuracy"],
                "answers": answers}
        if ctx.dist.is_main:
            path.parent.mkdir(parents=True, exist_ok=True)
            run.write(f"{path.parent.name}/{path.name}", base)
        return base

    def _report(self, loop, chat: Chat, data, result: dict, params: dict, ctx, base: dict | None,
                packing: bool) -> dict:
        final = loop.evaluate(TokenMetrics())
        if base is None:  # the same weights with the adapter switched off
            with unwrap(loop.model).disable_adapter():
                base = loop.evaluate(TokenMetrics())
        report = {**final, "base_loss": base["loss"], "base_perplexity": base["perplexity"],
                  "base_accuracy": base["accuracy"], "num_examples": len(data.val_items)}
        samples = []
        if ctx.dist.is_main:  # full fine-tuning: the base answered before training (base["answers"])
            samples = instruction_eval.samples(chat, data.val_items, data.kind, base.get("answers"), ctx.cancel)
        note = instruction_eval.overfitting_note(result["history"], result["best_epoch"])
        report.update(samples=samples, comparison=instruction_eval.comparison_words(report),
                      best_epoch=result["best_epoch"], steps=result["steps"], history=result["history"],
                      stopped_early=result["stopped_early"], samples_per_s=result["samples_per_s"],
                      tokens_per_s=result.get("tokens_per_s"), trainable_parameters=params["trainable"],
                      total_parameters=params["total"], device=ctx.device.type, world_size=ctx.dist.world_size,
                      peak_memory_mb=peak_memory_mb(ctx.device), packing=packing, warnings=[note] if note else [])
        return report

    # -- a trained model ------------------------------------------------------------------------------------------
    def predictor(self, folder: Path):
        return instruction_model.Predictor(folder)

    def chat(self, folder: Path):
        """The saved model ready to converse (`studio chat`): Chat.messages / answer / stream."""
        return instruction_model.load(folder, with_base=False)

    def check_input(self, value: str) -> str | None:
        return None if value.strip() else "the message is empty"

    @property
    def exports(self):
        from studio.tasks.instruction_export import EXPORTS
        return EXPORTS

    def model_card(self, run: RunFolder) -> str:
        from studio.tasks.instruction_export import render
        return render(self, run)


def _cuda_for(device: str) -> bool:
    if device in ("cpu", "mps"):
        return False
    return torch.cuda.is_available()


TASK = InstructionTuning()
tasks.register(TASK)

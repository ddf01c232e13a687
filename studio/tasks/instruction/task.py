"""Instruction tuning: adapt a chat model to prompt→response data (or continue its pretraining on plain text) with
LoRA, QLoRA, DoRA, IA3, prompt or prefix tuning, or full fine-tuning; evaluate it against its base model; chat with
it. The training pipeline is in pipeline.py."""
from __future__ import annotations

from pathlib import Path

import torch

from studio import catalog, tasks
from studio.assets import HELPDESK_CHAT
from studio.engine.device import machine_memory
from studio.families import causal_lm
from studio.recipe import DataSpec, Recipe, RecipeError
from studio.runfolder import EXAMPLES, RunFolder
from studio.tasks.base import TOKENS_KEPT, ColumnChoice, Example, Export, Field, Metric, Task
from studio.tasks.instruction import data as chat_data
from studio.tasks.instruction import export, model, pipeline
from studio.tasks.instruction.strategies import STRATEGIES
from studio.tasks.instruction.tokens import ChatFormat
from studio.tasks.instruction.tokens import preview as tokens_preview
from studio.engine.data.tables import TABLE_SUFFIXES
from studio.families.gguf import package_file
from studio.words import said


class InstructionTuning(Task):
    name = "instruction-tuning"
    title = "Teach a chat model (instruction tuning)"
    modality = "text"
    view = "chat"  # the page parts that show conversations (studio/ui/panels)
    strategies = STRATEGIES
    default_strategy = "lora"
    data_hint = ("a .csv or .jsonl file with prompt and response columns, JSON Lines of chat messages, or a text "
                 "column for continued pretraining")
    examples = (Example("helpdesk-chat", "help-desk answers (chat)", HELPDESK_CHAT),)
    # The columns are detected when none is chosen (data.columns_for); the pickers can override it.
    table_columns = (
        ColumnChoice("prompt_column", "Column with the prompts (questions)", chat_data.PROMPT_GUESSES, False),
        ColumnChoice("response_column", "Column with the answers", chat_data.RESPONSE_GUESSES, False),
        ColumnChoice("system_column", "Column with the system message (optional)", chat_data.SYSTEM_GUESSES,
                     False),
        ColumnChoice("messages_column", "Column with whole chats (optional)", chat_data.MESSAGES_GUESSES, False))
    essential_columns = (("prompt_column", "response_column"), ("messages_column",))
    data_defaults = {"max_length": 1024}
    train_keys = ("packing",)
    headline = Metric("perplexity", "perplexity", higher_is_better=False,
                      explain="how surprised the model is by the held-back answers: lower is better")
    curves = (Metric("accuracy", "answer tokens predicted exactly", percent=True,
                     explain="the share of the held-back answers' tokens the model predicts exactly"),)
    fields = (TOKENS_KEPT,
              Field("train.packing", "Pack short examples together",
                    "Several short examples share one row without seeing each other: faster, same result.", bool),
              Field("data.train_on_prompt", "Learn the prompts too",
                    "Off: the model learns only to write the answers (the usual choice).", bool))
    comparisons = ("full",)
    served_as = "chat"
    exports = (Export("adapter", "Adapter alone (peft folder), zipped", export.adapter),
               Export("hf", "Transformers (pipeline) folder, zipped", export.hf),
               Export("zip", "Model folder (.zip)", export.model_zip),
               Export("gguf", "GGUF for llama.cpp and Ollama (8-bit), with a Modelfile, zipped", export.gguf,
                      export.gguf_refused, export.gguf_size))
    cpu_tokens_per_s = 200.0  # SmolLM2-135M, LoRA, 2 CPU cores

    # -- the recipe ---------------------------------------------------------------------------------------------
    def data_keys(self, data: DataSpec) -> tuple[str, ...]:
        return ("prompt_column", "response_column", "system_column", "messages_column", "text_column",
                "max_length", "train_on_prompt")

    def check_recipe(self, recipe: Recipe) -> None:
        d = recipe.data
        if d.messages_column and (d.prompt_column or d.response_column or d.system_column):
            raise RecipeError("Recipe keys 'data.messages_column' and 'data.prompt_column'/'response_column' are "
                              "both set; give either a column of chat messages or prompt and response columns.")
        if d.system_column and not d.prompt_column:
            raise RecipeError("Recipe key 'data.system_column' is set without 'data.prompt_column'; the system "
                              "prompt goes with prompt and response columns.")

    def check_model(self, model: str, trust_remote_code: bool = False) -> str:
        entry = catalog.find(model)
        if entry is not None and entry.family == "gguf":
            package_file(entry)
            return f"{entry.title} from the {entry.package} package (works offline)."
        source = causal_lm.resolve(model, self.name, Path("."))
        config = causal_lm.load_config(source.path, self.name, trust_remote_code)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.strategies[self.default_strategy].check_fits(model, causal_lm.parameter_count(config, trust_remote_code),
                                                          device)
        where = "this folder" if causal_lm.hf.looks_local(source.path) else "the Hugging Face hub (or its cache)"
        return f"a {config.model_type} chat model from {where}."

    def recommend(self, train_counts: dict[str, int], device_type: str) -> tuple[str, str]:
        if device_type == "cpu":
            examples = sum(train_counts.values())
            return "lora", said("No GPU here: LoRA trains the small model at about {rate} tokens a second, a few "
                                "minutes for {n} short examples; larger models need a GPU.",
                                rate=f"{self.cpu_tokens_per_s:.0f}", n=examples)
        return "lora", said("LoRA on all linear layers: the usual choice; QLoRA when the model barely fits the GPU.")

    def memory_needs(self, params_m: float) -> dict | None:
        """What training a model of params_m million parameters takes: {"gpu": [(strategy words, GB on a GPU)]
        for strategies that differ, "here": GB the default strategy needs on this machine, "have": GB it has}."""
        params, gpu, seen = params_m * 1e6, [], set()
        for strategy in self.strategies.values():
            gb = strategy.memory_gb(params, "cuda")
            if gb not in seen:
                seen.add(gb)
                gpu.append((strategy.words, gb))
        device, have = machine_memory()
        return {"gpu": gpu, "here": self.strategies[self.default_strategy].memory_gb(params, device),
                "have": round(have)}

    # -- data -----------------------------------------------------------------------------------------------------
    def accepts(self, path: Path) -> bool:
        return path.suffix.lower() in TABLE_SUFFIXES

    def load_data(self, spec: DataSpec, seed: int, uploads_dir: Path) -> chat_data.ChatData:
        return chat_data.load(spec, seed)

    def preview(self, data, model: str, models_dir: Path, max_length: int | None = None,
                train_on_prompt: bool = False, trust_remote_code: bool = False, log=None) -> dict:
        """The Data tab's view of checked data through the model's tokenizer and chat template (plain data:
        pieces of text marked learnt or not, token lengths, counts); see tokens.preview. log(words): what takes a
        while (a packaged model converted once for the workspace)."""
        source = causal_lm.resolve(model, self.name, models_dir, log or (lambda message: None))
        tokenizer, note = causal_lm.load_tokenizer(source.path, self.name, trust_remote_code)
        fmt = ChatFormat(tokenizer, max_length or self.data_defaults["max_length"], train_on_prompt)
        return {**tokens_preview(data.train_items + data.val_items, data.form, fmt), "template_note": note,
                "duplicates": data.report.duplicates, "empty_responses": data.report.empty_responses}

    # -- training ---------------------------------------------------------------------------------------------------
    def train(self, ctx) -> dict:
        return pipeline.train(self, ctx)

    # -- a trained model ------------------------------------------------------------------------------------------
    def predictor(self, folder: Path):
        return model.Predictor(folder)

    def chat(self, folder: Path):
        return model.load(folder, with_base=False)

    def example_inputs(self, run: RunFolder) -> list[str]:
        """The held-out prompts the run saved, one text file each (examples/NNN.txt)."""
        listed = [e["input"] for e in (run.read(EXAMPLES) or {}).get("examples", [])]
        return [(run.path / e).read_text(encoding="utf-8") for e in listed]

    def check_input(self, value: str) -> str | None:
        return None if value.strip() else "the message is empty"


TASK = InstructionTuning()
tasks.register(TASK)

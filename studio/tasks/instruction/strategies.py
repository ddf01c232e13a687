"""How a chat model learns, one class per strategy: peft for every parameter-efficient method (LoRA, QLoRA on a
4-bit NF4 base, DoRA, IA3, prompt tuning, prefix tuning), or every weight (full). Each says what trains, the
memory it needs, what it can be combined with and exported as, and how its model is saved and loaded back."""
from __future__ import annotations

from pathlib import Path

import torch

from studio.engine.device import GB, available_gb
from studio.errors import first_line
from studio.families.base import ModelError
from studio.recipe import Recipe, RecipeError
from studio.runfolder import ADAPTER_DIR
from studio.tasks.base import Option, Strategy
from studio.words import said

LORA_OPTIONS = {"lora_r": Option(int, 16, 1, 1024, words="LoRA rank"),
                "lora_alpha": Option(float, 32.0, 0.1, 4096.0, words="LoRA alpha"),
                "lora_dropout": Option(float, 0.05, 0.0, 0.9, words="LoRA dropout"),
                "target_modules": Option(str, "all-linear", words="Layers to adapt",
                                         info="all-linear, or layer names separated by commas")}
MERGED_FORMATS = ("hf", "gguf")  # exports that fold the adapter into the base's weights
VIRTUAL = {"num_virtual_tokens": Option(int, 20, 1, 512, words="Virtual tokens")}


def _linear_names(model) -> list[str]:
    from torch import nn
    names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules()
             if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D"}
    return sorted(names)


def _targets(value: str):
    value = value.strip()
    return value if value == "all-linear" else [t.strip() for t in value.split(",") if t.strip()]


class ChatStrategy(Strategy):
    """A peft adapter on a frozen base (subclasses say which); Full overrides what differs."""
    adapter = True  # the base stays frozen and the saved model is the adapter alone
    mergeable = True  # the adapter folds into the base's weights (the hf export)
    packs = True  # several examples can share a sequence
    # Bytes per parameter while training, by device: the frozen weights (bf16 on a GPU, fp32 on a CPU); full
    # fine-tuning adds gradients and AdamW's two moments in fp32. Activations and the runtime add about a third and
    # a fixed 1 GB (batch 8 of a few hundred tokens).
    bytes_per_parameter = {"cuda": 2.0, "cpu": 4.0}

    def check(self, recipe: Recipe) -> None:
        if recipe.train.distributed == "fsdp":
            raise RecipeError(f"Recipe key 'train.distributed' is 'fsdp', which shards a model too big for one "
                              f"device; with '{self.name}' only a small adapter trains, so use ddp.")
        if recipe.train.packing and not self.packs:
            raise RecipeError(f"Recipe key 'train.packing' cannot be used with '{self.name}': its virtual tokens "
                              "would be shared by every example packed into a sequence. Turn packing off.")

    def export_refused(self, fmt: str) -> str | None:
        return None

    def memory_gb(self, params: float, device: str) -> float:
        """About how much memory training a model of `params` parameters takes on this device (GB)."""
        per = self.bytes_per_parameter["cuda" if device == "cuda" else "cpu"]
        return round(params * per * 1.3 / GB + 1.0, 1)

    def check_fits(self, ref: str, params: int, device: torch.device) -> None:
        """Refuses, with the numbers, a model whose training would not fit the memory it would run in."""
        need, have = self.memory_gb(params, device.type), available_gb(device)
        if need > have:
            where = "the GPU's memory" if device.type == "cuda" else "this computer's memory"
            smaller = "qlora on a GPU, " if device.type == "cuda" and not self.quantized else ""
            raise ModelError(f"'{ref}' has {params / 1e9:.2f} billion parameters: training it with {self.name} "
                             f"needs about {need:g} GB, but {where} is {have:.1f} GB. Choose a smaller model, "
                             f"{smaller}or a machine with more memory.")

    def weights_dtype(self, device: torch.device) -> torch.dtype:
        """bf16 for a frozen base on a GPU that has it (half the memory; autocast computes in bf16 anyway); fp32
        on a CPU."""
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32

    quantized = False  # the base is loaded in 4 bits (QLoRA)

    def peft_config(self, recipe: Recipe, model):
        raise NotImplementedError

    def prepare(self, model, recipe: Recipe):
        """(the model to train, the optimizer's parameter groups): adapters added by peft, the base frozen.
        ModelError in words when the method does not fit this model."""
        import peft
        try:
            model = peft.get_peft_model(model, self.peft_config(recipe, model))
        except (ValueError, TypeError, KeyError, AttributeError, NotImplementedError) as exc:
            kind = getattr(model.config, "model_type", "this")
            text = first_line(exc)
            if "not found in the base model" in text or "target_modules" in text:
                raise ModelError(f"Recipe key 'strategy_options.target_modules' names layers this {kind} model "
                                 f"does not have ({text}). Its linear layers are: {', '.join(_linear_names(model))};"
                                 " or use 'all-linear'.") from None
            raise ModelError(f"The strategy '{self.name}' cannot be applied to this {kind} model ({text}). "
                             "Choose lora, which works with every model the studio loads.") from None
        trainable = [p for p in model.parameters() if p.requires_grad]
        return model, [{"params": trainable, "lr": recipe.train.learning_rate, "name": self.name}]

    def save(self, model, folder: Path) -> None:
        model.save_pretrained(folder / ADAPTER_DIR)  # peft: adapter_config.json + adapter_model.safetensors

    def load(self, folder: Path, base_ref: str, dtype):
        """The saved model ready to answer: the adapter on its base."""
        from peft import PeftModel
        from transformers import AutoModelForCausalLM
        return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_ref, dtype=dtype),
                                         str(folder / ADAPTER_DIR))

    def merged(self, folder: Path, base_ref: str):
        """The whole model in fp32, the adapter folded into its weights (the hf export)."""
        from peft import PeftModel
        from transformers import AutoModelForCausalLM
        base = AutoModelForCausalLM.from_pretrained(base_ref, dtype=torch.float32)
        return PeftModel.from_pretrained(base, str(folder / ADAPTER_DIR)).merge_and_unload()

    how_to_load = ('from peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n\n'
                   'model = AutoPeftModelForCausalLM.from_pretrained("adapter")  # reads the base model it was '
                   'trained on\ntokenizer = AutoTokenizer.from_pretrained(".")\n'
                   '# or, after `studio export RUN --format hf`: pipeline("text-generation", model="hf")')


class Lora(ChatStrategy):
    dora = False

    def peft_config(self, recipe, model):
        import peft
        return peft.LoraConfig(task_type=peft.TaskType.CAUSAL_LM, r=recipe.option("lora_r"),
                               lora_alpha=recipe.option("lora_alpha"), lora_dropout=recipe.option("lora_dropout"),
                               use_dora=self.dora, bias="none",
                               target_modules=_targets(recipe.option("target_modules")))


class Dora(Lora):
    dora = True


class QLora(Lora):
    quantized = True
    mergeable = False
    bytes_per_parameter = {"cuda": 0.6, "cpu": 0.6}

    def check(self, recipe):
        super().check(recipe)
        if recipe.train.device in ("cpu", "mps") or not torch.cuda.is_available():
            raise RecipeError("Strategy 'qlora' keeps the base model in 4 bits with bitsandbytes, which needs a CUDA "
                              "GPU, and this machine has none (or train.device says otherwise). Use 'lora': the "
                              "same adapters on the full-precision model.")

    def export_refused(self, fmt):
        if fmt in MERGED_FORMATS:
            return ("A QLoRA adapter was trained against a 4-bit base; merging it into full-precision weights "
                    "changes its answers. Export the adapter, or train with lora to merge.")
        return None

    def prepare(self, model, recipe):
        import peft
        model = peft.prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=recipe.train.gradient_checkpointing)
        return super().prepare(model, recipe)


class IA3(ChatStrategy):
    def peft_config(self, recipe, model):
        import peft
        targets = recipe.option("target_modules")
        if targets == "auto":
            return peft.IA3Config(task_type=peft.TaskType.CAUSAL_LM)
        return peft.IA3Config(task_type=peft.TaskType.CAUSAL_LM, target_modules=_targets(targets),
                              feedforward_modules=[])


class PromptTuning(ChatStrategy):
    packs = False
    mergeable = False

    def peft_config(self, recipe, model):
        import peft
        return peft.PromptTuningConfig(task_type=peft.TaskType.CAUSAL_LM,
                                       num_virtual_tokens=recipe.option("num_virtual_tokens"))

    def export_refused(self, fmt):
        if fmt in MERGED_FORMATS:
            return (f"{self.words} adds learnt virtual tokens in front of every prompt, which no plain transformers "
                    "model has, so it cannot be merged. Export the adapter (peft loads it on the base model), or "
                    "train with lora to get a mergeable model.")
        return None


class PrefixTuning(PromptTuning):
    def peft_config(self, recipe, model):
        import peft
        return peft.PrefixTuningConfig(task_type=peft.TaskType.CAUSAL_LM,
                                       num_virtual_tokens=recipe.option("num_virtual_tokens"))


class Full(ChatStrategy):
    adapter = False
    bytes_per_parameter = {"cuda": 16.0, "cpu": 16.0}
    how_to_load = ('from transformers import pipeline\n\nchat = pipeline("text-generation", model=".")\n'
                   'print(chat([{"role": "user", "content": "Hello"}], max_new_tokens=100))')

    def check(self, recipe):
        pass  # every weight trains: FSDP and packing both suit it

    def export_refused(self, fmt):
        if fmt == "adapter":
            return ("This run fine-tuned every weight, so there is no adapter to export; use --format hf for the "
                    "whole model.")
        return None

    def weights_dtype(self, device):
        return torch.float32  # its optimizer needs full-precision weights

    def prepare(self, model, recipe):
        model.requires_grad_(True)
        return model, [{"params": list(model.parameters()), "lr": recipe.train.learning_rate, "name": "all"}]

    def save(self, model, folder):
        model.save_pretrained(folder)

    def load(self, folder, base_ref, dtype):
        from transformers import AutoModelForCausalLM
        return AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)

    def merged(self, folder, base_ref):
        from transformers import AutoModelForCausalLM
        return AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)


# Adapter methods learn fast at a high rate; full fine-tuning moves every pretrained weight and needs a low one.
STRATEGIES = {s.name: s for s in (
    Lora("lora", "LoRA (all linear layers)",
         "small trainable matrices beside every linear layer; the usual choice, almost as good as full "
         "fine-tuning for a fraction of the memory.", {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3},
         LORA_OPTIONS),
    QLora("qlora", "QLoRA (4-bit base, GPU)",
          "LoRA on a base model stored in 4 bits: a 7B model trains on a 16 GB GPU. Needs a CUDA GPU.",
          {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3}, LORA_OPTIONS),
    Dora("dora", "DoRA",
         "LoRA that learns each weight's direction and size apart; sometimes better at low ranks, a little "
         "slower.", {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3}, LORA_OPTIONS),
    IA3("ia3", "IA3",
        "learns a scale for some activations: the fewest trained weights of all, for light adaptation.",
        {"epochs": 3, "batch_size": 8, "learning_rate": 3e-3},
        {"target_modules": Option(str, "auto", words="Layers to adapt",
                                  info="auto, or layer names separated by commas")}),
    PromptTuning("prompt-tuning", "Prompt tuning",
                 "learns a few 'virtual tokens' put before every prompt; the model itself is untouched.",
                 {"epochs": 3, "batch_size": 8, "learning_rate": 3e-2}, VIRTUAL),
    PrefixTuning("prefix-tuning", "Prefix tuning",
                 "learns virtual keys and values in every attention layer; more capacity than prompt tuning.",
                 {"epochs": 3, "batch_size": 8, "learning_rate": 1e-2}, VIRTUAL),
    Full("full", "Full fine-tuning",
         "every weight learns: the most capacity, and the most memory (about 16 bytes per parameter).",
         {"epochs": 3, "batch_size": 8, "learning_rate": 2e-5}),
)}


def gradient_checkpointing(model, strategy: ChatStrategy) -> str:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(base, "supports_gradient_checkpointing", False):
        return said("Gradient checkpointing is not available for this model; training goes on without it.")
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if strategy.adapter and hasattr(base, "enable_input_require_grads"):
        base.enable_input_require_grads()  # a frozen embedding would otherwise cut the recomputed graph
    return said("Gradient checkpointing is on: less memory, about a third slower.")

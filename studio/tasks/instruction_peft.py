"""What trains under each instruction-tuning strategy, through peft for every parameter-efficient method: LoRA,
QLoRA (LoRA on a 4-bit NF4 base, CUDA only), DoRA, IA3, prompt tuning, prefix tuning; or every weight (full)."""
from __future__ import annotations

from studio.errors import first_line
from studio.families.base import ModelError
from studio.tasks.base import Strategy

LORA_OPTIONS = {"lora_r": (int, 16, 1, 1024), "lora_alpha": (float, 32.0, 0.1, 4096.0),
                "lora_dropout": (float, 0.05, 0.0, 0.9), "target_modules": (str, "all-linear", None, None)}
VIRTUAL = {"num_virtual_tokens": (int, 20, 1, 512)}
# Adapter methods learn fast at a high rate; full fine-tuning moves every pretrained weight and needs a low one.
STRATEGIES = {s.name: s for s in (
    Strategy("lora", "LoRA (all linear layers)",
             "small trainable matrices beside every linear layer; the usual choice, almost as good as full "
             "fine-tuning for a fraction of the memory.",
             {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3}, LORA_OPTIONS),
    Strategy("qlora", "QLoRA (4-bit base, GPU)",
             "LoRA on a base model stored in 4 bits: a 7B model trains on a 16 GB GPU. Needs a CUDA GPU.",
             {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3}, LORA_OPTIONS),
    Strategy("dora", "DoRA",
             "LoRA that learns each weight's direction and size apart; sometimes better at low ranks, a little "
             "slower.", {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3}, LORA_OPTIONS),
    Strategy("ia3", "IA3",
             "learns a scale for some activations: the fewest trained weights of all, for light adaptation.",
             {"epochs": 3, "batch_size": 8, "learning_rate": 3e-3},
             {"target_modules": (str, "auto", None, None)}),
    Strategy("prompt-tuning", "Prompt tuning",
             "learns a few 'virtual tokens' put before every prompt; the model itself is untouched.",
             {"epochs": 3, "batch_size": 8, "learning_rate": 3e-2}, VIRTUAL),
    Strategy("prefix-tuning", "Prefix tuning",
             "learns virtual keys and values in every attention layer; more capacity than prompt tuning.",
             {"epochs": 3, "batch_size": 8, "learning_rate": 1e-2}, VIRTUAL),
    Strategy("full", "Full fine-tuning",
             "every weight learns: the most capacity, and the most memory (about 16 bytes per parameter).",
             {"epochs": 3, "batch_size": 8, "learning_rate": 2e-5}),
)}
PROMPT_LEARNING = ("prompt-tuning", "prefix-tuning")
ADAPTERS = ("lora", "qlora", "dora", "ia3", *PROMPT_LEARNING)


def _linear_names(model) -> list[str]:
    from torch import nn
    names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules()
             if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D"}
    return sorted(names)


def _config(recipe, model):
    import peft
    s, kind = recipe.strategy, peft.TaskType.CAUSAL_LM
    if s in ("lora", "qlora", "dora"):
        return peft.LoraConfig(task_type=kind, r=recipe.option("lora_r"), lora_alpha=recipe.option("lora_alpha"),
                               lora_dropout=recipe.option("lora_dropout"), use_dora=s == "dora", bias="none",
                               target_modules=_targets(recipe.option("target_modules")))
    if s == "ia3":
        targets = recipe.option("target_modules")
        if targets == "auto":
            return peft.IA3Config(task_type=kind)
        names = _targets(targets)
        return peft.IA3Config(task_type=kind, target_modules=names, feedforward_modules=[])
    if s == "prompt-tuning":
        return peft.PromptTuningConfig(task_type=kind, num_virtual_tokens=recipe.option("num_virtual_tokens"))
    return peft.PrefixTuningConfig(task_type=kind, num_virtual_tokens=recipe.option("num_virtual_tokens"))


def _targets(value: str):
    value = value.strip()
    return value if value == "all-linear" else [t.strip() for t in value.split(",") if t.strip()]


def prepare(model, recipe):
    """(the model to train, the optimizer's parameter groups): adapters added by peft (the base frozen), or every
    weight trainable. ModelError in words when the method does not fit this model."""
    lr = recipe.train.learning_rate
    if recipe.strategy == "full":
        model.requires_grad_(True)
        return model, [{"params": list(model.parameters()), "lr": lr, "name": "all"}]
    import peft
    if recipe.strategy == "qlora":
        model = peft.prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=recipe.train.gradient_checkpointing)
    try:
        model = peft.get_peft_model(model, _config(recipe, model))
    except (ValueError, TypeError, KeyError, AttributeError, NotImplementedError) as exc:
        kind = getattr(model.config, "model_type", "this")
        text = first_line(exc)
        if "not found in the base model" in text or "target_modules" in text:
            raise ModelError(f"Recipe key 'strategy_options.target_modules' names layers this {kind} model does "
                             f"not have ({text}). Its linear layers are: {', '.join(_linear_names(model))}; "
                             "or use 'all-linear'.") from None
        raise ModelError(f"The strategy '{recipe.strategy}' cannot be applied to this {kind} model ({text}). "
                         "Choose lora, which works with every model the studio loads.") from None
    trainable = [p for p in model.parameters() if p.requires_grad]
    return model, [{"params": trainable, "lr": lr, "name": recipe.strategy}]


def gradient_checkpointing(model, strategy: str) -> str:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(base, "supports_gradient_checkpointing", False):
        return "Gradient checkpointing is not available for this model; training goes on without it."
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if strategy != "full" and hasattr(base, "enable_input_require_grads"):
        base.enable_input_require_grads()  # a frozen embedding would otherwise cut the recomputed graph
    return "Gradient checkpointing is on: less memory, about a third slower."


def count_parameters(model) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}

"""What trains under each classification strategy: which parameters require gradients, and their learning rates.

prepare() returns optimizer parameter groups; the model is changed in place (frozen weights, LoRA adapters).
"""
from __future__ import annotations

import sys

from torch import nn

from studio.engine.classifier import Classifier
from studio.recipe import Recipe


def _params(model: nn.Module, names: list[str]) -> list[nn.Parameter]:
    lookup = dict(model.named_parameters())
    return [lookup[name] for name in names]


def _freeze_backbone(model: Classifier) -> None:
    model.backbone.requires_grad_(False)
    model.head.requires_grad_(True)


def _add_lora(model: Classifier, recipe: Recipe) -> None:
    from peft import LoraConfig, get_peft_model
    backbone = model.backbone
    targets = [name.removeprefix("net.") for name in backbone.lora_targets()]
    config = LoraConfig(r=recipe.option("lora_r"), lora_alpha=recipe.option("lora_alpha"),
                        lora_dropout=recipe.option("lora_dropout"), target_modules=targets, bias="none")
    # get_peft_model freezes everything in the wrapped network but the adapters.
    backbone.net = get_peft_model(backbone.net, config)
    model.head.requires_grad_(True)


# When pretrained weights train beside a new head, the head (random at the start) learns this much faster.
HEAD_LR_MULTIPLIER = 10.0


def _head_group(model: Classifier, lr: float) -> dict:
    return {"params": list(model.head.parameters()), "lr": lr, "name": "head"}


def prepare(model: Classifier, recipe: Recipe) -> list[dict]:
    """Sets requires_grad for the recipe's strategy; returns the optimizer's parameter groups."""
    lr = recipe.train.learning_rate
    strategy = recipe.strategy
    if strategy == "scratch":  # every weight starts random: one rate for all
        model.requires_grad_(True)
        return [{"params": list(model.parameters()), "lr": lr, "name": "all"}]
    if strategy == "feature-extraction":
        _freeze_backbone(model)
        return [_head_group(model, lr)]
    if strategy == "full":
        model.requires_grad_(True)
    elif strategy == "partial":
        _freeze_backbone(model)
        blocks = model.backbone.blocks()
        for param in _params(model.backbone, [n for b in blocks[-recipe.option("trainable_blocks"):] for n in b]):
            param.requires_grad_(True)
    elif strategy == "lora":
        _add_lora(model, recipe)
    elif strategy == "layerwise":
        model.requires_grad_(True)
        decay = recipe.option("lr_decay")
        blocks = model.backbone.blocks()
        # The top block learns at lr, each block below it at lr_decay times the rate of the block above.
        groups = [_head_group(model, lr * HEAD_LR_MULTIPLIER)]
        for depth, names in enumerate(reversed(blocks)):
            groups.append({"params": _params(model.backbone, names), "lr": lr * decay**depth,
                           "name": f"block {len(blocks) - 1 - depth}"})
        return groups
    else:
        raise ValueError(f"unknown strategy {strategy}")  # the recipe's checks make this unreachable
    return [_head_group(model, lr * HEAD_LR_MULTIPLIER),
            {"params": [p for p in model.backbone.parameters() if p.requires_grad], "lr": lr, "name": "backbone"}]


def finalize(model: Classifier) -> None:
    """Folds LoRA adapters into the backbone weights, so the saved model is a plain network."""
    if "peft" not in sys.modules:
        return  # no adapters were added; importing peft would cost a run ~1.6 s for nothing
    from peft import PeftModel
    if isinstance(model.backbone.net, PeftModel):
        model.backbone.net = model.backbone.net.merge_and_unload()


def count_parameters(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}


def gradient_checkpointing(model: Classifier) -> str:
    """Turns on activation recomputation where the backbone supports it; says in words what happened."""
    net = model.backbone.net
    if hasattr(net, "gradient_checkpointing_enable") and getattr(net, "supports_gradient_checkpointing", False):
        net.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return "Gradient checkpointing is on: less memory, about a third slower."
    return (f"Gradient checkpointing is not available for {model.backbone.family} models; training goes on "
            "without it.")

"""How a classifier adapts its pretrained backbone: one class per strategy, each saying what trains (parameters that
require gradients, their learning rates) and how the pipeline treats it: whether the backbone starts from its
pretrained weights, whether training starts from a solved head (the linear probe), whether epochs run on cached
features, how batch norm is handled, what happens before the model is saved. The pipeline asks these; it never
compares names."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from studio.recipe import Recipe, RecipeError
from studio.runfolder import ADAPTER_DIR
from studio.tasks.base import Option, Strategy
from studio.tasks.classification.model import Classifier
from studio.words import said

# When pretrained weights train beside a new head, the head (random at the start) learns this much faster.
HEAD_LR_MULTIPLIER = 10.0
LR_FINDER = {"lr_finder": Option(str, "auto", choices=("auto", "on", "off"), words="Learning-rate range test",
                                 info="A short test of learning rates before training, which suggests one for your "
                                      "next run. auto: only where it takes under a tenth of the run.")}


def _params(model: nn.Module, names: list[str]) -> list[nn.Parameter]:
    lookup = dict(model.named_parameters())
    return [lookup[name] for name in names]


def _head_group(model: Classifier, lr: float) -> dict:
    return {"params": list(model.head.parameters()), "lr": lr, "name": "head"}


def _freeze_backbone(model: Classifier) -> None:
    model.backbone.requires_grad_(False)
    model.head.requires_grad_(True)


class ClassificationStrategy(Strategy):
    pretrained = True  # the backbone starts from its pretrained weights
    # Pretrained backbone weights train: training starts from the solved head (linear probing then fine-tuning,
    # "LP-FT"), batch norm keeps its pretrained statistics, a learning-rate range test can run first.
    fine_tunes = True
    shardable = True  # enough of the model trains for FSDP's sharding to pay
    recomputes_batch_norm = False  # batch norm learns from scratch: its statistics are recomputed before evaluation

    def check(self, recipe: Recipe) -> None:
        if recipe.train.distributed == "fsdp" and not self.shardable:
            raise RecipeError(f"Recipe key 'train.distributed' is 'fsdp', which shards a model too big for one "
                              f"device; with '{self.name}' only a small part trains, so use ddp.")

    def solves_head(self, recipe: Recipe) -> bool:
        """Whether the head is solved on cached features before anything trains."""
        return self.fine_tunes

    def trains_epochs(self, recipe: Recipe) -> bool:
        """Whether a training loop runs (a solved head alone needs none)."""
        return True

    def on_cached_features(self, recipe: Recipe) -> bool:
        """Whether epochs run on the frozen backbone's cached features instead of the examples."""
        return False

    def min_epochs(self, epochs: int) -> int:
        """Epochs before early stopping may end the run."""
        return 0

    def prepare(self, model: Classifier, recipe: Recipe) -> list[dict]:
        """Sets requires_grad on the model (changed in place); returns the optimizer's parameter groups."""
        raise NotImplementedError

    def backbone_group(self, model: Classifier, lr: float) -> list[dict]:
        return [_head_group(model, lr * HEAD_LR_MULTIPLIER),
                {"params": [p for p in model.backbone.parameters() if p.requires_grad], "lr": lr,
                 "name": "backbone"}]

    def finish(self, model: Classifier, folder: Path) -> None:
        """Before the trained model is saved into `folder`: what this strategy adds to it."""


class FeatureExtraction(ClassificationStrategy):
    fine_tunes = False
    shardable = False

    def solves_head(self, recipe: Recipe) -> bool:
        return recipe.option("head_solver") == "lbfgs"

    def trains_epochs(self, recipe: Recipe) -> bool:
        return not self.solves_head(recipe)

    def on_cached_features(self, recipe: Recipe) -> bool:
        return True

    def prepare(self, model, recipe):
        _freeze_backbone(model)
        return [_head_group(model, recipe.train.learning_rate)]


class Full(ClassificationStrategy):
    def prepare(self, model, recipe):
        model.requires_grad_(True)
        return self.backbone_group(model, recipe.train.learning_rate)


class Partial(ClassificationStrategy):
    def prepare(self, model, recipe):
        _freeze_backbone(model)
        blocks = model.backbone.blocks()
        for param in _params(model.backbone, [n for b in blocks[-recipe.option("trainable_blocks"):] for n in b]):
            param.requires_grad_(True)
        return self.backbone_group(model, recipe.train.learning_rate)


class Layerwise(ClassificationStrategy):
    def prepare(self, model, recipe):
        model.requires_grad_(True)
        lr, decay = recipe.train.learning_rate, recipe.option("lr_decay")
        blocks = model.backbone.blocks()
        # The top block learns at lr, each block below it at lr_decay times the rate of the block above.
        groups = [_head_group(model, lr * HEAD_LR_MULTIPLIER)]
        for depth, names in enumerate(reversed(blocks)):
            groups.append({"params": _params(model.backbone, names), "lr": lr * decay**depth,
                           "name": f"block {len(blocks) - 1 - depth}"})
        return groups


class Lora(ClassificationStrategy):
    shardable = False

    def prepare(self, model, recipe):
        from peft import LoraConfig, get_peft_model
        backbone = model.backbone
        targets = [name.removeprefix("net.") for name in backbone.lora_targets()]
        config = LoraConfig(r=recipe.option("lora_r"), lora_alpha=recipe.option("lora_alpha"),
                            lora_dropout=recipe.option("lora_dropout"), target_modules=targets, bias="none")
        # get_peft_model freezes everything in the wrapped network but the adapters.
        backbone.net = get_peft_model(backbone.net, config)
        model.head.requires_grad_(True)
        return self.backbone_group(model, recipe.train.learning_rate)

    def finish(self, model, folder):
        """The adapter alone in peft's format (model/adapter/), then folded into the backbone's weights, so the
        saved model is a plain network."""
        from peft import PeftModel
        if isinstance(model.backbone.net, PeftModel):
            model.backbone.net.save_pretrained(str(folder / ADAPTER_DIR))
            model.backbone.net = model.backbone.net.merge_and_unload()


class Scratch(ClassificationStrategy):
    pretrained = False
    fine_tunes = False
    recomputes_batch_norm = True

    def min_epochs(self, epochs):
        return epochs // 2  # from scratch, the first epochs say little about the last

    def prepare(self, model, recipe):
        model.requires_grad_(True)  # every weight starts random: one rate for all
        return [{"params": list(model.parameters()), "lr": recipe.train.learning_rate, "name": "all"}]


STRATEGIES = {s.name: s for s in (
    FeatureExtraction(
        "feature-extraction", "Feature extraction",
        "keep the pretrained model frozen and train only a new final layer. Fast, even on a CPU.",
        # lbfgs (default): the head solved exactly, the curve draws its search; the epochs are sgd's
        {"epochs": 30, "batch_size": 32, "learning_rate": 3e-3},
        {"head_solver": Option(str, "lbfgs", choices=("lbfgs", "sgd"), words="How the new final layer is fitted",
                               info="lbfgs: the best final layer for your data, found exactly (recommended); sgd: "
                                    "trained over the epochs below, like the other strategies.")}),
    Full("full", "Full fine-tuning",
         "let every weight adjust to your data. Most accurate with enough data and a GPU.",
         {"epochs": 5, "batch_size": 16, "learning_rate": 5e-5}, LR_FINDER),
    Partial("partial", "Fine-tune the last blocks",
            "freeze the early layers (general shapes and words) and adjust the last few.",
            {"epochs": 5, "batch_size": 16, "learning_rate": 1e-4},
            {"trainable_blocks": Option(int, 2, 1, 1000, words="Blocks to fine-tune"), **LR_FINDER}),
    Layerwise("layerwise", "Layer-wise learning rates",
              "adjust everything, the last layers the most and the early layers gently.",
              {"epochs": 5, "batch_size": 16, "learning_rate": 1e-4},
              {"lr_decay": Option(float, 0.8, 0.01, 1.0, words="Learning-rate decay per block"), **LR_FINDER}),
    Lora("lora", "LoRA adapters",
         "add small trainable adapters inside the model; almost as good as full fine-tuning, far lighter.",
         {"epochs": 5, "batch_size": 16, "learning_rate": 5e-4},
         {"lora_r": Option(int, 8, 1, 1024, words="LoRA rank"),
          "lora_alpha": Option(float, 16.0, 0.1, 4096.0, words="LoRA alpha"),
          "lora_dropout": Option(float, 0.05, 0.0, 0.9, words="LoRA dropout"), **LR_FINDER}),
    Scratch("scratch", "From scratch (baseline)",
            "start from random weights: the baseline that shows what pretraining buys you.",
            # its own recipe: enough epochs to converge, and early stopping only after half of them
            {"epochs": 30, "batch_size": 32, "learning_rate": 1e-3}),
)}


def gradient_checkpointing(model: Classifier) -> str:
    """Turns on activation recomputation where the backbone supports it; says in words what happened."""
    net = model.backbone.net
    if hasattr(net, "gradient_checkpointing_enable") and getattr(net, "supports_gradient_checkpointing", False):
        net.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return said("Gradient checkpointing is on: less memory, about a third slower.")
    return said("Gradient checkpointing is not available for {family} models; training goes on without it.",
                family=model.backbone.family)

"""For every strategy, on tiny models built from configs: exactly the parameters the strategy says train."""
import pytest
import torch

from helpers import build_backbone, make_recipe
from studio import tasks
from studio.tasks.classification.model import Classifier
from studio.tasks.classification.strategies import STRATEGIES


def build(family_model, strategy, options=None, lr=1e-3):
    task, model = family_model
    recipe = tasks.resolved(make_recipe(task, model, "unused", strategy, options, learning_rate=lr))
    backbone, _ = build_backbone(model, recipe.task, pretrained=STRATEGIES[strategy].pretrained)
    classifier = Classifier(backbone, 3)
    groups = STRATEGIES[strategy].prepare(classifier, recipe)
    return classifier, groups, recipe


def trainable(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


def head(model):
    return {f"head.{n}" for n, _ in model.head.named_parameters()}


@pytest.fixture(params=["bert", "vit", "efficientnet", "torchvision"])
def family(request, tiny_bert, tiny_vit):
    return {"bert": ("text", tiny_bert), "vit": ("image", tiny_vit), "efficientnet": ("image", "efficientnet-lite0"),
            "torchvision": ("image", "mobilenet_v3_large")}[request.param]


@pytest.fixture(autouse=True)
def no_torchvision_download(monkeypatch):
    """torchvision backbones are built without their ImageNet weights here (those need internet)."""
    from studio.families import torchvision
    original = torchvision.TorchvisionBackbone.__init__
    monkeypatch.setattr(torchvision.TorchvisionBackbone, "__init__",
                        lambda self, arch, pretrained: original(self, arch, False))


def test_blocks_cover_every_backbone_parameter_once(family):
    model, _, _ = build(family, "full")
    names = [n for block in model.backbone.blocks() for n in block]
    assert sorted(names) == sorted(n for n, _ in model.backbone.named_parameters())
    assert len(model.backbone.blocks()) >= 2


def test_feature_extraction_trains_only_the_head(family):
    model, groups, _ = build(family, "feature-extraction")
    assert trainable(model) == head(model)
    assert sum(len(g["params"]) for g in groups) == 2


@pytest.mark.parametrize("strategy", ["full", "scratch"])
def test_full_and_scratch_train_everything(family, strategy):
    model, groups, _ = build(family, strategy)
    assert trainable(model) == {n for n, _ in model.named_parameters()}
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in model.parameters())


def test_scratch_starts_from_random_weights(tiny_bert):
    pretrained, _, _ = build(("text", tiny_bert), "full")
    scratch, _, _ = build(("text", tiny_bert), "scratch")
    a = pretrained.backbone.net.base_model.embeddings.word_embeddings.weight
    b = scratch.backbone.net.base_model.embeddings.word_embeddings.weight
    assert a.shape == b.shape and not torch.equal(a, b)
    again, _, _ = build(("text", tiny_bert), "full")
    assert torch.equal(a, again.backbone.net.base_model.embeddings.word_embeddings.weight)


@pytest.mark.parametrize("n", [1, 2])
def test_partial_trains_the_last_blocks_and_the_head(family, n):
    model, _, _ = build(family, "partial", {"trainable_blocks": n})
    last = {f"backbone.{name}" for block in model.backbone.blocks()[-n:] for name in block}
    assert trainable(model) == last | head(model)


def test_layerwise_rates_decay_block_by_block(family):
    model, groups, recipe = build(family, "layerwise", {"lr_decay": 0.5}, lr=1e-3)
    assert groups[0]["name"] == "head" and groups[0]["lr"] == pytest.approx(1e-2)
    rates = [g["lr"] for g in groups[1:]]  # top block first
    assert rates == pytest.approx([1e-3 * 0.5**depth for depth in range(len(model.backbone.blocks()))])
    grouped = [id(p) for g in groups for p in g["params"]]
    assert len(grouped) == len(set(grouped)) == len(list(model.parameters()))
    assert trainable(model) == {n for n, _ in model.named_parameters()}


def test_lora_trains_only_adapters_and_the_head(family):
    model, groups, _ = build(family, "lora", {"lora_r": 4})
    names = trainable(model)
    adapters = {n for n in names if "lora_" in n}
    assert adapters and names == adapters | head(model)
    assert all(not p.requires_grad for n, p in model.named_parameters() if "lora_" not in n and n.startswith("backbone"))
    assert {n for g in groups for n, p in model.named_parameters() if any(p is q for q in g["params"])} == names


def test_lora_adapters_change_the_output_once_trained(tiny_bert, tmp_path):
    model, groups, _ = build(("text", tiny_bert), "lora")
    batch = {"input_ids": torch.randint(0, 1000, (2, 8)), "attention_mask": torch.ones(2, 8, dtype=torch.long)}
    model.eval()
    before = model.backbone(batch).detach().clone()
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)
    adapted = model.backbone(batch).detach()
    assert not torch.allclose(before, adapted)
    STRATEGIES["lora"].finish(model, tmp_path)  # merged: the same outputs from a plain network
    assert (tmp_path / "adapter" / "adapter_config.json").exists()  # the adapter alone, kept beside
    assert not any("lora" in n for n, _ in model.named_parameters())
    assert torch.allclose(adapted, model.backbone(batch), atol=1e-5)

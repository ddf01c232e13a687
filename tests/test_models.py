"""Model families behind one interface: loading (torchvision weights from a local cache), features, save/load."""
import pytest
import torch

from helpers import build_backbone
from studio import catalog
from studio.tasks.classification.model import load_classifier, save_classifier
from studio.tasks.classification.model import Classifier
from studio.families.base import ModelError

TORCHVISION = [card.name for card in catalog.CATALOG if card.source == "torchvision"]


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_backbones_give_features_and_blocks(name):
    backbone, info = build_backbone(name, "image-classification", pretrained=False)
    size = info.preprocessing["image_size"]
    with torch.no_grad():
        features = backbone.eval()(torch.randn(1, 3, size, size))
    assert features.shape == (1, backbone.feature_dim)
    assert len(backbone.blocks()) >= 4 and backbone.lora_targets()


def test_torchvision_pretrained_weights_load_from_the_torch_cache(tmp_path, monkeypatch):
    """The real download path, fed by a locally saved file where torchvision looks before downloading."""
    from torchvision import models
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = models.ResNet18_Weights.DEFAULT
    saved = models.resnet18().state_dict()
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(saved, cache / weights.url.rsplit("/", 1)[-1])
    backbone, info = build_backbone("resnet18", "image-classification", pretrained=True)
    assert torch.equal(backbone.net.layer4[1].conv2.weight, saved["layer4.1.conv2.weight"])
    assert info.preprocessing["image_size"] == 224 and info.preprocessing["mean"] == pytest.approx((0.485, 0.456, 0.406))


def test_unknown_hub_id_offline_lists_offline_models():
    with pytest.raises(ModelError) as info:
        build_backbone("no-such-org/no-such-model", "text-classification", pretrained=True)
    assert "could not be downloaded" in str(info.value) and "all-minilm-l6-v2" in str(info.value)


def test_catalog_model_for_the_wrong_task_is_refused():
    with pytest.raises(ModelError, match="made for image-classification, but the recipe's task is text-classification"):
        build_backbone("efficientnet-lite0", "text-classification", pretrained=False)


@pytest.fixture(params=["bert", "vit", "efficientnet", "torchvision"])
def built(request, tiny_bert, tiny_vit):
    task, model = {"bert": ("text-classification", tiny_bert), "vit": ("image-classification", tiny_vit),
                   "efficientnet": ("image-classification", "efficientnet-lite0"),
                   "torchvision": ("image-classification", "resnet18")}[request.param]
    backbone, info = build_backbone(model, task, pretrained=request.param not in ("torchvision", "efficientnet"))
    info.labels = ["a", "b", "c"]
    if task == "text-classification":
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(model)
        batch = dict(tok(["hello there", "a longer sentence here"], padding=True, return_tensors="pt"))
        return Classifier(backbone, 3), info, tok, batch
    size = info.preprocessing["image_size"]
    return Classifier(backbone, 3), info, None, torch.randn(2, 3, size, size)


def test_saved_model_reloads_with_identical_outputs(built, tmp_path):
    model, info, tokenizer, batch = built
    model.eval()
    with torch.no_grad():
        expected = model(batch)
    save_classifier(model, info, tmp_path / "model")
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp_path / "model")
    loaded, loaded_info = load_classifier(tmp_path / "model", "text" if tokenizer is not None else "image")
    with torch.no_grad():
        assert torch.allclose(loaded(batch), expected, atol=1e-5)
    assert loaded_info.labels == ["a", "b", "c"] and loaded_info.family == info.family

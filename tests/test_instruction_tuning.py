"""Instruction tuning end to end on a tiny random Llama (fast tier): a run in-process writes eval.json with the
tuned and base figures and held-out answers, the adapter loads with peft, the merged folder with
pipeline("text-generation"), and the command line predicts, chats and exports. Every strategy trains a step."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_counting_loads, write_chat_csv
from studio import cli
from studio.run.jobs import JobManager
from studio import tasks
from studio.recipe import DataSpec, Recipe, RecipeError, TrainSpec
from studio.tasks import from_dict
from studio.workspace import Workspace

STUDIO = str(Path(sys.executable).with_name("studio"))


def chat_recipe(model, data, strategy="lora", **train):
    return Recipe(task="instruction-tuning", model=model, data=DataSpec(path=data, max_length=96),
                  strategy=strategy, train=TrainSpec(**{"epochs": 1, "batch_size": 4, **train}))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("chat-ws")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_chat_csv(tmp_path_factory.mktemp("chat-data") / "qa.csv", 20)


@pytest.fixture(scope="module")
def lora_run(workspace, tiny_llama, data):
    """One LoRA run; from_pretrained is counted: the base answers must not come from a second copy."""
    return run_counting_loads(workspace, chat_recipe(tiny_llama, data, epochs=2, packing=True))


def test_eval_holds_tuned_and_base_figures_and_samples(lora_run):
    job, loads = lora_run
    assert len(loads) == 1  # base figures and answers: the same weights with the adapter off
    report = json.loads((job.run_dir / "eval.json").read_text())
    for key in ("loss", "perplexity", "accuracy", "base_loss", "base_perplexity", "base_accuracy"):
        assert isinstance(report[key], float), key
    assert report["samples"] and set(report["samples"][0]) >= {"prompt", "reference", "base_answer", "tuned_answer",
                                                                "similarity"}
    assert report["packing"] is True and report["tokens_per_s"] > 0
    steps = [e for e in job.events() if e["type"] == "step"]
    assert steps and all(e["tokens_per_s"] > 0 for e in steps)
    card = (job.run_dir / "model" / "README.md").read_text()
    assert "## Results on the validation examples" in card and "## Limits" in card and "## Example answers" in card


def test_adapter_loads_with_peft_and_merged_folder_with_pipeline(lora_run, tiny_llama):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, pipeline
    from studio.run.export import export
    job, _ = lora_run
    adapter = export(job.run_dir, "adapter")
    assert adapter == job.run_dir / "model" / "adapter"
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), str(adapter))
    merged = export(job.run_dir, "hf")
    assert merged == job.run_dir / "model" / "hf"
    chat = pipeline("text-generation", model=str(merged))
    assert chat.tokenizer.chat_template
    out = chat([{"role": "user", "content": "hello"}], max_new_tokens=5, do_sample=False)
    assert out[0]["generated_text"][-1]["role"] == "assistant"
    assert export(job.run_dir, "zip").suffix == ".zip"


def test_command_line_predicts_chats_and_exports(lora_run, workspace, capsys, monkeypatch):
    job, _ = lora_run
    assert cli.main(["--workspace", str(workspace), "predict", job.run_id, "how do I reset my password"]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert answer["input"] == "how do I reset my password" and isinstance(answer["answer"], str)
    result = subprocess.run([STUDIO, "--workspace", str(workspace), "chat", job.run_id, "--max-new-tokens", "4"],
                            input="hello\nthank you\n\n", capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and result.stdout.count("> ") >= 2
    assert cli.main(["--workspace", str(workspace), "export", job.run_id, "--format", "adapter"]) == 0


@pytest.mark.parametrize("strategy", ["dora", "ia3", "prompt-tuning", "prefix-tuning", "full"])
def test_every_strategy_trains(strategy, tmp_path, tiny_llama, data):
    job = JobManager(Workspace(tmp_path), in_process=True).start(chat_recipe(tiny_llama, data, strategy))
    assert job.wait(300)
    assert job.status["status"] == "completed", job.status.get("error")
    report = json.loads((job.run_dir / "eval.json").read_text())
    assert report["base_loss"] > 0 and report["samples"]
    folder = job.run_dir / "model"
    assert (folder / ("model.safetensors" if strategy == "full" else "adapter/adapter_config.json")).exists()


def test_recipe_defaults_and_refusals(tiny_llama, data):
    resolved = tasks.resolved(chat_recipe(tiny_llama, data))
    assert tasks.resolved(Recipe(task="instruction-tuning", data=DataSpec(path=data))).data.max_length == 1024
    assert resolved.strategy_options["target_modules"] == "all-linear"
    with pytest.raises(RecipeError, match="qlora.*CUDA GPU.*Use 'lora'"):
        from_dict({"task": "instruction-tuning", "model": tiny_llama, "data": {"path": data}, "strategy": "qlora",
                   "train": {"device": "cpu"}})
    with pytest.raises(RecipeError, match="train.packing"):
        from_dict({"task": "instruction-tuning", "model": tiny_llama, "data": {"path": data},
                   "strategy": "prompt-tuning", "train": {"packing": True}})
    with pytest.raises(RecipeError, match="'train.packing' is not used by text-classification"):
        from_dict({"task": "text-classification", "model": tiny_llama, "data": {"path": data},
                   "train": {"packing": True}})

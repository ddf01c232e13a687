"""Preference tuning end to end on a tiny random Llama (fast tier): every loss trains through the worker and writes
eval.json with the preference figures and sample answers; step and epoch events carry the reward accuracy and
margin; the reference is the same weights with the adapter switched off (one copy of the model); a run stopped
mid-epoch and resumed takes the same steps; recipes and data the task cannot use are refused in words."""
import csv
import json

import pytest

from helpers import run_counting_loads
from studio import tasks
from studio.engine.callbacks import Callback
from studio.recipe import DataSpec, Recipe, RecipeError, TrainSpec
from studio.run.jobs import JobManager
from studio.workspace import Workspace

FIGURES = ("loss", "reward_accuracy", "reward_margin", "preference_accuracy", "base_preference_accuracy")


def write_pairs(path, rows: int = 16) -> str:
    """prompt, chosen (a greeting and a sign-off, as the help-desk example), rejected (the same answer plain)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "good", "bad"])
        for i in range(rows):
            writer.writerow([f"how do I reset my password {i}", f"Hello! please reset your password {i % 3} thank you",
                             f"reset your password {i % 3}"])
    return str(path)


def preference_recipe(model, data, loss="dpo", strategy="lora", **train):
    return Recipe(task="preference-tuning", model=model, data=DataSpec(path=data, max_length=64),
                  strategy=strategy, strategy_options={"loss": loss},
                  train=TrainSpec(**{"epochs": 1, "batch_size": 4, "learning_rate": 1e-2, **train}))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("pairs") / "pairs.csv")


@pytest.fixture(scope="module")
def dpo_run(tmp_path_factory, tiny_llama, pairs):
    """One DPO LoRA run of two epochs; from_pretrained is counted: the reference must not be a second copy."""
    return run_counting_loads(tmp_path_factory.mktemp("pref-ws"), preference_recipe(tiny_llama, pairs, epochs=2))


def test_eval_holds_the_preference_figures_and_samples(dpo_run):
    job, loads = dpo_run
    assert len(loads) == 1  # the reference: the same weights with the adapter off
    report = json.loads((job.run_dir / "eval.json").read_text())
    for key in FIGURES:
        assert isinstance(report[key], float), key
    assert 0 <= report["preference_accuracy"] <= 1 and report["reward_accuracy"] > 0.5  # lr 1e-2: it learns
    assert report["samples"] and set(report["samples"][0]) >= {"prompt", "reference", "base_answer", "tuned_answer"}
    assert report["samples"][0]["reference"].startswith("Hello!")  # the better answer is the reference
    assert job.status["reward_accuracy"] == report["reward_accuracy"]
    card = (job.run_dir / "model" / "README.md").read_text()
    assert "better answer more probable" in card


def test_steps_and_epochs_carry_reward_accuracy_and_margin(dpo_run):
    job, _ = dpo_run
    steps = [e for e in job.events() if e["type"] == "step"]
    epochs = [e for e in job.events() if e["type"] == "epoch"]
    assert len(steps) == 8 and len(epochs) == 2  # 13 training pairs (3 of 16 validate): 4 batches, two epochs
    assert all(0 <= e["reward_accuracy"] <= 1 and isinstance(e["reward_margin"], float) for e in steps)
    assert all(isinstance(e[k], float) for e in epochs for k in ("val_loss", "reward_accuracy", "reward_margin",
                                                                 "preference_accuracy"))


def test_the_evaluate_tab_shows_the_figures_the_task_names(dpo_run):
    from studio.ui.panels.chat_results import results_markdown, samples_table, versus_table
    job, _ = dpo_run
    report = json.loads((job.run_dir / "eval.json").read_text())
    shown = results_markdown(report, job.status)
    assert f"**reward accuracy** {report['reward_accuracy']:.1%}" in shown
    assert "**better answer more probable**" in shown and "(the start model: " in shown
    table = samples_table(report)
    assert list(table["better answer"]) == [s["reference"] for s in report["samples"]]
    versus = versus_table(report).set_index("measure")
    assert versus.loc["better answer more probable"].tolist() == [f"{report['base_preference_accuracy']:.0%}",
                                                                  f"{report['preference_accuracy']:.0%}"]
    # DPO's start model is its own reference: its rewards are zero, so no pair's better answer out-rewards the worse
    assert versus.loc["reward accuracy", "start model"] == "0%" and report["base_reward_margin"] == 0
    assert len(versus) == 6  # every figure both models have, general knowledge and ROUGE-L included
    # each prompt's worse answer is its own pair's (the better one with the greeting and sign-off taken off)
    assert list(table["worse answer"]) == [s["reference"].removeprefix("Hello! please ").removesuffix(" thank you")
                                           for s in report["samples"]]


def test_the_tuned_adapter_chats_and_exports_as_the_chat_task_does(dpo_run):
    from transformers import pipeline
    from studio.run.export import export
    job, _ = dpo_run
    chat = tasks.get("preference-tuning").chat(job.run_dir / "model")
    assert isinstance(chat.answer(chat.messages("how do I reset my password"), max_new_tokens=4), str)
    merged = pipeline("text-generation", model=str(export(job.run_dir, "hf")))
    assert merged([{"role": "user", "content": "hello"}], max_new_tokens=2)[0]["generated_text"][-1]["role"] == \
        "assistant"
    assert export(job.run_dir, "zip").suffix == ".zip"
    assert "better answer more probable" in (job.run_dir / "model" / "README.md").read_text()  # rewritten card


@pytest.mark.parametrize("loss", ["ipo", "orpo", "simpo", "kto"])
def test_every_loss_trains(loss, tmp_path, tiny_llama, pairs):
    job = JobManager(Workspace(tmp_path), in_process=True).start(preference_recipe(tiny_llama, pairs, loss))
    assert job.wait(300)
    assert job.status["status"] == "completed", job.status.get("error")
    report = json.loads((job.run_dir / "eval.json").read_text())
    assert all(isinstance(report[k], float) for k in FIGURES)  # KTO on pairs: its answers ranked as pairs


def test_kto_trains_on_answers_marked_good_or_bad(tmp_path, tiny_llama):
    path = tmp_path / "marked.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "completion", "label"])
        for i in range(16):
            writer.writerow([f"how do I reset my password {i}", f"please reset your password {i}", i % 2 == 0])
    job = JobManager(Workspace(tmp_path / "ws"), in_process=True).start(preference_recipe(tiny_llama, str(path),
                                                                                          "kto"))
    assert job.wait(300) and job.status["status"] == "completed", job.status.get("error")
    report = json.loads((job.run_dir / "eval.json").read_text())
    assert isinstance(report["reward_accuracy"], float) and "preference_accuracy" not in report  # no pairs
    assert report["comparison"].startswith("Reward accuracy on the validation answers")
    assert "| better answer more probable | — | — |" in (job.run_dir / "model" / "README.md").read_text()


def test_full_fine_tuning_measures_the_reference_before_training(tmp_path, tiny_llama, pairs):
    job = JobManager(Workspace(tmp_path), in_process=True).start(preference_recipe(tiny_llama, pairs,
                                                                                   strategy="full"))
    assert job.wait(300)
    assert job.status["status"] == "completed", job.status.get("error")
    assert (job.run_dir / "checkpoints" / "reference.pt").exists()
    assert json.loads((job.run_dir / "eval.json").read_text())["samples"][0]["base_answer"] is not None


def test_a_finished_instruction_tuning_run_is_the_start_model(tmp_path, tiny_llama, pairs):
    """SFT, then DPO from it: the run's merged weights (its hf export) are the start and the reference."""
    manager = JobManager(Workspace(tmp_path), in_process=True)
    sft = manager.start(Recipe(task="instruction-tuning", model=tiny_llama, data=DataSpec(path=pairs, max_length=64,
                                                                                          prompt_column="question",
                                                                                          response_column="good"),
                               train=TrainSpec(epochs=1, batch_size=4)))
    assert sft.wait(300) and sft.status["status"] == "completed", sft.status.get("error")
    assert sft.run_id in tasks.get("preference-tuning").check_model(str(sft.run_dir))  # the Model tab's check
    dpo = manager.start(preference_recipe(sft.run_id, pairs))
    assert dpo.wait(300) and dpo.status["status"] == "completed", dpo.status.get("error")
    merged = sft.run_dir / "model" / "hf"
    assert (merged / "config.json").exists()
    info = json.loads((dpo.run_dir / "model" / "studio_model.json").read_text())
    assert info["preprocessing"]["base"] == str(merged) and info["model"] == sft.run_id
    chat = tasks.get("preference-tuning").chat(dpo.run_dir / "model")
    assert isinstance(chat.answer(chat.messages("hello"), max_new_tokens=2), str)
    again = manager.start(preference_recipe(dpo.run_id, pairs))
    assert again.wait(300) and again.status["status"] == "completed"  # a preference run is a start model too


class StopAfter(Callback):
    """Asks the run to stop after a given step (as the Stop button does)."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, loop):
        if loop.step == self.step:
            loop.cancel.set()


def test_a_run_stopped_mid_epoch_resumes_with_the_same_losses(tmp_path, tiny_llama, pairs, dpo_run):
    job, _ = dpo_run
    whole = [e["train_loss"] for e in job.events() if e["type"] == "step"]
    manager = JobManager(Workspace(tmp_path), in_process=True)
    recipe = preference_recipe(tiny_llama, pairs, epochs=2)
    stopped = manager.start(recipe, callbacks=[StopAfter(2)])
    assert stopped.wait(300) and stopped.status["status"] == "cancelled", stopped.status
    resumed = manager.resume(stopped.run_id)
    assert resumed.wait(300) and resumed.status["status"] == "completed", resumed.status.get("error")
    events = resumed.events()
    assert any(e["type"] == "log" and e["message"].startswith("Resumed 2 batches into epoch 1") for e in events)
    losses = {e["step"]: e["train_loss"] for e in events if e["type"] == "step"}  # the resumed run's last
    assert [losses[s] for s in range(1, 9)] == pytest.approx(whole, abs=1e-5)


# -- refused in words ------------------------------------------------------------------------------------------------

def test_recipe_defaults_and_refusals(tiny_llama, pairs):
    resolved = tasks.resolved(Recipe(task="preference-tuning", model=tiny_llama, data=DataSpec(path=pairs)))
    assert resolved.strategy == "lora" and resolved.train.learning_rate == 5e-4
    assert resolved.strategy_options["loss"] == "dpo" and resolved.strategy_options["beta"] == 0.1
    assert tasks.resolved(Recipe(task="preference-tuning", data=DataSpec(path=pairs), strategy="full")
                          ).train.learning_rate == 5e-6
    with pytest.raises(RecipeError, match="strategy_options.loss.*dpo, ipo, orpo, simpo, kto"):
        tasks.from_dict({"task": "preference-tuning", "data": {"path": pairs}, "strategy_options": {"loss": "ppo"}})
    with pytest.raises(RecipeError, match="data.chosen_column' is set without 'data.rejected_column"):
        tasks.from_dict({"task": "preference-tuning", "data": {"path": pairs, "chosen_column": "good"}})
    with pytest.raises(RecipeError, match="only 'strategy_options.loss: kto' reads"):
        tasks.from_dict({"task": "preference-tuning", "data": {"path": pairs, "response_column": "good"}})
    with pytest.raises(RecipeError, match="train.packing"):
        tasks.from_dict({"task": "preference-tuning", "data": {"path": pairs}, "train": {"packing": True}})

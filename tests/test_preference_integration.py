"""SmolLM2-135M-Instruct (converted once from its GGUF package) tuned with DPO on 48 pairs of the bundled help-desk
preference example (the house style against a plain one): on the validation pairs the implicit reward ranks the
better answer first at least three times in four, and the tuned model finds the better answer more probable more
often than the start model does."""
import csv
import json

import pytest

from studio.assets import HELPDESK_PREFERENCES
from studio.recipe import DataSpec, Recipe, TrainSpec
from studio.run.jobs import JobManager
from studio.workspace import Workspace

pytestmark = pytest.mark.integration


@pytest.mark.slow  # about six minutes on 2 CPU cores: the real SmolLM2, its reference pass, training, answers
def test_a_short_dpo_run_learns_the_house_style(tmp_path):
    with open(HELPDESK_PREFERENCES, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    subset = tmp_path / "prefs-48.csv"
    with open(subset, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows[:49])
    job = JobManager(Workspace(tmp_path / "ws"), in_process=True).start(Recipe(
        task="preference-tuning", model="smollm2-135m-instruct", data=DataSpec(path=str(subset), max_length=128),
        train=TrainSpec(epochs=2)))
    assert job.wait(1500)
    assert job.status["status"] == "completed", job.status.get("error")
    report = json.loads((job.run_dir / "eval.json").read_text())
    print(f"\nreward accuracy {report['reward_accuracy']:.0%}, margin {report['reward_margin']:.3f}; better answer "
          f"more probable {report['preference_accuracy']:.0%} (start model {report['base_preference_accuracy']:.0%})"
          f"; {report['tokens_per_s']:.0f} answer tokens/s")
    assert report["reward_accuracy"] >= 0.75
    assert report["preference_accuracy"] > report["base_preference_accuracy"]

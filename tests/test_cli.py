"""The `studio` command in new processes: train with a progress bar, list runs, predict from a finished run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import make_recipe

STUDIO = str(Path(sys.executable).with_name("studio"))


def studio(*args, workspace, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([STUDIO, "--workspace", str(workspace), *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert, text_csv):
    """A text run trained by `studio train` in its own process."""
    folder = tmp_path_factory.mktemp("cli")
    make_recipe("text", tiny_bert, text_csv, "full", epochs=2).save(folder / "recipe.yaml")
    result = studio("train", "recipe.yaml", workspace=folder / "ws", cwd=folder)
    return folder, result


def test_train_prints_progress_and_the_run_folder(trained):
    folder, result = trained
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert run_dir.parent == folder / "ws" / "runs" and (run_dir / "model" / "model.safetensors").exists()
    assert "training" in result.stderr and "epoch 2/2" in result.stderr  # the progress bar and epoch lines


def test_runs_lists_every_run_from_disk(trained):
    folder, result = trained
    listing = studio("runs", workspace=folder / "ws")
    run_id = Path(result.stdout.strip().splitlines()[-1]).name
    assert listing.returncode == 0 and run_id in listing.stdout and "completed" in listing.stdout
    runs = json.loads(studio("runs", "--json", workspace=folder / "ws").stdout)
    assert [r["id"] for r in runs] == [run_id] and runs[0]["strategy"] == "full" and runs[0]["accuracy"] is not None


def test_predict_answers_one_json_object_per_input(trained):
    folder, result = trained
    run_id = Path(result.stdout.strip().splitlines()[-1]).name
    out = studio("predict", run_id, "pizza soup", "goal team", "--top-k", "2", workspace=folder / "ws")
    assert out.returncode == 0, out.stderr
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["input"] for a in answers] == ["pizza soup", "goal team"]
    for answer in answers:
        assert answer["label"] == answer["top_k"][0]["label"] and len(answer["top_k"]) == 2
        assert 0 < answer["score"] <= 1


def test_bad_recipe_exits_non_zero_with_a_one_line_reason(tmp_path):
    (tmp_path / "bad.yaml").write_text("data: {path: x}\ntrain: {epochs: -3}\n")
    result = studio("train", str(tmp_path / "bad.yaml"), workspace=tmp_path / "ws")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: Recipe key 'train.epochs'")


def test_failed_run_exits_non_zero(tmp_path, tiny_bert):
    make_recipe("text", tiny_bert, str(tmp_path / "absent.csv")).save(tmp_path / "r.yaml")
    result = studio("train", str(tmp_path / "r.yaml"), workspace=tmp_path / "ws")
    assert result.returncode == 2 and "run failed: Data not found" in result.stderr


def test_predict_with_an_unknown_run(tmp_path):
    result = studio("predict", "nope", "hello", workspace=tmp_path)
    assert result.returncode == 2 and "No run called 'nope'" in result.stderr

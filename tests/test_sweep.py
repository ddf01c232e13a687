"""Sweeps: a recipe tried with several settings. Bad sweep blocks are refused before anything runs; a grid of 4
runs and an optuna search of 6 trials (at least one pruned) complete with the right best; the command line says how
many runs and about how long, stops a sweep from another shell and resumes it."""
from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from studio.run import sweep as sweeps
from studio.run.jobs import JobManager
from studio.run.sweep_driver import Driver
from studio.runfolder import RECIPE, RunFolder
from studio.workspace import Workspace
from helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def noisy_csv(tmp_path_factory) -> str:
    """Two topics told apart by one word among shared ones, a fifth of the labels flipped: settings score apart."""
    rng = random.Random(1)
    shared = ["the", "a", "report", "said", "today", "new", "plan", "city", "week", "team"]
    path = tmp_path_factory.mktemp("noisy") / "noisy.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for n in range(60):
            label = n % 2
            words = rng.choices(shared, k=5) + [("goal", "vote")[label]]
            rng.shuffle(words)
            writer.writerow([" ".join(words), ("sport", "politics")[label if rng.random() > 0.2 else 1 - label]])
    return str(path)


def base(model: str, data: str, epochs: int = 1) -> dict:
    return {"task": "text-classification", "model": model, "data": {"path": data}, "strategy": "full",
            "train": {"epochs": epochs, "batch_size": 8}}


@pytest.mark.parametrize("block, words", [
    (None, "either 'grid'"),
    ({"grid": {"train.learning_rate": [1e-4]}, "search": {"trials": 2}}, "either 'grid'"),
    ({"grid": {"train.learnin_rate": [1e-4]}}, "Unknown recipe key 'train.learnin_rate' in sweep.grid"),
    ({"grid": {"task": ["image-classification"]}}, "cannot change 'task'"),
    ({"grid": {"train.learning_rate": []}}, "'sweep.grid.train.learning_rate' must be a non-empty list"),
    ({"grid": {"train.learning_rate": list(range(1, 101)), "train.seed": list(range(100))}},
     "10000 combinations; a sweep runs at most 64"),
    ({"grid": {"strategy": ["lora"], "strategy_options.lora_r": [4, 9999]}},
     "combination 2 of 2 (strategy=lora, strategy_options.lora_r=9999) cannot run: Recipe key "
     "'strategy_options.lora_r' is 9999"),
    ({"grid": {"strategy": ["full", "lora"], "strategy_options.lora_r": [4]}},
     "combination 1 of 2 (strategy=full, strategy_options.lora_r=4) cannot run: Unknown recipe key"),
    ({"grid": {"train.learning_rate": [1e-4, 7]}},
     "train.learning_rate=7) cannot run: Recipe key 'train.learning_rate'"),
    ({"search": {"trials": 0, "params": {"train.learning_rate": [1e-4]}}}, "'sweep.search.trials' is 0"),
    ({"search": {"trials": 3, "params": {"train.learning_rate": {"low": 0, "high": 1, "log": True}}}},
     "low > 0 for log"),
    ({"search": {"trials": 3, "metric": "speed", "params": {"train.seed": [1, 2]}}},
     "'sweep.search.metric' is 'speed'; text-classification reports: accuracy"),
])
def test_a_bad_sweep_is_refused_in_words_before_anything_runs(tmp_path, tiny_bert, text_csv, block, words):
    raw = {**base(tiny_bert, text_csv), **({"sweep": block} if block is not None else {})}
    with pytest.raises(sweeps.SweepError) as refused:
        sweeps.check(raw)
    assert words in str(refused.value)
    assert not (tmp_path / "sweeps").exists()


def runs_of(workspace: Workspace, data: dict) -> dict[str, dict]:
    return {r["run_id"]: RunFolder(workspace.find_run(r["run_id"])).status() for r in data["runs"]}


def test_a_grid_of_four_runs_completes_with_the_best_by_accuracy(tmp_path, tiny_bert, noisy_csv):
    workspace = Workspace(tmp_path / "ws")
    grid = {"train.learning_rate": [1e-5, 3e-3], "train.seed": [0, 1]}
    plan = sweeps.check({**base(tiny_bert, noisy_csv, epochs=2), "sweep": {"grid": grid}})
    assert sweeps.plan_words(workspace, plan).startswith("4 runs; no earlier run like them")
    sweep = sweeps.create(workspace, plan)
    data = Driver(workspace, sweep, JobManager(workspace, in_process=True)).run()
    assert data["status"] == "completed" and len(data["runs"]) == 4
    statuses = runs_of(workspace, data)
    for entry in data["runs"]:  # each run trained its own combination, and sweep.json holds its own figures
        recipe = yaml.safe_load(RunFolder(workspace.find_run(entry["run_id"])).file(RECIPE).read_text())
        assert (recipe["train"]["learning_rate"], recipe["train"]["seed"]) == (
            entry["settings"]["train.learning_rate"], entry["settings"]["train.seed"])
        assert entry["status"] == statuses[entry["run_id"]]["status"] == "completed"
        assert entry["score"] == statuses[entry["run_id"]]["accuracy"]
    expected = max(statuses, key=lambda r: (statuses[r]["accuracy"], -statuses[r]["wall_time_s"]))
    assert data["best"]["run_id"] == expected
    print("\ngrid scores:", [(e["settings"], e["score"]) for e in data["runs"]])
    # Now that runs like these exist, the next sweep is timed by them
    assert sweeps.plan_words(workspace, plan).startswith("4 runs, about ")


def test_a_search_prunes_a_poor_trial_and_keeps_the_lowest_loss(tmp_path, tiny_bert, noisy_csv):
    workspace = Workspace(tmp_path / "ws")
    search = {"trials": 6, "metric": "val_loss",
              "params": {"train.learning_rate": {"low": 1e-6, "high": 0.3, "log": True}}}
    plan = sweeps.check({**base(tiny_bert, noisy_csv, epochs=10), "sweep": {"search": search}})
    sweep = sweeps.create(workspace, plan)
    data = Driver(workspace, sweep, JobManager(workspace, in_process=True)).run()
    assert data["status"] == "completed" and len(data["runs"]) == 6
    states = [r["status"] for r in data["runs"]]
    print("\nsearch:", [(round(r["settings"]["train.learning_rate"], 6), r["status"], r["score"])
                        for r in data["runs"]])
    assert "pruned" in states and set(states) <= {"completed", "pruned"}
    study = optuna.load_study(study_name=sweep.id, storage=f"sqlite:///{sweep.file(sweeps.STUDY_FILE)}")
    by_number = {t.number: t for t in study.trials}
    for entry in data["runs"]:  # optuna's own record agrees with sweep.json
        trial = by_number[entry["trial"]]
        assert trial.state.name == {"completed": "COMPLETE", "pruned": "PRUNED"}[entry["status"]]
        assert trial.params == entry["settings"]
    pruned = [r for r in data["runs"] if r["status"] == "pruned"]
    for entry in pruned:  # stopped before its last epoch
        run = RunFolder(workspace.find_run(entry["run_id"]))
        assert run.status()["status"] == "cancelled"
        assert max(e["epoch"] for e in run.events() if e["type"] == "epoch") < 10
    statuses = runs_of(workspace, data)
    completed = [r for r in data["runs"] if r["status"] == "completed"]
    lowest = min(completed, key=lambda r: (statuses[r["run_id"]]["val_loss"], r["wall_time_s"]))
    assert data["best"]["run_id"] == lowest["run_id"]
    # optuna agrees on the best value (on a tie it keeps the earlier trial, the sweep the shorter run)
    assert study.best_value == data["best"]["score"]
    assert statuses[study.best_trial.user_attrs["run_id"]]["val_loss"] == data["best"]["score"]


def studio(*args, workspace: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "studio.cli", "--workspace", str(workspace), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_the_command_line_says_the_plan_stops_a_sweep_from_another_shell_and_resumes_it(tmp_path, tiny_bert,
                                                                                       noisy_csv):
    workspace = tmp_path / "ws"
    recipe = tmp_path / "sweep.yaml"
    recipe.write_text(yaml.safe_dump({**base(tiny_bert, noisy_csv, epochs=40),
                                      "sweep": {"grid": {"train.learning_rate": [1e-4, 1e-3]}}}))
    driver = studio("sweep", str(recipe), workspace=workspace)
    folders = workspace / "sweeps"
    wait_for(lambda: folders.exists() and any(folders.iterdir()), 60, "the sweep folder")
    sweep = sweeps.Sweep(next(folders.iterdir()))
    wait_for(lambda: sweep.read()["runs"][0]["status"] == "running", 120, "the first run to train")
    stop = studio("stop", sweep.id, workspace=workspace)
    assert stop.wait(60) == 0, stop.stderr.read()
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 2 and "2 runs; no earlier run like them" in err and "sweep stopped" in err
    data = sweep.state()
    assert data["status"] == "stopped"
    assert [r["status"] for r in data["runs"]] == ["cancelled", "pending"]
    assert RunFolder(Workspace(workspace).find_run(data["runs"][0]["run_id"])).status()["status"] == "cancelled"
    # Resumed: the stopped run continues in its own folder, the other starts, and the best is printed
    recipe.write_text(yaml.safe_dump({**base(tiny_bert, noisy_csv, epochs=40)}))  # the sweep does not reread it
    resumed = studio("sweep", "--resume", sweep.id, workspace=workspace)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    data = sweep.state()
    assert data["status"] == "completed" and [r["status"] for r in data["runs"]] == ["completed", "completed"]
    assert out.strip() == data["best"]["run_id"] and "← best" in err
    events = RunFolder(Workspace(workspace).find_run(data["runs"][0]["run_id"])).events()
    assert any(e["type"] == "status" and e["status"] == "cancelled" for e in events)  # the same run, resumed


def test_the_strategy_tab_form_makes_the_sweep_block_and_refuses_nothing_to_compare():
    from studio.recipe import RecipeError
    from studio.ui.sweep_form import rates_of, sweep_block
    assert rates_of("1e-4, 3e-4 1e-4;1e-3", "en") == [1e-4, 3e-4, 1e-3]
    with pytest.raises(RecipeError, match="'fast' is not a learning rate"):
        rates_of("1e-4 fast", "en")
    assert sweep_block("full", ["full", "lora"], [1e-4, 1e-3], "grid", 8, "en") == {
        "grid": {"strategy": ["full", "lora"], "train.learning_rate": [1e-4, 1e-3]}}
    assert sweep_block("full", [], [1e-3, 1e-4], "search", 6, "en") == {
        "search": {"trials": 6, "params": {"train.learning_rate": {"low": 1e-4, "high": 1e-3, "log": True}}}}
    with pytest.raises(RecipeError, match="Tick two or more strategies"):
        sweep_block("full", ["full"], [1e-3], "grid", 8, "en")


def test_a_sweep_whose_driver_died_reads_interrupted_and_stops_from_another_shell(tmp_path, tiny_bert, text_csv):
    workspace = Workspace(tmp_path / "ws")
    plan = sweeps.check({**base(tiny_bert, text_csv), "sweep": {"grid": {"train.seed": [0, 1]}}})
    sweep = sweeps.create(workspace, plan)
    gone = subprocess.Popen(["true"])
    gone.wait()
    sweep.write({**sweep.read(), "status": "running", "driver": {"pid": gone.pid, "pid_started": None}})
    assert sweep.state()["status"] == "interrupted"
    assert [s["id"] for s in sweeps.all_sweeps(workspace)] == [sweep.id]
    stop = studio("stop", sweep.id, workspace=workspace.root)
    assert stop.wait(60) == 0, stop.stderr.read()
    assert sweep.state()["status"] == "stopped"
    missing = studio("stop", "sweep-19990101-000000", workspace=workspace.root)
    assert missing.wait(60) == 2 and "No sweep called 'sweep-19990101-000000'" in missing.stderr.read()

"""The bad-input corpus (tests/corpus.py) through the engine API and the command line.

Every case runs in its own folder with its own workspace, home folder and working folder, and asserts that the
message names the problem and that no file appeared anywhere but inside the workspace."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import partialmethod
from pathlib import Path

import pytest
import torch

from corpus import CASES, BY_ID, CHAT, PREFERENCE, Case, Input, Models
from studio import cli, tasks
from studio import recipe as recipes
from studio.run import jobs
from studio.engine.data import DataError
from studio.families.base import ModelError
from studio.recipe import DataSpec, Recipe, TrainSpec
from studio.tasks.instruction import pipeline as chat_pipeline
from studio.tasks.instruction import preference_pipeline
from studio.workspace import CACHE_VARIABLES, Workspace

STUDIO = str(Path(sys.executable).with_name("studio"))


@pytest.fixture(scope="module")
def models(tiny_vit, tiny_bert, tiny_whisper, tiny_llama) -> Models:
    return Models(image=tiny_vit, text=tiny_bert, audio=tiny_whisper, chat=tiny_llama)


class Sandbox:
    """inputs/ (the case's files, made before the snapshot), ws/ (the workspace), home/ and cwd/."""

    def __init__(self, root: Path, case: Case, models: Models):
        self.root, self.case = root, case
        self.inputs, self.ws, self.home, self.cwd = (root / n for n in ("inputs", "ws", "home", "cwd"))
        for folder in (self.inputs, self.home, self.cwd):
            folder.mkdir()
        self.input: Input = case.build(self.inputs, models)
        self.recipe = self.inputs / "recipe.yaml"
        text = self.input.recipe_text
        if isinstance(text, bytes):
            self.recipe.write_bytes(text)
        elif text is not None:
            self.recipe.write_text(text, encoding="utf-8")
        else:
            model = self.input.model or models.for_task(self.input.task)
            strategy = self.input.strategy or ("lora" if self.input.task in (CHAT, PREFERENCE) else
                                               "feature-extraction")
            Recipe(task=self.input.task, model=model, data=DataSpec(path=str(self.input.data), **self.input.spec),
                   strategy=strategy, strategy_options=self.input.options,
                   train=TrainSpec(epochs=1, batch_size=8)).save(self.recipe)
        self.before = self.files()

    def files(self) -> set[Path]:
        return set(self.root.rglob("*"))

    def check_nothing_outside_the_workspace(self) -> None:
        outside = sorted(str(p) for p in self.files() - self.before if self.ws not in p.parents and p != self.ws)
        assert not outside, f"files written outside the workspace: {outside}"
        for path in self.input.escape:
            assert not path.exists(), f"{path} was written"

    def env(self, monkeypatch) -> None:
        """This process: the case's limits, a home and working folder of its own, library caches in the workspace."""
        for name, value in self.case.env:
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("HOME", str(self.home))
        for name, sub in CACHE_VARIABLES.items():
            monkeypatch.setenv(name, str(self.ws / "cache" / sub))
        monkeypatch.chdir(self.cwd)


def check_words(message: str, case: Case) -> None:
    for pattern in case.expect:
        assert re.search(pattern, message, re.IGNORECASE), f"{case.id}: /{pattern}/ not in: {message}"


def engine_answer(box: Sandbox) -> tuple[str, Exception | None]:
    """What the engine API says about the case: the error, or the data report's warnings and skipped items."""
    try:
        recipe = tasks.resolved(recipes.load(box.recipe))
        task = tasks.get(recipe.task)
        if recipe.task == "instruction-tuning":  # checked as far as a run goes before its first step
            prepared = chat_pipeline.prepare(task, recipe, Workspace(box.ws), torch.device("cpu"), lambda m: None)
            task.strategies[recipe.strategy].prepare(prepared.model, recipe)
            data = prepared.data
        elif recipe.task == PREFERENCE:  # the same, through the preference pipeline
            prepared = preference_pipeline.prepare(task, recipe, Workspace(box.ws), torch.device("cpu"),
                                                   lambda m: None)
            task.strategies[recipe.strategy].prepare(prepared.weights, recipe)
            data = prepared.data
        else:
            data = task.load_data(recipe.data, seed=0, uploads_dir=Workspace(box.ws).uploads_dir)
        if box.case.layer == "model":
            task.build_backbone(recipe)
    except (recipes.RecipeError, DataError, ModelError) as exc:
        return str(exc), exc
    report = data.report
    return "\n".join(report.warnings + [f"{s['item']} ({s['reason']})" for s in report.skipped]), None


def test_the_corpus_is_large_and_covers_every_kind():
    assert len(CASES) >= 40
    assert {c.layer for c in CASES} == {"data", "recipe", "model"}
    assert sum(c.browser for c in CASES) >= 12


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_engine_api(case, tmp_path, models, monkeypatch):
    box = Sandbox(tmp_path, case, models)
    box.env(monkeypatch)
    message, error = engine_answer(box)
    assert (error is not None) == (case.outcome == "refused"), message
    check_words(message, case)
    assert "Traceback" not in message and "\n" not in (message if error else "")
    box.check_nothing_outside_the_workspace()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_command_line(case, tmp_path, models, monkeypatch, capsys):
    """`studio train RECIPE` in this process: refused cases exit non-zero with one line that names the problem;
    accepted cases train and print the warning. The run trains in-process here (a worker process per case would
    cost its start-up 82 times); test_command_line_in_a_new_process takes the real path."""
    box = Sandbox(tmp_path, case, models)
    box.env(monkeypatch)
    monkeypatch.setattr(jobs.JobManager, "__init__", partialmethod(jobs.JobManager.__init__, in_process=True))
    code = cli.main(["--workspace", str(box.ws), "train", str(box.recipe)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if case.outcome == "refused":
        assert code != 0, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: "), err
        check_words(last, case)
    else:
        assert code == 0, err
        check_words(err, case)
    box.check_nothing_outside_the_workspace()


IN_NEW_PROCESS = ["recipe-not-yaml", "zip-slip", "hub-id-offline", "pickled-weights"]


@pytest.mark.parametrize("case_id", IN_NEW_PROCESS)
def test_command_line_in_a_new_process(case_id, tmp_path, models):
    """The real `studio` command, with a home folder of its own and no cache settings: nothing lands in the home
    folder, the working folder or anywhere else outside the workspace."""
    case = BY_ID[case_id]
    box = Sandbox(tmp_path, case, models)
    env = {k: v for k, v in os.environ.items() if k not in CACHE_VARIABLES and k != "HF_HOME"}
    env.update(HOME=str(box.home), HF_HUB_OFFLINE="1", **dict(case.env))
    result = subprocess.run([STUDIO, "--workspace", str(box.ws), "train", str(box.recipe)], cwd=box.cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    check_words(last, case)
    box.check_nothing_outside_the_workspace()


def test_predict_refuses_bad_images_in_one_line(tmp_path, models, shapes_small, monkeypatch, capsys):
    """`studio predict` with a damaged file, a huge one and a missing one: exit 2, one line naming the problem."""
    from corpus import png_header
    for name, sub in CACHE_VARIABLES.items():
        monkeypatch.setenv(name, str(tmp_path / "ws" / "cache" / sub))
    Recipe(model=models.image, data=DataSpec(path=shapes_small), train=TrainSpec(epochs=1)).save(tmp_path / "r.yaml")
    assert cli.main(["--workspace", str(tmp_path / "ws"), "train", str(tmp_path / "r.yaml")]) == 0
    run = capsys.readouterr().out.strip().splitlines()[-1]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "huge.png").write_bytes(png_header(50_000, 50_000))
    for given, words in (("broken.jpg", "broken.jpg cannot be used: not a readable image"),
                         ("huge.png", "huge.png cannot be used: image is too large (2,500,000,000 pixels"),
                         ("absent.jpg", "image file not found")):
        code = cli.main(["--workspace", str(tmp_path / "ws"), "predict", run, str(tmp_path / given)])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err
        assert err.strip().splitlines()[-1].startswith("error: ") and words in err, err

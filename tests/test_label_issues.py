"""Examples that may be mislabelled: cleanlab on the probe's out-of-fold probabilities finds planted label flips
about as well as an expert's out-of-fold logistic regression on the same features; `studio label-issues` prints
them; a corrections file relabels and leaves out examples in the next run, and bad ones are refused in words."""
import csv
import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from helpers import WORDS, finished_run
from studio import tasks
from studio.cli import main
from studio.engine.data.errors import DataError
from studio.recipe import DataSpec, Recipe, TrainSpec
from studio.run.jobs import JobManager
from studio.tasks.classification import label_issues
from studio.workspace import Workspace

PER_CLASS = 30
FLIPPED = 0.1


def expert_top_k(x: np.ndarray, given: np.ndarray, C: float, k: int) -> np.ndarray:
    """The expert's ranking: out-of-fold logistic regression (5 stratified folds, standardised features, the same
    C), the k examples whose given label gets the lowest probability."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    probs = cross_val_predict(model, x, given, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                              method="predict_proba")
    return np.argsort(probs[np.arange(len(given)), given])[:k]


def precision(ranked, flipped: set) -> float:
    return sum(int(i) in flipped for i in ranked) / len(ranked) if len(ranked) else 0.0


def test_cleanlab_on_out_of_fold_probabilities_finds_flips_about_as_well_as_an_expert():
    rng = np.random.default_rng(0)
    classes, n, d = 4, 400, 24
    truth = rng.integers(0, classes, n)
    centres = rng.normal(0, 1.2, (classes, d))
    x = centres[truth] + rng.normal(0, 1.0, (n, d))  # overlapping classes: not every flip is findable
    given = truth.copy()
    flipped = set(rng.choice(n, int(FLIPPED * n), replace=False).tolist())
    for i in flipped:
        given[i] = (truth[i] + rng.integers(1, classes)) % classes
    k = len(flipped)
    probs = label_issues.out_of_fold(torch.tensor(x, dtype=torch.float32), torch.tensor(given), classes, C=1.0)
    ours, quality = label_issues.rank(given, probs)
    assert list(quality[ours]) == sorted(quality[ours])  # most suspect first
    mine, expert = precision(ours[:k], flipped), precision(expert_top_k(x, given, 1.0, k), flipped)
    print(f"precision among the top {k}: studio (cleanlab) {mine:.3f}, expert's out-of-fold LR {expert:.3f}")
    assert mine >= 0.9 * expert and expert > 0.5


def write_noisy_texts(path, seed: int = 1) -> tuple[str, set[int]]:
    """Topic texts, PER_CLASS per class, with FLIPPED of their labels changed: (csv path, flipped row numbers)."""
    rng = random.Random(seed)
    rows = [(" ".join(rng.choices(words, k=6)), label) for _ in range(PER_CLASS) for label, words in WORDS.items()]
    flipped = set(rng.sample(range(1, len(rows) + 1), int(FLIPPED * len(rows))))
    labels = list(WORDS)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for number, (text, label) in enumerate(rows, start=1):
            if number in flipped:
                label = rng.choice([other for other in labels if other != label])
            writer.writerow([text, label])
    return str(path), flipped


def text_recipe(data: str, corrections: str | None = None) -> Recipe:
    return Recipe(task="text-classification", model="all-minilm-l6-v2",
                  data=DataSpec(path=data, corrections=corrections), strategy="feature-extraction",
                  train=TrainSpec(batch_size=16))


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """One feature-extraction run on texts with planted flips, shared by the tests that read it."""
    root = tmp_path_factory.mktemp("labels")
    data, flipped = write_noisy_texts(root / "topics.csv")
    workspace = Workspace(root / "ws")
    manager = JobManager(workspace, in_process=True)
    run_dir, evaluation = finished_run(manager, text_recipe(data))
    return {"root": root, "data": data, "flipped": flipped, "workspace": workspace, "manager": manager,
            "run": run_dir, "eval": evaluation}


def test_a_run_lists_the_planted_flips_first_nearly_as_well_as_an_expert_on_the_same_features(noisy):
    evaluation, flipped = noisy["eval"], noisy["flipped"]
    source = evaluation["label_issues_from"]
    assert source["probabilities"] == "out-of-fold" and source["examples"] == 3 * PER_CLASS
    issues = evaluation["label_issues"]
    assert [i["score"] for i in issues] == sorted(i["score"] for i in issues)
    assert all(set(i) >= {"example", "given", "suggested", "score"} and i["given"] != i["suggested"]
               for i in issues)
    k = len(flipped)
    mine = precision([i["example"] for i in issues[:k]], flipped)
    # The expert works on the very features the run cached (training then validation, as the run read them).
    recipe = tasks.resolved(text_recipe(noisy["data"]))
    data = tasks.get(recipe.task).load_data(recipe.data, recipe.train.seed, noisy["workspace"].uploads_dir)
    feats = load_file(str(next(noisy["workspace"].cache_dir.glob("*.safetensors"))))
    x = torch.cat([feats["train"], feats["val"]]).double().numpy()
    given = np.array(data.train_labels + data.val_labels)
    keys = data.train_keys + data.val_keys
    expert = precision([keys[i] for i in expert_top_k(x, given, source["C"], k)], flipped)
    print(f"precision among the top {k} (texts, all-minilm-l6-v2 features): studio {mine:.3f}, expert {expert:.3f}")
    assert mine >= 0.9 * expert and mine >= 0.7


def test_the_command_prints_the_issues(noisy, capsys):
    assert main(["label-issues", str(noisy["run"]), "--json", "--top", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["label_issues"] == [{k: i[k] for k in ("example", "given", "suggested", "score")}
                                       for i in noisy["eval"]["label_issues"][:3]]
    assert main(["label-issues", str(noisy["run"])]) == 0
    assert "may be mislabelled" in capsys.readouterr().out
    assert main(["label-issues", "no-such-run", "--workspace", str(noisy["workspace"].root)]) == 2
    assert "No run called 'no-such-run'" in capsys.readouterr().err


def test_a_corrections_file_relabels_and_leaves_out_examples_in_the_next_run(noisy):
    issues = noisy["eval"]["label_issues"]
    relabel, leave_out = issues[0], issues[1]
    corrections = noisy["root"] / "corrections.csv"
    corrections.write_text(f"example,label\n{relabel['example']},{relabel['suggested']}\n"
                           f"{leave_out['example']},exclude\n")
    before = (noisy["root"] / "topics.csv").read_bytes()
    run_dir, evaluation = finished_run(noisy["manager"], text_recipe(noisy["data"], str(corrections)))
    assert (noisy["root"] / "topics.csv").read_bytes() == before  # the user's file is untouched
    report = json.loads((run_dir / "data_report.json").read_text())
    assert sum(report["train_counts"].values()) + sum(report["validation_counts"].values()) == 3 * PER_CLASS - 1
    assert any("1 example(s) relabelled and 1 left out" in w for w in report["warnings"])
    recipe = tasks.resolved(text_recipe(noisy["data"], str(corrections)))
    data = tasks.get(recipe.task).load_data(recipe.data, 0, noisy["workspace"].uploads_dir)
    named = dict(zip(data.train_keys + data.val_keys, data.train_labels + data.val_labels))
    assert leave_out["example"] not in named
    assert data.classes[named[relabel["example"]]] == relabel["suggested"]
    assert evaluation["label_issues_from"]["examples"] == 3 * PER_CLASS - 1
    assert relabel["example"] not in [i["example"] for i in evaluation["label_issues"]]


@pytest.mark.parametrize("content, words", [
    ("example,label\n9999,food\n", r"names 1 example\(s\) the data does not have \(9999\)"),
    ("example,label\n1,pastry\n", r"relabels examples as 'pastry', which is not one of the data's classes"),
    ("file,class\n1,food\n", r"has the columns file, class; it must have exactly two: example,label"),
    ("example,label\n1,food\n1,tech\n", r"names example '1' twice"),
    ("example,label\n\"1,food\n", r"corrections\.csv"),
])
def test_a_bad_corrections_file_is_refused_in_words(tmp_path, text_csv, content, words):
    corrections = tmp_path / "corrections.csv"
    corrections.write_text(content)
    recipe = tasks.resolved(text_recipe(text_csv, str(corrections)))
    with pytest.raises(DataError, match=words):
        tasks.get(recipe.task).load_data(recipe.data, 0, tmp_path)


def test_a_corrections_file_that_is_not_a_csv_is_refused(tmp_path, text_csv):
    recipe = tasks.resolved(text_recipe(text_csv, str(tmp_path / "fixes.txt")))
    (tmp_path / "fixes.txt").write_text("example,label\n")
    with pytest.raises(DataError, match=r"must be a \.csv file"):
        tasks.get(recipe.task).load_data(recipe.data, 0, tmp_path)


def test_a_fine_tuned_run_judges_with_the_probe_and_a_run_from_scratch_says_why_it_cannot(tmp_path, tiny_vit,
                                                                                           shapes_small):
    manager = JobManager(Workspace(tmp_path / "ws"), in_process=True)
    runs = {strategy: finished_run(manager, Recipe(model=tiny_vit, data=DataSpec(path=shapes_small),
                                                   strategy=strategy, train=TrainSpec(epochs=1, batch_size=8)))
            for strategy in ("full", "scratch")}
    tuned = runs["full"][1]["label_issues_from"]
    assert tuned["probabilities"] == "out-of-fold" and "in-sample" in tuned["note"]
    scratch = runs["scratch"][1]
    assert scratch["label_issues"] == [] and scratch["label_issues_from"]["probabilities"] is None
    assert "random weights" in scratch["label_issues_from"]["why"]
    assert main(["label-issues", str(runs["scratch"][0])]) == 0

"""How well the studio finds mislabelled examples (eval.json's label_issues): digits with 10% of their labels
flipped (files moved to another digit's folder), one feature-extraction run, and the precision among its k most
suspect examples (k = the number flipped) — against cleanlab run by hand on an expert's out-of-fold logistic
regression (scikit-learn's cross_val_predict, standardised features, the run's C) on the very same cached features,
and that expert's plain ranking by the given label's probability."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np

from bench import studio_side

FLIPPED = 0.1


def noisy_digits(ctx, per_class: int) -> tuple[Path, set[str]]:
    """A copy of the digits with FLIPPED of them moved into another digit's folder: (folder, their names as the
    studio names examples, class/file)."""
    clean = ctx.mnist("labels", per_class, 200)
    noisy = ctx.work / "labels-noisy"
    shutil.rmtree(noisy, ignore_errors=True)
    shutil.copytree(clean, noisy)
    files = sorted(noisy.glob("*/*.png"))
    classes = sorted(p.name for p in noisy.iterdir())
    rng, flipped = random.Random(0), set()
    for path in rng.sample(files, max(1, round(FLIPPED * len(files)))):
        other = rng.choice([c for c in classes if c != path.parent.name])
        target = noisy / other / f"from-{path.parent.name}-{path.name}"  # digits' file names repeat across classes
        path.rename(target)
        flipped.add(f"{other}/{target.name}")
    return noisy, flipped


def section_labels(ctx, results: dict) -> None:
    from cleanlab.filter import find_label_issues
    from safetensors.torch import load_file
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from studio import tasks
    cfg = ctx.cfg
    folder, flipped = noisy_digits(ctx, cfg.fe_per_class)
    manager = ctx.fresh_manager("workspace-labels", in_process=True)
    rec = studio_side.recipe("image", cfg.image_model, str(folder), "feature-extraction", batch_size=cfg.fe_batch)
    result = studio_side.must_complete(studio_side.run(manager, rec))
    report = json.loads((result["run_dir"] / "eval.json").read_text())
    k = len(flipped)
    precision = lambda names: sum(str(n) in flipped for n in names[:k]) / k  # noqa: E731
    studio = precision([issue["example"] for issue in report["label_issues"]])
    # the expert, on the features the run cached (its workspace has seen only this data)
    features = load_file(str(next(manager.workspace.cache_dir.glob("*.safetensors"))))
    resolved = tasks.resolved(rec)
    data = tasks.get(resolved.task).load_data(resolved.data, resolved.train.seed, manager.workspace.uploads_dir)
    x = np.concatenate([features["train"].double().numpy(), features["val"].double().numpy()])
    given = np.array(data.train_labels + data.val_labels)
    keys = data.train_keys + data.val_keys
    C = report["label_issues_from"]["C"]
    folds = min(5, int(np.bincount(given).min()))
    probs = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)), x, given,
                              cv=StratifiedKFold(folds, shuffle=True, random_state=0), method="predict_proba")
    by_hand = find_label_issues(given, probs, return_indices_ranked_by="self_confidence")
    by_probability = np.argsort(probs[np.arange(len(given)), given])
    results["label_issue_precision_at_k"] = studio
    results["details"]["labels"] = {
        "data": f"{len(given)} mnist digits ({cfg.fe_per_class} per class), {k} labels flipped ({FLIPPED:.0%})",
        "model": cfg.image_model, "k": k, "studio_precision_at_k": studio,
        "studio_flagged": len(report["label_issues"]), "studio_C": C,
        "cleanlab_on_expert_precision_at_k": precision([keys[i] for i in by_hand]),
        "cleanlab_on_expert_flagged": int(len(by_hand)),
        "expert_given_label_probability_precision_at_k": precision([keys[i] for i in by_probability]),
        "run_wall_s": round(result["wall_s"], 1),
        "counted": "share of the k most suspect examples that are truly flipped (k = the number flipped): the "
                   "studio's eval.json label_issues (cleanlab on its probe's out-of-fold probabilities) vs cleanlab's "
                   "find_label_issues by hand on scikit-learn's out-of-fold logistic regression (same features, "
                   "same C, standardised)"}

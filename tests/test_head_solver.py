"""The head solver reaches scikit-learn's optimum: same objective at the same C, same accuracy, and a search over
C that behaves like an expert's."""
import numpy as np
import pytest
import torch

from studio.tasks.classification import head_solver


@pytest.fixture(scope="module")
def problem():
    """A fixed 4-class problem on 60 positive, unequally scaled features (like pooled activations), 240 examples
    for training and 120 held out."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 60, generator=generator) * 0.7
    scales = torch.rand(60, generator=generator) * 5 + 0.1

    def sample(n):
        y = torch.arange(n) % 4
        x = ((centres[y] + torch.randn(n, 60, generator=generator)).abs() + 0.5) * scales
        return x, y
    return (*sample(240), *sample(120))


def sklearn_fit(xs, y, C, class_weight=None):
    """scikit-learn's logistic regression on features already standardised (the solver is what is compared)."""
    from sklearn.linear_model import LogisticRegression
    model = LogisticRegression(C=C, max_iter=10000, tol=1e-10, class_weight=class_weight)
    return model.fit(xs.double().numpy(), y.numpy())


@pytest.mark.parametrize("C", [0.01, 1.0])
@pytest.mark.parametrize("balanced", [False, True])
def test_solver_reaches_sklearns_optimum_at_the_same_C(problem, C, balanced):
    x, y, x_val, y_val = problem
    if balanced:  # drop most of class 3: imbalanced above 3:1, weighted as sklearn's class_weight="balanced"
        keep = (y != 3) | (torch.arange(len(y)) < 40)
        x, y = x[keep], y[keep]
    weights = head_solver.class_weights(y, 4)[y] if balanced else None
    ours = head_solver.fit(x.double(), y, 4, C=C, sample_weight=weights)
    xs = ours.standardizer(x.double())
    theirs = sklearn_fit(xs, y, C, "balanced" if balanced else None)
    # both solutions in the standardised space where the penalty applies (ours is stored folded)
    w = ours.weight.double() * ours.standardizer.scale
    b = ours.bias.double() + ours.weight.double() @ ours.standardizer.mean
    mine = float(head_solver.objective(xs, y, w, b, C, weights))
    sk = float(head_solver.objective(xs, y, torch.tensor(theirs.coef_).double(),
                                     torch.tensor(theirs.intercept_).double(), C, weights))
    assert abs(mine - sk) <= 1e-4 * sk
    acc_mine = float((ours.logits(x_val.double()).argmax(1) == y_val).double().mean())
    acc_sk = float((theirs.predict(ours.standardizer(x_val.double()).numpy()) == y_val.numpy()).mean())
    assert abs(acc_mine - acc_sk) <= 0.01


def test_a_feature_almost_constant_in_training_does_not_blow_up_a_new_example():
    """Pooled activations: a channel that is ~0 on every training example but one. Divided by its own tiny spread,
    an ordinary value on a new example would be ~1e5 standard deviations; the floor keeps it ordinary."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 20, generator=generator).abs()
    x[:, 0] = 0.0
    x[7, 0] = 1e-4
    scaler = head_solver.Standardizer.fit(x)
    new = torch.rand(1, 20, generator=generator)
    new[0, 0] = 0.7
    assert scaler(new).abs().max() < 100
    spread = x.std(0, unbiased=False)
    assert torch.equal(scaler.scale[1:], spread[1:].clamp(min=head_solver.SCALE_FLOOR * float(spread.mean())))


def test_folded_standardisation_gives_the_standardised_logits(problem):
    x, y, x_val, _ = problem
    fit = head_solver.fit(x, y, 4, C=1.0)
    w = fit.weight * fit.standardizer.scale
    b = fit.bias + fit.weight @ fit.standardizer.mean
    assert torch.allclose(fit.logits(x_val), fit.standardizer(x_val) @ w.T + b, atol=1e-3)


def test_search_scores_every_candidate_and_matches_an_expert(problem):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    x, y, x_val, y_val = problem
    seen = []
    fit = head_solver.fit(x, y, 4, on_candidate=seen.append)
    assert [row["C"] for row in seen] == sorted(head_solver.CS) and fit.folds == 5
    assert fit.C == max(seen, key=lambda r: (round(r["score"], 9), -r["C"]))["C"]
    expert = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
                          {"logisticregression__C": np.logspace(-4, 4, 9)},
                          cv=StratifiedKFold(5, shuffle=True, random_state=0)).fit(x.numpy(), y.numpy())
    ours = float((fit.logits(x_val).argmax(1) == y_val).float().mean())
    theirs = float((expert.predict(x_val.numpy()) == y_val.numpy()).mean())
    assert ours >= theirs - 0.02


def test_too_few_examples_to_cross_validate_fit_at_the_default_strength():
    x, y = torch.randn(5, 8), torch.tensor([0, 0, 1, 1, 2])  # class 2 has one example
    fit = head_solver.fit(x, y, 3)
    assert fit.folds == 0 and fit.C == head_solver.DEFAULT_C and fit.search == []
    assert (fit.logits(x).argmax(1) == y).all()


def test_stratified_folds_put_every_class_in_every_fold():
    y = torch.tensor([0] * 10 + [1] * 5 + [2] * 7)
    fold = head_solver.stratified_folds(y, 5)
    for f in range(5):
        assert set(y[fold == f].tolist()) == {0, 1, 2}

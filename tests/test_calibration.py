"""Temperature scaling: the fitted temperature undoes a known miscalibration, the error after it is measured on
examples it was not fitted on, and the temperature ends up inside the saved model."""
import torch

from studio.tasks.classification import calibration
from studio.tasks.classification import metrics as evaluation


def overconfident(n=600, factor=3.0, seed=0):
    """Labels drawn from softmax(z); the model reports factor × z (too sure of itself)."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 4, generator=generator) * 1.5
    labels = torch.multinomial(z.softmax(-1), 1, generator=generator).squeeze(1)
    return z * factor, labels


def test_temperature_undoes_overconfidence():
    logits, labels = overconfident()
    assert abs(calibration.fit_temperature(logits, labels) - 3.0) < 0.4
    got = calibration.calibrate(logits, labels)
    assert got["ece_after"] < got["ece_before"] / 2
    assert got["ece_before"] == calibration.ece(logits, labels)


def test_error_after_is_cross_fitted_on_the_other_half():
    logits, labels = overconfident(n=200, seed=1)
    a, b = calibration.halves(labels)
    assert not (a & b).any() and (a | b).all() and abs(int(a.sum()) - int(b.sum())) <= len(labels.unique())
    crossed = logits.clone()
    crossed[b] = logits[b] / calibration.fit_temperature(logits[a], labels[a])
    crossed[a] = logits[a] / calibration.fit_temperature(logits[b], labels[b])
    assert calibration.calibrate(logits, labels)["ece_after"] == calibration.ece(crossed, labels)


def test_too_few_examples_leave_the_scores_as_trained():
    logits, labels = overconfident(n=12)
    got = calibration.calibrate(logits, labels)
    assert got["temperature"] == 1.0 and got["ece_after"] is None and "12 validation examples" in got["reason"]


def test_folding_divides_the_logits():
    layer = torch.nn.Linear(5, 3)
    x = torch.randn(7, 5)
    before = layer(x).detach()
    calibration.fold_temperature(layer, 2.5)
    assert torch.allclose(layer(x), before / 2.5, atol=1e-6)


def test_wilson_interval_for_a_handful_of_examples():
    interval = evaluation.wilson_interval(5, 5)
    assert interval["high"] == 1.0 and 0.5 < interval["low"] < 0.6  # 5 of 5: the truth may be as low as ~57%
    assert evaluation.interval_warning(interval, 1.0)
    narrow = evaluation.wilson_interval(900, 1000)
    assert narrow["high"] - narrow["low"] < 0.05 and evaluation.interval_warning(narrow, 0.9) is None


def test_a_temperature_that_does_not_help_on_held_out_examples_is_not_delivered():
    """Measured on a 50-digit validation set: a confident head with one or two confidently wrong answers drove
    the fitted temperature to its bound (20), which flattened every score (cross-fitted error 40% vs 17% before).
    Here: well-calibrated scores plus one confidently wrong example per half."""
    generator = torch.Generator().manual_seed(3)
    labels = torch.arange(40) % 4
    logits = torch.full((40, 4), -4.0)
    logits[torch.arange(40), labels] = 4.0  # right and sure, as a well-fitted probe on easy data is
    logits += 0.1 * torch.randn(40, 4, generator=generator)
    a, b = calibration.halves(labels)
    for half in (a, b):
        i = int(half.nonzero()[0])
        logits[i] = -40.0
        logits[i, (labels[i] + 1) % 4] = 40.0  # wrong, and very sure of it
    fitted_alone = calibration.fit_temperature(logits, labels)
    assert fitted_alone > 3  # the fit alone would flatten the scores
    got = calibration.calibrate(logits, labels)
    assert got["ece_after_fitted"] >= got["ece_before"]
    assert got["temperature"] == 1.0 and got["ece_after"] == got["ece_before"] and "left as trained" in got["reason"]


def test_the_evaluate_tab_says_whether_the_scores_were_calibrated():
    from studio.ui.panels.classification import reliability
    logits, labels = overconfident(n=200, seed=2)
    fitted = {"calibration": calibration.calibrate(logits, labels)}
    assert "were calibrated" in reliability(fitted, "en")
    kept = {"calibration": {"temperature": 1.0, "ece_before": 0.12, "ece_after": 0.12, "ece_after_fitted": 0.3,
                            "reason": "a temperature fitted on half … left as trained"}}
    words = reliability(kept, "en")
    assert "were calibrated" not in words and "left as trained" in words and "12.0%" in words
    assert "12.0%" in reliability(kept, "de") and reliability(kept, "de") != words

"""The learning-rate range test: a curve of loss against learning rate, a suggestion inside the stretch where the
loss fell, and the model's weights untouched afterwards."""
import threading

import torch
import torch.nn.functional as F

from studio.engine import lr_finder


def problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 10, generator=generator) * 2
    y = torch.arange(600) % 3
    x = centres[y] + torch.randn(600, 10, generator=generator)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True,
                                       generator=generator)


def compute(model, inputs, targets):
    logits = model(inputs)
    return F.cross_entropy(logits, targets), logits


def test_suggestion_lies_where_the_loss_fell_and_weights_are_restored():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    groups = [{"params": list(model.parameters()), "lr": 1e-3}]
    found = lr_finder.range_test(model, groups, problem(), compute, torch.device("cpu"), None, 1e-3,
                                 threading.Event())
    lrs, losses = zip(*found["points"])
    assert found["steps"] == len(lrs) > 20 and list(lrs) == sorted(lrs)
    assert found["fell_from"] <= found["suggestion"] <= found["fell_to"]
    at = lrs.index(found["suggestion"])
    assert losses[at + 1] < losses[at - 1]  # the loss falls through the suggested rate
    assert losses[lrs.index(found["fell_to"])] < 0.5 * losses[0]  # and it really fell
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_suggest_finds_the_steepest_point_of_the_descent():
    lrs = [10.0 ** (e / 4) for e in range(-28, 1)]
    losses = [2.0] * 10 + [2.0 - 0.1 * i ** 2 for i in range(1, 5)] + [0.4, 0.3, 0.25, 0.2] + [5.0] * 11
    found = lr_finder.suggest(lrs, losses)
    assert found["fell_from"] == lrs[9] and found["fell_to"] == lrs[17]
    assert found["suggestion"] == lrs[12]  # the largest drop across its neighbours (1.6 → 0.4)


def test_auto_runs_only_where_it_costs_a_tenth_of_the_run():
    assert not lr_finder.worth_running("auto", run_steps=500)
    assert lr_finder.worth_running("auto", run_steps=1000)
    assert lr_finder.worth_running("on", run_steps=10) and not lr_finder.worth_running("off", run_steps=10 ** 6)

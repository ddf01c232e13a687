"""The learning-rate range test: a curve of loss against learning rate, a suggestion inside the stretch where the
loss fell, and the model's weights untouched afterwards."""
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from studio.engine import lr_finder
from studio.engine.distributed import Distributed, ShardedSampler
from studio.tasks.classification.metrics import ClassificationMetrics
from studio.engine.loop import Loop, LoopConfig
from studio.runfolder import NullWriter


def loop_on_a_problem(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 10, generator=generator) * 2
    y = torch.arange(600) % 3
    x = centres[y] + torch.randn(600, 10, generator=generator)
    data = TensorDataset(x, y)
    loader = DataLoader(data, batch_size=32, sampler=ShardedSampler(600, Distributed(), shuffle=True))
    return Loop(model, [{"params": list(model.parameters()), "lr": 1e-3}], loader, loader,
                LoopConfig(epochs=1, device=torch.device("cpu")), NullWriter(), compute,
                lambda: ClassificationMetrics(3))


def compute(model, inputs, targets):
    logits = model(inputs)
    return F.cross_entropy(logits, targets), logits


def test_suggestion_lies_where_the_loss_fell_and_weights_are_restored():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loop = loop_on_a_problem(model)
    found = lr_finder.range_test(loop, 1e-3)
    lrs, losses = zip(*found["points"])
    assert found["steps"] == len(lrs) > 20 and list(lrs) == sorted(lrs)
    assert found["fell_from"] <= found["suggestion"] <= found["fell_to"]
    at = lrs.index(found["suggestion"])
    assert losses[at + 1] < losses[at - 1]  # the loss falls through the suggested rate
    assert losses[lrs.index(found["fell_to"])] < 0.5 * losses[0]  # and it really fell
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert loop.step == 0 and not loop.history  # the run itself has not started


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

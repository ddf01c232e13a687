"""Batch norm trained from scratch: with a TensorFlow-style momentum (0.01, EfficientNet-Lite's) the running
statistics barely leave their starting values in a short run, so validation (which uses them) sits at chance
while training loss falls. Recomputing them over the training examples before each evaluation fixes that."""
import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from studio.engine.callbacks import BatchNormStatistics
from studio.engine.distributed import Distributed, ShardedSampler
from studio.tasks.classification.metrics import ClassificationMetrics
from studio.engine.loop import Loop, LoopConfig
from studio.runfolder import NullWriter


def colours(n, seed):
    """Colour-noise images far from mean 0 / variance 1: the class is which channel is brighter."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 3, 8, 8, generator=generator) + 20.0
    x[torch.arange(n), y] += 1.0
    return TensorDataset(x, y)


def compute(model, inputs, targets):
    logits = model(inputs)
    return F.cross_entropy(logits, targets), logits


def train(net, callbacks_for):
    train_set, val_set = colours(96, 0), colours(48, 1)
    loader = DataLoader(train_set, batch_size=16, sampler=ShardedSampler(96, Distributed(), shuffle=True))
    val = DataLoader(val_set, batch_size=48, sampler=ShardedSampler(48, Distributed(), shuffle=False))
    loop = Loop(net, [{"params": list(net.parameters()), "lr": 3e-2}], loader, val,
                LoopConfig(epochs=3, device=torch.device("cpu")), NullWriter(), compute,
                lambda: ClassificationMetrics(3))
    loop.callbacks = callbacks_for(train_set)
    result = loop.run()
    return result["history"][-1]


def test_recomputed_statistics_lift_validation_off_chance():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, momentum=0.01), nn.ReLU(), nn.Conv2d(8, 8, 3),
                        nn.BatchNorm2d(8, momentum=0.01), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 3))
    stale = train(copy.deepcopy(net), lambda data: [])
    fixed = train(copy.deepcopy(net), lambda data: [BatchNormStatistics(DataLoader(data, batch_size=32))])
    assert stale["train_loss"] < 1.0 and stale["accuracy"] < 0.5  # it learnt, but validation cannot tell
    assert fixed["accuracy"] >= 0.9


def test_statistics_are_those_of_the_training_examples():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.01), nn.Dropout(0.5))
    data = colours(64, 2)

    class Stub:  # what the callback reads from a loop
        model = net
        config = LoopConfig(epochs=1, device=torch.device("cpu"))
    BatchNormStatistics(DataLoader(data, batch_size=16)).on_evaluate_begin(Stub())
    with torch.no_grad():
        activations = net[0](data.tensors[0])
    bn = net[1]
    assert torch.allclose(bn.running_mean, activations.mean((0, 2, 3)), atol=1e-4)
    assert torch.allclose(bn.running_var, activations.var((0, 2, 3)), rtol=0.05)
    assert bn.momentum == 0.01 and not net.training  # put back as it was, ready to evaluate

"""A third task, defined entirely here to show that adding a task is adding a module: numeric regression from a
table (every numeric column but the target is an input). It registers itself when imported, so setting
STUDIO_PLUGINS=regression_task (with this folder on PYTHONPATH) makes the studio, its worker processes and
`studio train` know it. It uses the engine's seams: the loop with a compute function and streaming metrics, the
sampler, the callbacks (best weights, checkpoints, early stopping), the run folder."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from studio import catalog, tasks
from studio.engine.callbacks import load_state_file, standard
from studio.engine.data import DataError
from studio.engine.distributed import ShardedSampler
from studio.engine.loop import Loop, LoopConfig
from studio.families.base import ModelError, ModelInfo
from studio.recipe import DataSpec
from studio.runfolder import CARD, EVAL, RunFolder, write_text
from studio.tasks.base import Metric, Strategy, Task


@dataclass
class Report:
    """What the Data tab reads of any task's data: counts, warnings and skipped rows."""
    train_counts: dict
    validation_counts: dict
    warnings: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Table:
    columns: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    report: Report

    @property
    def train_items(self) -> list[str]:
        """Each training row as the playground takes it: its inputs, separated by commas."""
        return [",".join(f"{v:g}" for v in row.tolist()) for row in self.train_x]

    @property
    def val_items(self) -> list[str]:
        return [",".join(f"{v:g}" for v in row.tolist()) for row in self.val_x]


class Mse:
    """Streaming squared error: sums over batches (and ranks), never all outputs at once."""

    def __init__(self):
        self.total, self.count = torch.zeros(()), torch.zeros(())

    def update(self, outputs, targets):
        self.total += ((outputs - targets) ** 2).sum().detach().cpu()
        self.count += len(targets)

    def result(self, dist):
        total, count = dist.sum(torch.stack([self.total, self.count]))
        return {"loss": float(total / count), "rmse": float((total / count).sqrt())}


def squared_error(model, inputs, targets):
    outputs = model(inputs).squeeze(-1)
    return ((outputs - targets) ** 2).mean(), outputs


class Regression(Task):
    name = "tabular-regression"
    title = "Numbers (predict a value from a table)"
    modality = "table"
    strategies = {"full": Strategy("full", "Train the whole model", "a small network learns from the numbers.",
                                   {"epochs": 20, "batch_size": 16, "learning_rate": 1e-2})}
    default_strategy = "full"
    headline = Metric("rmse", "validation RMSE", higher_is_better=False)

    def data_keys(self, data: DataSpec):
        return ("label_column",)

    def accepts(self, path: Path) -> bool:
        return path.suffix.lower() == ".csv"

    def check_model(self, model, trust_remote_code=False):
        if model != "mlp":
            raise ModelError(f"'{model}': this task trains its own small network; use model: mlp.")
        return "a small network trained from scratch."

    def load_data(self, spec: DataSpec, seed: int, uploads_dir: Path) -> Table:
        frame = pd.read_csv(spec.path)
        if spec.label_column not in frame:
            raise DataError(f"Column '{spec.label_column}' (data.label_column) is not in {Path(spec.path).name}.")
        inputs = [c for c in frame.columns if c != spec.label_column]
        x = torch.tensor(frame[inputs].to_numpy(), dtype=torch.float32)
        y = torch.tensor(frame[spec.label_column].to_numpy(), dtype=torch.float32)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        cut = max(1, int(len(x) * spec.validation_split))
        val, train = order[:cut], order[cut:]
        report = Report({"rows": len(train)}, {"rows": len(val)})
        return Table(inputs, x[train], y[train], x[val], y[val], report)

    def train(self, ctx) -> dict:
        recipe, run = ctx.recipe, ctx.run
        self.check_model(recipe.model)
        data = self.load_data(recipe.data, recipe.train.seed, ctx.workspace.uploads_dir)
        ctx.events.emit("data", classes=[], train=len(data.train_x), validation=len(data.val_x), skipped=0,
                        warnings=[])
        model = nn.Sequential(nn.Linear(len(data.columns), 16), nn.ReLU(), nn.Linear(16, 1)).to(ctx.device)
        ctx.events.emit("model", family="mlp", total=sum(p.numel() for p in model.parameters()),
                        trainable=sum(p.numel() for p in model.parameters()))
        t = recipe.train
        train_set, val_set = TensorDataset(data.train_x, data.train_y), TensorDataset(data.val_x, data.val_y)
        loader = DataLoader(train_set, batch_size=t.batch_size, generator=torch.Generator().manual_seed(t.seed),
                            sampler=ShardedSampler(len(train_set), ctx.dist, shuffle=True, seed=t.seed))
        val = DataLoader(val_set, batch_size=64, sampler=ShardedSampler(len(val_set), ctx.dist, shuffle=False))
        trained, groups = ctx.dist.wrap(model, [{"params": list(model.parameters()), "lr": t.learning_rate}])
        loop = Loop(trained, groups, loader, val,
                    LoopConfig(epochs=t.epochs, device=ctx.device), ctx.events, squared_error, Mse, ctx.cancel,
                    dist=ctx.dist)
        loop.callbacks, best = standard(run, t.early_stopping_patience, extra=ctx.callbacks)
        if ctx.resume and run.last_state.exists():
            loop.restore(load_state_file(run.last_state))
        result = loop.run()
        best.restore(loop)
        final = loop.evaluate()
        if ctx.dist.is_main:
            run.write(EVAL, {"rmse": final["rmse"], "loss": final["loss"], "history": result["history"],
                             "steps": result["steps"], "best_epoch": result["best_epoch"]})
            run.model_dir.mkdir(exist_ok=True)
            save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                      str(run.model_dir / "mlp.safetensors"))
            ModelInfo(model="mlp", family="", arch="", task=self.name, labels=[],
                      preprocessing={"columns": data.columns}).save(run.model_dir)
            write_text(run.model_dir / CARD, model_card(run))
        return {"rmse": final["rmse"], "val_loss": final["loss"]}

    def predictor(self, folder: Path):
        return Predictor(folder)



def model_card(run: RunFolder) -> str:
    report = run.read(EVAL) or {}
    return f"# {run.id}\n\nA small network predicting a number; validation RMSE {report.get('rmse', 0):.3f}.\n"


class Predictor:
    def __init__(self, folder: Path):
        self.columns = json.loads((folder / "studio_model.json").read_text())["preprocessing"]["columns"]
        self.model = nn.Sequential(nn.Linear(len(self.columns), 16), nn.ReLU(), nn.Linear(16, 1))
        self.model.load_state_dict(load_file(str(folder / "mlp.safetensors")))

    @torch.inference_mode()
    def predict(self, inputs: list, top_k: int = 3) -> list[dict]:
        rows = torch.tensor([[float(v) for v in str(x).split(",")] for x in inputs])
        return [{"value": float(v)} for v in self.model(rows).squeeze(-1)]


tasks.register(Regression())
catalog.add(catalog.CatalogEntry("mlp", Regression.name, "mlp", "package", "mlp", "A small network", 0.001,
                                 "instant", "numbers in a table"))

"""The experiment trackers a run can report to (train.report_to): TensorBoard, MLflow and trackio, each through its
own library. Each has `start()` (open or continue its run), `log(rows)` ((step, {name: value}) pairs) and
`finish(outcome)` (completed, failed or cancelled; a completed run also sends its results). They are called from
studio.engine.tracking's thread only, never from the training loop, and may be slow or raise: that module keeps
the run going. Their libraries are imported in `start()`: they belong to the optional `tracking` extra."""
from __future__ import annotations

import os
import time
from pathlib import Path

from studio import recipe as recipes
from studio.runfolder import EVAL, MODEL_DIR, TENSORBOARD_DIR, TRACKING, RunFolder
from studio.workspace import Workspace

MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "cancelled": "KILLED"}
MLFLOW_BATCH = 1000  # MLflow's limit of metrics in one log_batch call
MLFLOW_PARAM_BATCH = 100  # and of params


def flat(value: dict, prefix: str = "") -> dict:
    """A recipe as dotted keys (train.learning_rate, strategy_options.lora_r) → values."""
    out = {}
    for key, inner in value.items():
        if isinstance(inner, dict) and inner:
            out.update(flat(inner, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = inner
    return out


class Tracker:
    """What every tracker knows of the run it reports."""
    name = ""

    def __init__(self, run: RunFolder, recipe: recipes.Recipe, workspace: Workspace, owner: str):
        self.run, self.recipe, self.workspace, self.owner = run, recipe, workspace, owner

    def where(self) -> str:
        """Where its records go, in words for the run's log."""
        raise NotImplementedError

    def results(self) -> tuple[str, object]:
        """(the recipe as YAML, the confusion matrix as a picture or None) of a finished run."""
        return self.run.recipe_text(), confusion_image(self.run.read(EVAL))


class TensorBoard(Tracker):
    """Event files in RUN/tensorboard/; a resumed run adds files to the same folder."""
    name = "TensorBoard"

    def where(self) -> str:
        return str(self.run.file(TENSORBOARD_DIR))

    def start(self) -> None:
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(self.where())

    def log(self, rows: list[tuple[int, dict]]) -> None:
        for step, figures in rows:
            for name, value in figures.items():
                self.writer.add_scalar(name, value, step)

    def finish(self, outcome: str) -> None:
        if outcome == "completed":
            import numpy as np
            text, image = self.results()
            # Indented: TensorBoard shows text as Markdown, where this keeps the YAML's lines as they are.
            self.writer.add_text("recipe", "\n".join("    " + line for line in text.splitlines()))
            if image is not None:
                self.writer.add_image("confusion_matrix", np.asarray(image), dataformats="HWC")
        self.writer.close()


class MLflow(Tracker):
    """A run in the recipe's tracking store (the workspace's mlflow.db unless it names another), in the experiment
    named after the task. Its id is kept in the run folder, so a resumed run continues it."""
    name = "MLflow"

    @property
    def uri(self) -> str:
        return self.recipe.train.mlflow_tracking_uri or self.workspace.mlflow_uri

    @property
    def remote(self) -> bool:
        return self.uri.startswith(("http:", "https:"))

    def where(self) -> str:
        return f"{self.uri} (experiment {self.recipe.task}, run {self.run.id})"

    def start(self) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException
        if self.remote:
            # A server that is down costs seconds, not MLflow's default of minutes of retries (an environment
            # that sets its own values keeps them).
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        self.client = MlflowClient(tracking_uri=self.uri)
        kept = self.run.read(TRACKING) or {}
        self.run_id = kept.get("mlflow_run_id") if kept.get("mlflow_tracking_uri") == self.uri else None
        try:
            logged = self.client.get_run(self.run_id).data.params if self.run_id else None
        except MlflowException:  # deleted from the store since: a new run
            logged = None
        if logged is None:
            tags = {"studio_run_id": self.run.id, "owner": self.owner, "mlflow.user": self.owner}
            self.run_id = self.client.create_run(self._experiment(), run_name=self.run.id, tags=tags).info.run_id
            self.run.write(TRACKING, {**kept, "mlflow_run_id": self.run_id, "mlflow_tracking_uri": self.uri})
            logged = {}
        else:
            self.client.update_run(self.run_id, status="RUNNING")
        # MLflow refuses to change a param: a run retried with half the batch keeps the first value.
        params = [Param(k, str(v)) for k, v in flat(recipes.to_dict(self.recipe)).items() if k not in logged]
        for first in range(0, len(params), MLFLOW_PARAM_BATCH):
            self.client.log_batch(self.run_id, params=params[first:first + MLFLOW_PARAM_BATCH])

    def _experiment(self) -> str:
        from mlflow.exceptions import MlflowException
        name = self.recipe.task
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        # A remote server keeps the files where it chooses; a local store keeps them in the workspace.
        location = None if self.remote else self.workspace.mlflow_artifacts.as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException:  # another run created it meanwhile
            return self.client.get_experiment_by_name(name).experiment_id

    def log(self, rows: list[tuple[int, dict]]) -> None:
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        metrics = [Metric(name, value, now, step) for step, figures in rows for name, value in figures.items()]
        for first in range(0, len(metrics), MLFLOW_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[first:first + MLFLOW_BATCH])

    def finish(self, outcome: str) -> None:
        if outcome == "completed":
            text, image = self.results()
            self.client.log_text(self.run_id, text, "recipe.yaml")
            if image is not None:
                self.client.log_image(self.run_id, image, artifact_file="confusion_matrix.png")
            if self.run.file(EVAL).exists():
                self.client.log_artifact(self.run_id, str(self.run.file(EVAL)))
            if self.run.model_dir.is_dir():
                self.client.log_artifacts(self.run_id, str(self.run.model_dir), artifact_path=MODEL_DIR)
        self.client.set_terminated(self.run_id, MLFLOW_STATUS[outcome])


class Trackio(Tracker):
    """A run named after the studio's in the project named after the task, stored in <workspace>/trackio/."""
    name = "trackio"

    def where(self) -> str:
        return str(self.workspace.trackio_dir)

    def start(self) -> None:
        folder = self.workspace.trackio_dir
        # trackio reads its folder from the environment once, when it is first imported.
        os.environ["TRACKIO_DIR"] = str(folder)
        import trackio
        from trackio.utils import TRACKIO_DIR
        if Path(TRACKIO_DIR) != folder:
            raise RuntimeError(f"trackio already writes to {TRACKIO_DIR} in this process")
        self.tracker = trackio.init(project=self.recipe.task, name=self.run.id, resume="allow", embed=False,
                                    config=flat(recipes.to_dict(self.recipe)), auto_log_cpu=False,
                                    auto_log_gpu=False)

    def log(self, rows: list[tuple[int, dict]]) -> None:
        for step, figures in rows:
            self.tracker.log(figures, step=step)

    def finish(self, outcome: str) -> None:
        self.tracker.finish()


TRACKERS = {"tensorboard": TensorBoard, "mlflow": MLflow, "trackio": Trackio}


def confusion_image(report: dict | None):
    """eval.json's confusion matrix as a picture (rows: the true class, columns: the predicted one; each cell
    shaded by its share of the row, so a class's recall reads as the darkness of its diagonal cell); None when
    the task wrote none."""
    from PIL import Image, ImageDraw, ImageFont
    matrix, labels = (report or {}).get("confusion_matrix"), (report or {}).get("labels")
    if not matrix or not labels or len(labels) != len(matrix):
        return None
    font = ImageFont.load_default()
    names = [f"{i}  {str(label)[:24]}" for i, label in enumerate(labels)]
    cell = max(16, min(48, 960 // len(labels)))
    left = int(max(font.getlength(name) for name in names)) + 16
    top = 40
    image = Image.new("RGB", (left + cell * len(labels) + 8, top + cell * len(labels) + 8), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 4), "rows: true class, columns: predicted class", fill="black", font=font)
    for i, row in enumerate(matrix):
        _centered(draw, (left + i * cell + cell / 2, top - 10), str(i), font, "black")
        _centered(draw, (8 + font.getlength(names[i]) / 2, top + i * cell + cell / 2), names[i], font, "black")
        total = sum(row) or 1
        for j, count in enumerate(row):
            share = count / total
            light = int(255 * (1 - 0.8 * share))
            x, y = left + j * cell, top + i * cell
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=(light, light, 255), outline=(210, 210, 210))
            if cell >= 24:
                _centered(draw, (x + cell / 2, y + cell / 2), str(count), font, "white" if share > 0.6 else "black")
    return image


def _centered(draw, centre: tuple[float, float], text: str, font, fill) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text((centre[0] - (right + left) / 2, centre[1] - (bottom + top) / 2), text, fill=fill, font=font)

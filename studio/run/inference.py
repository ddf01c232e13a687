"""Predictions from a finished run's saved model, whatever its task: Predictor(run folder or model folder)."""
from __future__ import annotations

from pathlib import Path

from studio import tasks
from studio.families.base import ModelInfo
from studio.runfolder import ModelNotReady, model_folder

__all__ = ["ModelNotReady", "Predictor", "explainer", "model_folder"]


class Predictor:
    """The task's predictor for a saved model: predict(inputs, top_k) gives one answer (a dict) per input."""

    def __init__(self, path: Path | str):
        self.folder = model_folder(path)
        self.info = ModelInfo.read(self.folder)
        self.task = tasks.get(self.info.task)
        self.impl = self.task.predictor(self.folder)
        self.labels = self.info.labels

    @property
    def chats(self) -> bool:
        """Its answers are written by a chat model (predict then takes max_new_tokens)."""
        return hasattr(self.impl, "chat")

    def predict(self, inputs: list, top_k: int = 3, max_new_tokens: int | None = None) -> list[dict]:
        options = {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}
        return self.impl.predict(inputs, top_k=top_k, **options)


def explainer(path: Path | str):
    """The task's explainer for a run's saved model (explain(inputs, out_dir), check_input(value)), or None where
    the task does not explain its answers."""
    folder = model_folder(path)
    return tasks.get(ModelInfo.read(folder).task).explainer(folder)

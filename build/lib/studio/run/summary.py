"""Every run of a workspace in one line each, for the runs lists (CLI, UI, API): what the run folder's status says,
and the run's headline figure as its task names it (accuracy for a classifier, perplexity for a chat model, …)."""
from __future__ import annotations

from studio import tasks
from studio.errors import UserError
from studio.workspace import Workspace


def headline(status: dict) -> dict | None:
    """{"name", "words", "value", "shown", "higher_is_better"} of a run's headline metric; None for a task this
    studio does not know (a plugin not installed here)."""
    try:
        metric = tasks.get(status.get("task") or "").headline
    except UserError:
        return None
    value = status.get(metric.key)
    return {"name": metric.key, "words": metric.words, "value": value, "shown": metric.format(value),
            "higher_is_better": metric.higher_is_better}


def runs(workspace: Workspace) -> list[dict]:
    """One summary per run folder, oldest first, with its headline metric."""
    return [{**run, "metric": headline(run)} for run in workspace.runs()]

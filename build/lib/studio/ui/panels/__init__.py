"""The page parts that show a kind of task: how its data is previewed (Data tab), how its results and mistakes are
shown (Evaluate tab), and how a person tries its model (Playground tab). A task names the view it wants
(Task.view); a task with none, or one this studio has no panel for (a plugin's), gets the generic panel. A plugin
can add a view with `register`. Every app builds its own panels."""
from __future__ import annotations

from studio.ui.panels.audio import AudioPanel
from studio.ui.panels.base import Panel
from studio.ui.panels.chat import ChatPanel
from studio.ui.panels.image import ImagePanel
from studio.ui.panels.text import TextPanel

VIEWS: dict[str, type[Panel]] = {"": Panel, "image-classes": ImagePanel, "text-classes": TextPanel,
                                 "audio-classes": AudioPanel, "chat": ChatPanel}


def register(view: str, panel: type[Panel]) -> None:
    VIEWS[view] = panel


def for_app() -> dict[str, Panel]:
    """A panel of each view for one app; panels whose results look alike share one results view."""
    results: dict[type, object] = {}
    out = {}
    for view, cls in VIEWS.items():
        if cls.results_view not in results:
            results[cls.results_view] = cls.results_view()
        out[view] = cls(results[cls.results_view])
    return out

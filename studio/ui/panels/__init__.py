"""Each task's own parts of the page: how its data is previewed (Data tab), how its mistakes are shown (Evaluate
tab), and how a person tries its model (Playground tab). One module per task; a plugin registers its own."""
from __future__ import annotations

import importlib

PANELS = {"image-classification": "studio.ui.panels.image_classification",
          "text-classification": "studio.ui.panels.text_classification",
          "audio-classification": "studio.ui.panels.audio_classification",
          "instruction-tuning": "studio.ui.panels.instruction_tuning"}


def register(task: str, module: str) -> None:
    PANELS[task] = module


def get(task: str):
    """The task's Panel, or the generic one for a task without its own (a plugin's, say)."""
    from studio.ui.panels.base import Panel
    module = PANELS.get(task)
    return importlib.import_module(module).PANEL if module else Panel()


def all_panels() -> list:
    """One Panel per module (tasks may share one), in registration order."""
    seen, out = set(), []
    for module in PANELS.values():
        panel = importlib.import_module(module).PANEL
        if id(panel) not in seen:
            seen.add(id(panel))
            out.append(panel)
    return out

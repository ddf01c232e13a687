"""What the Data tab makes of a file: which task an upload goes to, the column a name says it is, the words of a
finished check, and the last checks kept (a page reloading does not decode every file again)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from studio import tasks
from studio.engine.data import DataError
from studio.engine.data.tables import TABLE_SUFFIXES, table_columns
from studio.ui.i18n import tr, tr_said

CHECKS_KEPT = 16


class Checks:
    """The last data checks of this app, so a page reloading does not decode every file again."""

    def __init__(self, kept: int = CHECKS_KEPT):
        self.kept, self._checked, self._lock = kept, OrderedDict(), threading.Lock()

    def get(self, key: str):
        with self._lock:
            return self._checked.get(key)

    def put(self, key: str, data) -> None:
        with self._lock:
            self._checked[key] = data
            self._checked.move_to_end(key)
            while len(self._checked) > self.kept:
                self._checked.popitem(last=False)


def task_for(path: Path, current: str) -> str:
    """For a table, the task whose columns it names best (the session's on a tie); else the session's task if it
    can read this data, else the first task that can."""
    if path.suffix.lower() in TABLE_SUFFIXES:
        try:
            columns = table_columns(path)
        except DataError:
            columns = []
        fits = {name: tasks.get(name).fit(columns) for name in tasks.names() if tasks.get(name).accepts(path)}
        best = max(fits.values(), default=0)
        if best:
            return current if fits.get(current) == best else next(n for n, fit in fits.items() if fit == best)
    if tasks.get(current).accepts(path):
        return current
    return next((name for name in tasks.names() if tasks.get(name).accepts(path)), current)


def report_lines(task, data, name: str, lang: str) -> tuple[str, str]:
    """(the data's line in the top bar, the report in words) of checked data."""
    report = data.report
    train, val = len(data.train_items), len(data.val_items)
    total = train + val
    classes = len(data.classes) if task.classes else 0
    note = (tr("{name}: {total} examples, {classes} classes", lang, name=name, total=total, classes=classes)
            if classes else tr("{name}: {total} examples", lang, name=name, total=total))
    lines = [tr("**Ready:** {total} examples in {classes} classes ({train} for training, {val} held back to "
                "measure accuracy).", lang, total=total, classes=classes, train=train, val=val) if classes else
             tr("**Ready:** {total} examples ({train} for training, {val} held back to measure how well the "
                "model learned).", lang, total=total, train=train, val=val)]
    lines += [f"- **{tr('Note', lang)}:** {tr_said(w, lang)}" for w in report.warnings]
    if report.skipped:
        shown = report.skipped[:8]
        more = len(report.skipped) - len(shown)
        lines.append(f"\n{tr('Skipped', lang)}: " + "; ".join(f"`{s['item']}` ({s['reason']})" for s in shown)
                     + (f"; {tr('and {n} more', lang, n=more)}" if more else ""))
    return note, "\n".join(lines)

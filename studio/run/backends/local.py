"""The local backend: a worker process per run on this machine, queued per device by studio/run/admission.py.

spare: keep a worker process started ahead of need (a long-lived studio such as the UI), so a run starts without
waiting for Python to import torch and transformers."""
from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from studio.run import worker
from studio.run.backends.base import Backend, last_lines
from studio.runfolder import WORKER_LOG, RunFolder


class LocalBackend(Backend):
    name = "local"

    def __init__(self, spare_log: Path | None = None):
        """spare_log: where a spare worker writes (None: no spare)."""
        self._spare_log = spare_log
        self._spare = None
        self._spare_wanted, self._spare_pending = spare_log is not None, False
        self._spare_lock = threading.Lock()
        self._replace_spare()

    def submit(self, run: RunFolder, resume: bool) -> subprocess.Popen:
        with self._spare_lock:
            spare, self._spare = self._spare, None
        if spare is not None and worker.assign(spare, run, resume):
            return spare
        return worker.spawn(run, resume)

    def logs(self, run: RunFolder, tail: int | None = None) -> str:
        try:
            text = run.file(WORKER_LOG).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return last_lines(text, tail)

    def worker_ended(self) -> None:
        self._replace_spare()

    def _replace_spare(self) -> None:
        """A new spare once the last one was taken, one at a time (a burst of starts makes one, not many). Called
        when a run's worker has ended, not when it starts: a spare importing torch and transformers beside a run
        that has just begun takes a core from it (measured: Whisper's features, 2 CPU cores, 2.7 s slower)."""
        with self._spare_lock:
            if not self._spare_wanted or self._spare is not None or self._spare_pending:
                return
            self._spare_pending = True
        threading.Thread(target=self._new_spare, name="spare-worker", daemon=True).start()

    def _new_spare(self) -> None:
        spare = worker.spawn_spare(self._spare_log)
        with self._spare_lock:
            old, self._spare, self._spare_pending = self._spare, spare, False
        if old is not None:
            old.stdin.close()  # an unused spare exits when its stdin closes

    def close(self) -> None:
        """Lets the spare worker go (it exits); running workers go on."""
        self._spare_wanted = False
        with self._spare_lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.stdin.close()

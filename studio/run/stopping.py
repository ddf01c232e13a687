"""How a process that carries a run hears that it should stop: a `cancel` file in the run folder (any process may
write it: `studio stop`, the UI) or a signal to the process (SIGUSR1 from the studio, SIGTERM from Ray's stop_job).
The worker and the cluster placer both listen; neither imports torch for it."""
from __future__ import annotations

import signal
import threading

from studio.runfolder import RunFolder

CANCEL_POLL_S = 0.2


def watch_cancel_file(run: RunFolder, cancel: threading.Event, done: threading.Event) -> None:
    """Sets `cancel` when the run's cancel file appears, until `done` is set."""
    def poll():
        while not (cancel.is_set() or done.wait(CANCEL_POLL_S)):
            if run.cancel_requested():
                cancel.set()
    threading.Thread(target=poll, name="cancel-watch", daemon=True).start()


def watch_signals(cancel: threading.Event) -> None:
    """Sets `cancel` when this process is asked to stop by a signal (the main thread of a process only)."""
    def on_signal(signum, frame):
        cancel.set()
    for sig in (signal.SIGUSR1, signal.SIGTERM):
        signal.signal(sig, on_signal)

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


STOPPED_BY_USER = "Stopped by the user."
STOPPED_FROM_OUTSIDE = ("Stopped from outside the studio (a signal to its process: `ray job stop`, or its machine "
                        "shutting down). Resume it to continue from its last checkpoint.")
_from_outside = threading.Event()  # this process was stopped from outside the studio (one process: one run)


def watch_signals(cancel: threading.Event, run: RunFolder | None = None) -> None:
    """Sets `cancel` when this process is asked to stop by a signal (the main thread of a process only). The
    studio's Stop (the UI, `studio stop`, the API) writes the run's cancel file before it signals; a SIGTERM that
    finds no such file came from outside the studio (Ray's stop_job run by someone else, a shutdown): see ending."""
    def on_signal(signum, frame):
        if signum == signal.SIGTERM and run is not None and not run.cancel_requested():
            _from_outside.set()
        cancel.set()
    for sig in (signal.SIGUSR1, signal.SIGTERM):
        signal.signal(sig, on_signal)


def ending(run: RunFolder) -> tuple[str, str]:
    """(status, message) of a run that stopped on its cancel event: "cancelled" when the studio (or a callback
    in-process) stopped it; "interrupted", to be resumed, when it was stopped from outside: no one chose it here."""
    if _from_outside.is_set():
        return "interrupted", STOPPED_FROM_OUTSIDE
    return "cancelled", STOPPED_BY_USER

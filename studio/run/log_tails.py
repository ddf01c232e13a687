"""The last lines of what runs' jobs printed, for a page that looks every second: the run's backend (one per cluster,
backends.cluster) is asked again only when the run has moved on (more events) and the last ask is REFETCH_S old,
or at once when the run's status changed (its last lines as it ends); in between, the lines asked last. With them,
the backend's own word on the job (Ray's: RUNNING, SUCCEEDED…), from its status()."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from studio.run import backends
from studio.runfolder import RunFolder

REFETCH_S = 5.0
KEEP_RUNS = 64  # runs remembered (the oldest forgotten first): a long-lived studio watches many


@dataclass(frozen=True)
class Tail:
    lines: list[str]
    job_status: str | None  # the backend's word on the run's job (None: it has none)
    status: str | None  # the run's status when asked
    events: int  # the run's number of events when asked
    at: float  # when asked (time.monotonic)
    answered: bool = True  # False: the backend did not answer; asked again when due


class LogTails:
    def __init__(self, lines: int, every_s: float = REFETCH_S):
        self.lines, self.every_s = lines, every_s
        self._tails: dict[str, Tail] = {}
        self._lock = threading.Lock()

    def get(self, run: RunFolder, status: dict, events: int, now: float | None = None) -> Tail:
        """The run's job's last lines. Raises what the backend raises when it does not answer (OSError,
        RuntimeError, a UserError); it is asked again only when due."""
        now = time.monotonic() if now is None else now
        with self._lock:
            last = self._tails.get(run.id)
            if last is not None and not self._due(last, status.get("status"), events, now):
                return last
            # marked as asked before asking: a cluster that does not answer is not asked on every tick
            self._keep(run.id, Tail(last.lines if last else [], last.job_status if last else None,
                                    status.get("status"), events, now, answered=False))
        backend = backends.for_run(run)
        job_status = backend.status(run).get("cluster_status")
        lines = backend.logs(run, tail=self.lines).strip().splitlines()[-self.lines:]
        tail = Tail(lines, job_status, status.get("status"), events, now)
        with self._lock:
            self._keep(run.id, tail)
        return tail

    def _due(self, last: Tail, state: str | None, events: int, now: float) -> bool:
        if state != last.status:
            return True
        return (events != last.events or not last.answered) and now - last.at >= self.every_s

    def _keep(self, run_id: str, tail: Tail) -> None:
        self._tails.pop(run_id, None)
        self._tails[run_id] = tail
        while len(self._tails) > KEEP_RUNS:
            del self._tails[next(iter(self._tails))]

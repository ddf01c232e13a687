"""A Ray job's log as it grows, for the Train tab: one thread per followed job reads Ray's websocket tail
(JobSubmissionClient.tail_job_logs, which starts at the log's beginning) into a bounded buffer of its last lines,
instead of downloading the whole log again on each look. The thread stops when the job ends (Ray closes the tail:
the buffer then holds the log's end) or when no one has read the buffer for IDLE_S. A tail that fails says why in
`failed`; the backend then asks for the whole log (get_job_logs) instead."""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque

log = logging.getLogger(__name__)
KEEP_LINES = 2000
MAX_LINE = 10_000  # characters kept of a line that has not ended yet
IDLE_S = 60.0
WATCH_S = 0.5  # how often the thread looks whether anyone still reads


class JobLogFollower:
    def __init__(self, client, job_id: str, keep: int = KEEP_LINES, idle_s: float = IDLE_S):
        self.client, self.job_id, self.idle_s = client, job_id, idle_s
        self._lines: deque[str] = deque(maxlen=keep)
        self._partial = ""  # a chunk's unfinished last line
        self._lock = threading.Lock()
        self.read_at = time.monotonic()
        self.heard = threading.Event()  # the first chunk came, or the tail ended
        self.ended = threading.Event()
        self.idle = False  # ended because no one read it
        self.failed: str | None = None  # ended because the tail failed: why
        self.failed_at = 0.0  # when (time.monotonic())
        threading.Thread(target=self._follow, name=f"tail-{job_id}", daemon=True).start()

    def lines(self, tail: int) -> list[str]:
        """The log's last `tail` lines received so far (the unfinished one too)."""
        self.read_at = time.monotonic()
        with self._lock:
            lines = list(self._lines) + ([self._partial] if self._partial else [])
        return lines[-tail:]

    def _add(self, chunk: str) -> None:
        with self._lock:
            *done, partial = (self._partial + chunk).split("\n")
            self._lines.extend(done)
            self._partial = partial[-MAX_LINE:]  # a progress bar redrawn with \r never ends its line
        self.heard.set()

    def _follow(self) -> None:
        try:
            asyncio.run(self._read())
        except Exception as exc:  # the head gone, the websocket refused: the backend falls back on get_job_logs
            self.failed, self.failed_at = f"{type(exc).__name__}: {exc}", time.monotonic()
            log.warning("could not follow the log of job %s: %s", self.job_id, self.failed)
        finally:
            self.ended.set()
            self.heard.set()

    async def _read(self) -> None:
        reading = asyncio.ensure_future(self._collect())
        while not reading.done():
            await asyncio.wait([reading], timeout=WATCH_S)
            if not reading.done() and time.monotonic() - self.read_at > self.idle_s:
                self.idle = True
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
                return
        reading.result()  # its exception, if it failed

    async def _collect(self) -> None:
        async for chunk in self.client.tail_job_logs(self.job_id):
            self._add(chunk)

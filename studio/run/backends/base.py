"""What every backend does with a run: place it (submit), say how it is (status), show what its process printed
(logs), stop it (cancel). The job manager holds one backend; a run's status.json says which backend carries it
("backend"), so any process can reach a run another one started."""
from __future__ import annotations

import subprocess

from studio.recipe import Recipe
from studio.runfolder import RunFolder


def last_lines(text: str, tail: int | None) -> str:
    """What a process printed: all of it (tail None), or its last `tail` lines (Backend.logs)."""
    return text if tail is None else "".join(text.splitlines(keepends=True)[-tail:])


class Backend:
    name = ""

    def fields(self) -> dict:
        """What status.json records of this backend when a run is queued on it."""
        return {"backend": self.name}

    def describe(self) -> dict | None:
        """Where runs train, for the page (a cluster's size and what is free now); None: this machine."""
        return None

    def check(self, recipe: Recipe) -> None:
        """Refuses (a UserError) a recipe this backend can never run, before it is queued."""

    def submit(self, run: RunFolder, resume: bool) -> subprocess.Popen:
        """Starts the process that carries the run on this machine (its worker, or the placer that submits it to a
        cluster and follows it there); the run's ticket in the queue is already taken."""
        raise NotImplementedError

    def status(self, run: RunFolder) -> dict:
        """status.json, with what the backend itself says of the run's process where it has more to say."""
        return run.status()

    def logs(self, run: RunFolder, tail: int | None = None) -> str:
        """What the run's process printed: all of it, or its last `tail` lines."""
        raise NotImplementedError

    def cancel(self, run: RunFolder) -> None:
        run.request_cancel()

    def worker_ended(self) -> None:
        """Called when a run's process on this machine has ended (the local backend starts its next spare)."""

    def close(self) -> None:
        """Lets go of what the backend holds for runs not started yet."""

"""Deleting a run: its folder, for good, once it has ended, by whoever may see it (its owner, an admin; another
user's run is "not found", as everywhere). The page, the JSON API and `studio delete` all delete through here, and
each writes its own "run deleted" line of the audit trail (it knows who asked, and from where).

Nothing but <workspace>/<output_dir>/<run-id> is ever removed, with what the workspace keeps of that run elsewhere
(its explanations' pictures, a model server's files): a run folder reached through a symbolic link, or one among
the workspace's own folders (uploads, cache, …), is refused, and links inside the folder are removed, not followed.
The features cache and converted models stay: they are shared between runs."""
from __future__ import annotations

import shutil
from pathlib import Path

from studio.errors import UserError
from studio.run import ownership
from studio.run.ownership import Viewer
from studio.runfolder import ACTIVE, RunFolder
from studio.workspace import Workspace


class DeleteError(UserError):
    """A run that cannot be deleted now; the message says why."""


def delete_run(workspace: Workspace, who: Viewer, run_id: str, jobs=None) -> Path:
    """Deletes the run `who` may see with this id, and returns where it was. RunNotFound for a run that does not
    exist or is not theirs; DeleteError, in words, for a run still queued or running (stop it first) or a folder
    that is not plainly the workspace's. jobs: the JobManager holding a handle on it, which forgets it."""
    run_dir = ownership.find_run(workspace, who, run_id)
    run = RunFolder(run_dir)
    state = run.status().get("status")
    if state in ACTIVE or run.worker_alive():  # a worker may still be writing its end (the ranks of a run)
        raise DeleteError(f"Run {run.id} is {state if state in ACTIVE else 'ending'}. Stop it first, then delete "
                          "it.")
    root = workspace.root.resolve()
    expected = root / run_dir.parent.name / run_dir.name
    if run_dir.resolve() != expected or run_dir.parent.name in workspace.own_folders:
        raise DeleteError(f"Run {run.id} is not a plain folder of the workspace (a link leads elsewhere, or it "
                          "sits among the workspace's own folders): nothing was deleted. Remove it by hand if it "
                          "should go.")
    try:
        run.remove()
    except OSError as exc:
        raise DeleteError(f"Run {run.id} could not be removed completely ({exc.strerror or type(exc).__name__}: "
                          f"{exc.filename}): what is left is still listed. Delete it again, or remove {expected} "
                          "by hand.") from None
    for leftover in (workspace.explanations_dir(run.id), workspace.serving_dir(run.id)):
        shutil.rmtree(leftover, ignore_errors=True)  # its explanations' pictures, a model server's key and log
    if jobs is not None:
        jobs.forget(run.id)
    return expected

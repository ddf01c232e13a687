"""`studio delete RUN [--yes]`: a run's folder, for good (its model, checkpoints, exports, curves), once it has
ended. Asks first on a terminal; a script says --yes. Written to the audit trail, as the page's and the API's
deletions are."""
from __future__ import annotations

import sys


def cmd_delete(args, fail) -> int:
    from studio import audit
    from studio.cli_users import by_command_line
    from studio.run.deletion import DeleteError, delete_run
    from studio.run.ownership import Viewer, find_run
    from studio.workspace import RunNotFound, Workspace
    workspace = Workspace(args.workspace)
    machine = Viewer(None, admin=True)  # whoever can run this command can read the workspace's folders anyway
    try:
        folder = find_run(workspace, machine, args.run)
        if not args.yes:
            if not sys.stdin.isatty():
                return fail(f"deleting run {folder.name} cannot be undone: add --yes to delete it without being "
                            "asked")
            answer = input(f"Delete run {folder.name} and everything in {folder} (its model, checkpoints and "
                           "exports)? This cannot be undone. [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing was deleted.", file=sys.stderr)
                return 1
        delete_run(workspace, machine, args.run)
    except (RunNotFound, DeleteError) as exc:
        return fail(f"{exc} `studio runs` lists the runs." if isinstance(exc, RunNotFound) else str(exc))
    audit.record(workspace.root, "run deleted", None, None, run=folder.name, **by_command_line())
    print(f"Deleted run {folder.name}.", file=sys.stderr)
    return 0


def add_parsers(sub, common, fail) -> None:
    delete = sub.add_parser("delete", parents=[common], help="delete an ended run's folder for good (asks first)")
    delete.add_argument("run", help="run id (see `studio runs`)")
    delete.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    delete.set_defaults(func=lambda args: cmd_delete(args, fail))

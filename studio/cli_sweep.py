"""`studio sweep`: try several settings of one recipe (a recipe file with a `sweep:` block), each a normal run,
and say which did best. It says how many runs and about how long before the first starts; Ctrl-C stops the sweep
(its running run too); `studio sweep --resume ID` continues it, `studio stop ID` stops it from any shell."""
from __future__ import annotations

import signal
import sys


def cmd_sweep(args, fail) -> int:
    from studio.errors import UserError
    from studio.run import ownership
    from studio.run import sweep as sweeps
    from studio.run.jobs import JobManager
    from studio.run.sweep_driver import Driver
    from studio.workspace import Workspace

    if bool(args.recipe) == bool(args.resume):
        return fail("give a recipe file with a sweep block to start a sweep, or --resume SWEEP to continue one")
    if args.owner and args.resume:
        return fail("--owner is for a new sweep: a resumed sweep's runs keep the owner it was started with")
    workspace = Workspace(args.workspace)
    try:
        if args.recipe:
            owner = ownership.check_owner(workspace, args.owner)
            try:
                text = open(args.recipe, encoding="utf-8").read()
            except (OSError, UnicodeDecodeError) as exc:
                return fail(f"could not read the recipe file {args.recipe}: {exc}")
            plan = sweeps.parse(text)
            print(f"Sweep: {sweeps.plan_words(workspace, plan)}.", file=sys.stderr)
            sweep = sweeps.create(workspace, plan, owner=owner)
        else:
            sweep = sweeps.find(workspace, args.resume)
            state = sweep.state()["status"]
            if state in ("running", "completed"):
                return fail(f"sweep {sweep.id} is {state}: there is nothing to resume")
    except (UserError, sweeps.SweepNotFound) as exc:  # a sweep that cannot run, an owner with no account
        return fail(str(exc))
    print(f"Sweep {sweep.id} in {sweep.path}", file=sys.stderr, flush=True)
    # Ctrl-C (or a stop signal) asks the driver to stop, which stops the run it follows and says so in sweep.json.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sweep.file(sweeps.STOP_FILE).write_text(""))
    data = Driver(workspace, sweep, JobManager(workspace),
                  say=lambda line: print(line, file=sys.stderr, flush=True)).run()
    print(leaderboard(data), file=sys.stderr)
    if data["status"] != "completed":
        return fail(f"sweep {data['status']}: {data.get('message') or ''} (resume it with `studio sweep --resume "
                    f"{sweep.id}`)")
    if data["best"] is None:
        return fail("no run of the sweep completed with a score")
    print(data["best"]["run_id"])
    return 0


def leaderboard(data: dict) -> str:
    """The sweep's runs, best first, one line each."""
    from studio.run.sweep import words
    metric = data["metric"]
    sign = -1 if metric["higher_is_better"] else 1
    ranked = sorted(data["runs"], key=lambda r: (r["score"] is None, sign * (r["score"] or 0)))
    best = (data.get("best") or {}).get("run_id")
    lines = [f"{metric['words']:>20}  status     settings"]
    for run in ranked:
        score = "" if run["score"] is None else f"{run['score']:.4g}"
        mark = "  ← best" if run["run_id"] and run["run_id"] == best else ""
        lines.append(f"{score:>20}  {run['status']:<10} {words(run['settings'])}  {run['run_id'] or ''}{mark}")
    return "\n".join(lines)


def stop_sweep(args, fail) -> int:
    from studio.run import sweep as sweeps
    from studio.workspace import Workspace
    try:
        sweep = sweeps.stop(Workspace(args.workspace), args.run)
    except sweeps.SweepNotFound as exc:
        return fail(str(exc))
    print(f"Stopping sweep {sweep.id}", file=sys.stderr)
    return 0



def add_parsers(sub, common, fail) -> None:
    """This module's sub-commands; `fail(message)` is how every command says why it could not do its job."""
    sweep = sub.add_parser("sweep", parents=[common], help="try several settings of a recipe (its sweep: block), "
                           "each a run, and say which did best")
    sweep.add_argument("recipe", nargs="?", help="recipe YAML file with a sweep: block (grid or search)")
    sweep.add_argument("--resume", metavar="SWEEP", help="continue an interrupted or stopped sweep")
    sweep.add_argument("--owner", metavar="NAME", help="the account the sweep and its runs belong to (`studio users "
                       "list`); without it, only admins see them")
    sweep.set_defaults(func=lambda args: cmd_sweep(args, fail))

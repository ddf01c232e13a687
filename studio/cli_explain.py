"""`studio explain RUN INPUT…`: why a finished classifier gave its answers — one JSON object per input with the
label, its calibrated score (as `studio predict` gives it) and where the evidence lies: a heatmap PNG for an
image, a weight per word for a text, a weight per window for a clip."""
from __future__ import annotations

import json
import os
import time


def cmd_explain(args, fail) -> int:
    from studio.errors import UserError, first_line
    from studio.run.inference import ModelNotReady, explainer
    from studio.workspace import RunNotFound, Workspace

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    workspace = Workspace(args.workspace)
    try:
        run = workspace.find_run(args.run)
        explain = explainer(run)
    except (RunNotFound, ModelNotReady, UserError) as exc:
        return fail(str(exc))
    if explain is None:
        return fail(f"run {args.run} is not a classifier: its answers cannot be explained")
    for item in args.inputs:
        reason = explain.check_input(item)
        if reason:
            return fail(reason)
    out_dir = args.out or workspace.explanations_dir(run.name)
    for item in args.inputs:
        started = time.perf_counter()
        try:
            result = explain.explain([item], out_dir)[0]
        except (OSError, ValueError) as exc:  # unreadable, or over a limit
            return fail(f"could not explain {item}: {first_line(exc)}")
        result = {"input": item, **result, "seconds": round(time.perf_counter() - started, 2)}
        print(json.dumps(result) if args.json else words(result))
    return 0


def words(result: dict) -> str:
    """A result for a person: the answer, then the evidence."""
    head = f"{result['input']}: {result['label']} ({result['score']:.0%} sure)"
    if "heatmap" in result:
        return f"{head}\n  heatmap (brighter = more important): {result['heatmap']}"
    if "tokens" in result:
        ranked = sorted(result["tokens"], key=lambda t: -t[1])[:5]
        return f"{head}\n  words that weighed most: " + ", ".join(f"{w} ({v:+.2f})" for w, v in ranked)
    ranked = sorted(result["segments"], key=lambda s: -s["weight"])[:3]
    return f"{head}\n  moments that weighed most: " + ", ".join(
        f"{s['start']:g}-{s['end']:g} s ({s['weight']:+.2f})" for s in ranked)


def add_parsers(sub, common, fail) -> None:
    explain = sub.add_parser("explain", parents=[common], help="why a finished classifier gave its answers: a "
                             "heatmap per image, a weight per word or per moment of a clip")
    explain.add_argument("run", help="run id (see `studio runs`) or run folder")
    explain.add_argument("inputs", nargs="+", help="image or audio files, or texts")
    explain.add_argument("--json", action="store_true", help="print one JSON object per input")
    explain.add_argument("--out", metavar="DIR", help="where heatmaps go (default: the workspace's "
                         "explanations/<run>/)")
    explain.set_defaults(func=lambda args: cmd_explain(args, fail))

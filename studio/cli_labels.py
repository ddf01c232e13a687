"""`studio label-issues RUN`: the examples of a finished classification run whose given label the out-of-fold
probabilities doubt (eval.json's label_issues, found by cleanlab), most suspect first; --json for programs."""
from __future__ import annotations

import json


def cmd_label_issues(args, fail) -> int:
    from studio.runfolder import EVAL, RunFolder
    from studio.workspace import RunNotFound, Workspace
    try:
        run = RunFolder(Workspace(args.workspace).find_run(args.run))
    except RunNotFound as exc:
        return fail(str(exc))
    evaluation = run.read(EVAL)
    if evaluation is None:
        return fail(f"run {run.id} has no evaluation yet: it has not finished (see `studio runs`)")
    if "label_issues_from" not in evaluation:
        return fail(f"run {run.id} has no list of label issues: only classification runs trained since label "
                    "issues were added have one")
    source = evaluation["label_issues_from"]
    issues = evaluation["label_issues"][:args.top] if args.top else evaluation["label_issues"]
    if args.json:
        print(json.dumps({"label_issues": [{k: i[k] for k in ("example", "given", "suggested", "score")}
                                           for i in issues], "label_issues_from": source}, indent=1))
        return 0
    if source.get("probabilities") is None:
        print(f"No label issues for this run: {source['why']}")
        return 0
    print(f"{len(evaluation['label_issues'])} example(s) may be mislabelled, judged by {source['model']} "
          f"({source['probabilities']}, {source['folds']} folds, C = {source['C']:g}) with {source['method']}.")
    if source.get("note"):
        print(source["note"])
    width = max([len(str(i["example"])) for i in issues] + [7])
    print(f"{'example':<{width}}  {'given':<16} {'suggested':<16} quality")
    for issue in issues:
        print(f"{str(issue['example']):<{width}}  {issue['given']:<16} {issue['suggested']:<16} {issue['score']:.3f}")
    return 0


def add_parsers(sub, common, fail) -> None:
    """This module's sub-command; `fail(message)` is how it says why it could not do its job."""
    labels = sub.add_parser("label-issues", parents=[common], help="examples of a finished classification run "
                            "that may be mislabelled, most suspect first")
    labels.add_argument("run", help="run id (see `studio runs`) or run folder")
    labels.add_argument("--json", action="store_true", help="one JSON object: the issues and where the "
                        "probabilities came from")
    labels.add_argument("--top", type=int, default=0, metavar="N", help="only the N most suspect examples")
    labels.set_defaults(func=lambda args: cmd_label_issues(args, fail))

"""`studio` on the command line: train a recipe headless, list runs, predict with a finished run."""
from __future__ import annotations

import argparse
import json
import os
import queue
import sys
from pathlib import Path

PROGRESS_PHASES = {"features": "features", "step": "training"}


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_train(args) -> int:
    from tqdm import tqdm

    from studio import recipe as recipes
    from studio.engine.jobs import FINISHED, JobManager
    from studio.workspace import Workspace

    try:
        recipe = recipes.load(args.recipe)
    except recipes.RecipeError as exc:
        return _fail(str(exc))
    manager = JobManager(Workspace(args.workspace))
    try:
        job = manager.start(recipe)
    except recipes.RecipeError as exc:
        return _fail(str(exc))
    print(f"Run {job.run_id} started in {job.run_dir}", file=sys.stderr)
    bars: dict[str, tqdm] = {}
    try:
        while True:
            try:
                event = job.log.queue.get(timeout=0.5)
            except queue.Empty:
                if job.done.is_set() and job.log.queue.empty():
                    break
                continue
            _show(event, bars, tqdm)
            if event["type"] == "status" and event["status"] in FINISHED:
                break
    except KeyboardInterrupt:
        print("\nStopping the run…", file=sys.stderr)
        job.cancel()
    job.wait()
    for bar in bars.values():
        bar.close()
    status = job.status
    if status["status"] != "completed":
        return _fail(f"run {status['status']}: {status.get('error') or status.get('message', '')} "
                     f"(run folder: {job.run_dir})")
    print(f"accuracy {status['accuracy']:.3f}  macro-F1 {status['macro_f1']:.3f}  "
          f"in {status['wall_time_s']:.1f} s", file=sys.stderr)
    print(job.run_dir)
    return 0


def _show(event: dict, bars: dict, tqdm) -> None:
    kind = event["type"]
    if kind in ("log", "data") and event.get("message"):
        tqdm.write(event["message"], file=sys.stderr)
    elif kind == "data":
        tqdm.write(f"Data: {len(event['classes'])} classes, {event['train']} training and {event['validation']} "
                   f"validation examples, {event['skipped']} skipped", file=sys.stderr)
        for warning in event["warnings"]:
            tqdm.write(f"warning: {warning}", file=sys.stderr)
    elif kind in ("progress", "step"):
        name = PROGRESS_PHASES[event.get("phase", "step")]
        total = event.get("total") or event.get("total_steps")
        if name not in bars:
            for bar in bars.values():
                bar.close()
            bars[name] = tqdm(total=total, desc=name, unit="ex" if name == "features" else "step", file=sys.stderr)
        bar = bars[name]
        bar.update((event.get("done") or event.get("step")) - bar.n)
        postfix = {"/s": f"{event['samples_per_s']:.1f}"}
        if "train_loss" in event:
            postfix["loss"] = f"{event['train_loss']:.4f}"
        bar.set_postfix(postfix)
    elif kind == "epoch":
        tqdm.write(f"epoch {event['epoch']}/{event['total_epochs']}: train loss {event['train_loss']:.4f}, "
                   f"validation loss {event['val_loss']:.4f}, accuracy {event['accuracy']:.3f}, "
                   f"macro-F1 {event['macro_f1']:.3f}", file=sys.stderr)


def cmd_runs(args) -> int:
    from studio.workspace import Workspace
    runs = Workspace(args.workspace).runs()
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    if not runs:
        print(f"No runs yet in {Workspace(args.workspace).root}.")
        return 0
    print(f"{'id':<52} {'task':<20} {'model':<20} {'strategy':<18} {'status':<10} {'accuracy':>8} {'time':>8}")
    for run in runs:
        accuracy = f"{run['accuracy']:.3f}" if run["accuracy"] is not None else "-"
        wall = f"{run['wall_time_s']:.0f}s" if run["wall_time_s"] is not None else "-"
        print(f"{run['id']:<52} {run['task'] or '-':<20} {str(run['model'])[:20]:<20} {run['strategy'] or '-':<18} "
              f"{run['status']:<10} {accuracy:>8} {wall:>8}")
    return 0


def cmd_predict(args) -> int:
    from studio.engine.inference import ModelNotReady, Predictor
    from studio.workspace import RunNotFound, Workspace
    try:
        predictor = Predictor(Workspace(args.workspace).find_run(args.run))
    except (RunNotFound, ModelNotReady) as exc:
        return _fail(str(exc))
    inputs = args.inputs
    if predictor.info.preprocessing.kind == "image":
        missing = [x for x in inputs if not Path(x).is_file()]
        if missing:
            return _fail(f"image file not found: {missing[0]}")
    try:
        answers = predictor.predict(inputs, top_k=args.top_k)
    except OSError as exc:
        return _fail(f"could not read an input: {exc}")
    for item, answer in zip(inputs, answers):
        print(json.dumps({"input": item, **answer}))
    return 0


def cmd_serve(args) -> int:
    from studio.ui.app import launch
    print(f"Studio: http://{args.host}:{args.port}  (workspace: {Path(args.workspace).resolve()})", file=sys.stderr)
    launch(host=args.host, port=args.port, workspace=args.workspace)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from studio.workspace import default_root
    parser = argparse.ArgumentParser(prog="studio", description="Fine-tune pretrained models on your own data.")
    workspace_help = "folder holding runs and caches (default: $STUDIO_WORKSPACE or ./workspace)"
    parser.add_argument("--workspace", default=str(default_root()), help=workspace_help)
    # --workspace is also accepted after the sub-command (SUPPRESS: absent there, the top-level value stands).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", default=argparse.SUPPRESS, help=workspace_help)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", parents=[common], help="train from a recipe YAML file, with a progress bar")
    train.add_argument("recipe")
    train.set_defaults(func=cmd_train)
    runs = sub.add_parser("runs", parents=[common], help="list every run in the workspace")
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    runs.set_defaults(func=cmd_runs)
    predict = sub.add_parser("predict", parents=[common], help="predict with a finished run: image files or texts")
    predict.add_argument("run", help="run id (see `studio runs`) or run folder")
    predict.add_argument("inputs", nargs="+", help="image files for an image model, texts for a text model")
    predict.add_argument("--top-k", type=int, default=3)
    predict.set_defaults(func=cmd_predict)
    serve = sub.add_parser("serve", parents=[common], help="open the studio in the browser")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    serve.add_argument("--port", type=int, default=7860)
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("train", "predict", "serve"):
        _quiet_libraries()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

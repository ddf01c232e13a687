"""`studio` on the command line: train a recipe headless, list runs, stop one, predict or chat with a finished run,
export it, serve the browser UI. What a command shows of a run (its headline figure, whether it chats) comes from
the run's task.

Each command imports what it uses inside its own function, on purpose: `main` first points the libraries' caches
into the workspace (confine_caches), which only takes effect before huggingface_hub, torch.hub and gradio are
imported, and `studio --help` answers without loading torch."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from studio import cli_delete, cli_explain, cli_labels, cli_serve, cli_sweep, cli_tensorboard, cli_users

CLUSTER_COMMANDS = ("train", "serve", "sweep")  # the commands that start runs
PROGRESS_PHASES = {"features": "features", "step": "training", "head": "regularisation search",
                   "lr_finder": "learning-rate test"}


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _fail(message: str) -> int:
    """The reason on one line of stderr (never a traceback); exit code 2."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def cmd_train(args) -> int:
    import time

    from tqdm import tqdm

    from studio import tasks
    from studio.errors import UserError
    from studio.run import ownership
    from studio.run.jobs import JobManager
    from studio.run.summary import headline
    from studio.workspace import RunNotFound, Workspace

    if bool(args.recipe) == bool(args.resume):
        return _fail("give a recipe file to start a run, or --resume RUN to continue one (not both)")
    try:
        recipe = tasks.load(args.recipe) if args.recipe else None
        manager = JobManager(Workspace(args.workspace))
        owner = ownership.check_owner(manager.workspace, args.owner)
        job = manager.start(recipe, owner=owner) if recipe else manager.resume(args.resume)
    except (UserError, RunNotFound) as exc:  # a recipe, or a cluster, that cannot run it
        return _fail(str(exc))
    print(f"Run {job.run_id} {'resumed' if args.resume else 'started'} in {job.run_dir}", file=sys.stderr)
    bars: dict[str, tqdm] = {}
    seen = 0
    try:
        while True:  # the worker writes the run folder; this only reads it
            events = job.events(seen)
            seen += len(events)
            for event in events:
                _show(event, bars, tqdm)
            if job.done and not job.events(seen):
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nStopping the run…", file=sys.stderr)
        job.cancel()
        job.wait()
    for bar in bars.values():
        bar.close()
    status = job.status
    if status.get("status") != "completed":
        return _fail(f"run {status.get('status')}: {status.get('error') or status.get('message', '')} "
                     f"(run folder: {job.run_dir})")
    metric = headline(status)
    figure = f"{metric['words']} {metric['shown']}  " if metric and metric["value"] is not None else ""
    print(f"{figure}finished in {status['wall_time_s']:.1f} s", file=sys.stderr)
    print(job.run_dir)
    return 0


def cmd_stop(args) -> int:
    if Path(args.run).name.startswith("sweep-"):
        return cli_sweep.stop_sweep(args, _fail)
    from studio.run.jobs import JobManager
    from studio.runfolder import ACTIVE
    from studio.workspace import RunNotFound, Workspace
    try:
        job = JobManager(Workspace(args.workspace)).get(args.run)
    except RunNotFound as exc:
        return _fail(str(exc))
    state = job.status.get("status")
    if state not in ACTIVE:
        return _fail(f"run {job.run_id} is {state}: there is nothing to stop")
    job.cancel()
    print(f"Stopping run {job.run_id}", file=sys.stderr)
    return 0


def cmd_worker(args) -> int:
    from studio.run import worker
    return worker.main([str(args.run_dir)] + (["--resume"] if args.resume else []))


def _show(event: dict, bars: dict, tqdm) -> None:
    kind = event["type"]
    if kind in ("log", "data") and event.get("message"):
        tqdm.write(event["message"], file=sys.stderr)
    elif kind == "data":
        classes = f"{len(event['classes'])} classes, " if event["classes"] else ""
        tqdm.write(f"Data: {classes}{event['train']} training and {event['validation']} validation examples, "
                   f"{event['skipped']} skipped", file=sys.stderr)
        for warning in event["warnings"]:
            tqdm.write(f"warning: {warning}", file=sys.stderr)
    elif kind in ("progress", "step"):
        name = PROGRESS_PHASES[event.get("phase", "step")]
        total = event.get("total") or event.get("total_steps")
        if name not in bars:
            for bar in bars.values():
                bar.close()
            unit = {"features": "ex", "regularisation search": "C"}.get(name, "step")
            bars[name] = tqdm(total=total, desc=name, unit=unit, file=sys.stderr)
        bar = bars[name]
        bar.update((event.get("done") or event.get("step")) - bar.n)
        postfix = {"/s": f"{event['samples_per_s']:.1f}"} if "samples_per_s" in event else {}
        if "train_loss" in event:
            postfix["loss"] = f"{event['train_loss']:.4f}"
        bar.set_postfix(postfix)
    elif kind == "epoch":
        known = {"epoch", "total_epochs", "train_loss", "val_loss", "step", "elapsed", "best_epoch", "type", "time"}
        extra = "".join(f", {k.replace('_', '-')} {v:.3f}" for k, v in event.items()
                        if k not in known and isinstance(v, (int, float)) and not isinstance(v, bool))
        if event.get("linear_probe"):
            extra += " (the linear probe: the solved head on the pretrained model, before fine-tuning)"
        tqdm.write(f"epoch {event['epoch']}/{event['total_epochs']}: train loss {event['train_loss']:.4f}, "
                   f"validation loss {event['val_loss']:.4f}{extra}", file=sys.stderr)
    elif kind == "status" and event.get("status") == "queued" and event.get("message"):
        tqdm.write(event["message"], file=sys.stderr)


def cmd_runs(args) -> int:
    from studio.run.summary import runs as summaries
    from studio.runfolder import mark_interrupted
    from studio.workspace import Workspace
    workspace = Workspace(args.workspace)
    mark_interrupted(workspace.run_dirs())
    runs = summaries(workspace)
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    if not runs:
        print(f"No runs yet in {workspace.root}.")
        return 0
    from studio.users import Users
    owners = any(run["owner"] for run in runs) or Users(workspace.root).exist()  # whose each run is, in a team's
    print(f"{'id':<52} {'task':<20} {'model':<20} {'strategy':<18} {'status':<10} {'result':>24} {'time':>8}"
          + (" owner" if owners else ""))
    for run in runs:
        metric = run["metric"]
        result = f"{metric['words']} {metric['shown']}" if metric and metric["value"] is not None else "-"
        wall = f"{run['wall_time_s']:.0f}s" if run["wall_time_s"] is not None else "-"
        print(f"{run['id']:<52} {run['task'] or '-':<20} {str(run['model'])[:20]:<20} {run['strategy'] or '-':<18} "
              f"{run['status']:<10} {result[-24:]:>24} {wall:>8}" + (f" {run['owner'] or '-'}" if owners else ""))
    return 0


def cmd_export(args) -> int:
    from studio.engine.export import ExportError
    from studio.run.export import export
    from studio.workspace import RunNotFound, Workspace
    if args.gguf_type and args.format != "gguf":
        return _fail(f"--gguf-type goes with --format gguf (it says how the GGUF file stores its weights); "
                     f"the format asked for is {args.format}.")
    options = {"gguf_type": args.gguf_type} if args.gguf_type else {}
    try:
        path = export(Workspace(args.workspace).find_run(args.run), args.format, **options)
    except (RunNotFound, ExportError) as exc:
        return _fail(str(exc))
    print(path)
    return 0


def cmd_predict(args) -> int:
    from studio.run.inference import ModelNotReady, Predictor
    from studio.errors import first_line
    from studio.workspace import RunNotFound, Workspace
    try:
        predictor = Predictor(Workspace(args.workspace).find_run(args.run))
    except (RunNotFound, ModelNotReady) as exc:
        return _fail(str(exc))
    if args.max_new_tokens is not None and (not predictor.chats or args.max_new_tokens < 1):
        return _fail("--max-new-tokens is for chat runs, and at least 1")
    for item in args.inputs:  # the same checks, and words, as the data report's skipped items
        reason = predictor.task.check_input(item)
        if reason:
            return _fail(reason)
    try:
        answers = predictor.predict(args.inputs, top_k=args.top_k, max_new_tokens=args.max_new_tokens)
    except (OSError, ValueError) as exc:  # unreadable, or over a limit
        return _fail(f"could not read an input: {first_line(exc)}")
    for item, answer in zip(args.inputs, answers):
        print(json.dumps({"input": item, **answer}))
    return 0


def cmd_chat(args) -> int:
    """An interactive chat with a tuned chat model, its answers streamed as they are written."""
    from studio import tasks
    from studio.run.inference import ModelNotReady, model_folder
    from studio.errors import UserError
    from studio.families.base import ModelInfo
    from studio.workspace import RunNotFound, Workspace
    try:
        folder = model_folder(Workspace(args.workspace).find_run(args.run))
        chat = tasks.get(ModelInfo.read(folder).task).chat(folder)
        if chat is None:
            return _fail(f"run {args.run} is not a chat model; use `studio predict`")
    except (RunNotFound, ModelNotReady, UserError) as exc:
        return _fail(str(exc))
    print(f"Chatting with {ModelInfo.read(folder).model} tuned in {args.run}; an empty line or Ctrl-D ends.",
          file=sys.stderr)
    history: list[dict] = []
    while True:
        try:
            message = input("> ").strip()
        except EOFError:
            break
        if not message:
            break
        answer = ""
        for answer_so_far in chat.stream(chat.messages(message, history), max_new_tokens=args.max_new_tokens):
            print(answer_so_far[len(answer):], end="", flush=True)
            answer = answer_so_far
        print()
        history += [{"role": "user", "content": message}, {"role": "assistant", "content": answer}]
    return 0


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _logins(args) -> list[tuple[str, str]] | None:
    """--auth USER:PASSWORD (repeatable), else $STUDIO_AUTH (pairs separated by commas); None: no login."""
    pairs = list(args.auth or [])
    if not pairs and os.environ.get("STUDIO_AUTH", "").strip():
        pairs = [p for p in os.environ["STUDIO_AUTH"].split(",") if p.strip()]
    logins = []
    for pair in pairs:
        user, sep, password = pair.strip().partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth (or STUDIO_AUTH) must look like USER:PASSWORD")
        logins.append((user, password))
    return logins or None


def cmd_serve(args) -> int:
    from studio.ui.app import launch
    from studio.users import AccountError, Users
    try:
        logins = _logins(args)
        accounts = Users(args.workspace).exist()
        cli_users.check_proxy(args.trusted_proxy)
    except (ValueError, AccountError) as exc:
        return _fail(str(exc))
    if args.max_upload_mb is not None and args.max_upload_mb <= 0:
        return _fail("--max-upload-mb must be a positive number of megabytes")
    if args.auth:
        print("note: a password on the command line is visible to other users of this machine; "
              "STUDIO_AUTH=USER:PASSWORD keeps it out of sight.", file=sys.stderr)
    if args.host not in LOCAL_HOSTS:
        login = "a login is required" if logins or accounts else \
            "there is no login: add accounts with `studio users add NAME`"
        print(f"warning: the studio listens on {args.host}, so anyone who can reach this machine on port "
              f"{args.port} can use it and its GPU ({login}).", file=sys.stderr)
    print(f"Studio: http://{args.host}:{args.port}  (workspace: {Path(args.workspace).resolve()})", file=sys.stderr)
    launch(host=args.host, port=args.port, workspace=args.workspace, auth=logins, max_upload_mb=args.max_upload_mb,
           trusted_proxy=args.trusted_proxy, data_roots=args.data_root)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from studio.workspace import default_root
    parser = argparse.ArgumentParser(prog="studio", description="Fine-tune pretrained models on your own data.")
    workspace_help = "folder holding runs and caches (default: $STUDIO_WORKSPACE or ./workspace)"
    parser.add_argument("--workspace", default=str(default_root()), help=workspace_help)
    parser.add_argument("--cluster", metavar="ADDRESS", default=os.environ.get("STUDIO_CLUSTER") or None,
                        help="train runs on a Ray cluster: its dashboard address, e.g. http://HOST:8265 (default: "
                             "$STUDIO_CLUSTER; without it, runs train on this machine)")
    # --workspace and --cluster are also accepted after the sub-command (SUPPRESS: absent there, the top-level
    # value stands).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", default=argparse.SUPPRESS, help=workspace_help)
    common.add_argument("--cluster", metavar="ADDRESS", default=argparse.SUPPRESS,
                        help="train runs on this Ray cluster (as `studio --cluster ADDRESS`)")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", parents=[common], help="train from a recipe YAML file, with a progress bar")
    train.add_argument("recipe", nargs="?", help="recipe YAML file")
    train.add_argument("--resume", metavar="RUN", help="continue a cancelled or interrupted run from its last "
                       "finished epoch, instead of starting from a recipe")
    train.add_argument("--owner", metavar="NAME", help="the account the run belongs to (`studio users list`); "
                       "without it, only admins see the run")
    train.set_defaults(func=cmd_train)
    runs = sub.add_parser("runs", parents=[common], help="list every run in the workspace")
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    runs.set_defaults(func=cmd_runs)
    predict = sub.add_parser("predict", parents=[common], help="predict with a finished run: image files or texts")
    predict.add_argument("run", help="run id (see `studio runs`) or run folder")
    predict.add_argument("inputs", nargs="+", help="what the run's task reads: image or audio files, texts, or "
                         "messages for a chat model")
    predict.add_argument("--top-k", type=int, default=3)
    predict.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                         help="chat runs: the longest answer in tokens (default 256); answers are greedy")
    predict.set_defaults(func=cmd_predict)
    chat = sub.add_parser("chat", parents=[common], help="chat with a tuned chat model (answers streamed)")
    chat.add_argument("run", help="run id (see `studio runs`) or run folder")
    chat.add_argument("--max-new-tokens", type=int, default=256)
    chat.set_defaults(func=cmd_chat)
    export = sub.add_parser("export", parents=[common], help="export a finished run's model")
    export.add_argument("run", help="run id (see `studio runs`) or run folder")
    export.add_argument("--format", default="zip",
                        help="zip: the whole model folder (default); classifiers also hf (a transformers folder "
                             "pipeline() loads) and onnx (model.onnx checked against torch); chat models hf (the "
                             "adapter merged), adapter (the peft folder) and gguf (llama.cpp/Ollama, with a "
                             "Modelfile)")
    export.add_argument("--gguf-type", choices=("q8_0", "f16", "f32"), default=None,
                        help="how the GGUF file stores its weights: q8_0 (8-bit, the default), f16 or f32")
    export.set_defaults(func=cmd_export)
    cli_sweep.add_parsers(sub, common, _fail)
    cli_labels.add_parsers(sub, common, _fail)
    cli_explain.add_parsers(sub, common, _fail)
    cli_serve.add_parsers(sub, common, _fail)
    cli_users.add_parsers(sub, common, _fail)
    cli_delete.add_parsers(sub, common, _fail)
    stop = sub.add_parser("stop", parents=[common], help="stop a queued or running run, or a sweep (from any shell)")
    stop.add_argument("run", help="run id (see `studio runs`) or run folder, or a sweep's id")
    stop.set_defaults(func=cmd_stop)
    worker = sub.add_parser("worker", help="train one run folder (what the studio starts for each run)")
    worker.add_argument("run_dir", type=Path, help="the run folder (holding recipe.yaml)")
    worker.add_argument("--resume", action="store_true", help="continue from its last checkpoint")
    worker.set_defaults(func=cmd_worker)
    serve = sub.add_parser("serve", parents=[common], help="open the studio in the browser")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument("--auth", action="append", metavar="USER:PASSWORD",
                       help="require a login (repeatable; or set $STUDIO_AUTH)")
    serve.add_argument("--max-upload-mb", type=float, default=None, metavar="MB",
                       help="largest file a browser may upload (default: $STUDIO_MAX_UPLOAD_MB or 2048)")
    serve.add_argument("--trusted-proxy", default=None, metavar="ADDRESS",
                       help="a reverse proxy in front of the studio (an address, a network like 10.0.0.0/8, or "
                            "several with commas): its X-Forwarded-For says who logs in; no one's without it")
    serve.add_argument("--data-root", action="append", default=[], metavar="DIR",
                       help="a folder every user's recipes may read data from (repeatable; besides their own "
                            "uploads and the bundled examples)")
    serve.set_defaults(func=cmd_serve)
    cli_tensorboard.add_parsers(sub, common, _fail)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "worker":
        return args.func(args)  # the run's own workspace: its caches are set by whoever started it
    if args.cluster and args.command in CLUSTER_COMMANDS:
        from studio.run.backends.ray_jobs import ClusterError, connect
        try:
            connect(args.cluster)  # Ray missing or nothing answering: said now, in words
            from studio.run.backends.cluster_check import check
            check(args.cluster, Path(args.workspace))  # the workspace shared, the same versions on every node
        except ClusterError as exc:
            return _fail(str(exc))
        os.environ["STUDIO_CLUSTER"] = args.cluster  # every job manager of this studio (the UI's too) uses it
    if args.command not in ("runs", "stop"):
        from studio.workspace import confine_caches
        confine_caches(args.workspace)  # before the libraries read where their caches are
    if args.command in ("train", "predict", "serve", "export", "chat", "sweep", "explain", "serve-model"):
        _quiet_libraries()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _fail("interrupted")
    except Exception as exc:  # the studio's own errors are caught where they happen; this is the last net
        if os.environ.get("STUDIO_DEBUG"):
            raise
        from studio.errors import first_line
        text = first_line(exc)
        detail = f": {text}" if text != type(exc).__name__ else ""
        return _fail(f"unexpected problem ({type(exc).__name__}{detail}). Run again with STUDIO_DEBUG=1 to see the "
                     "details.")


if __name__ == "__main__":
    sys.exit(main())

"""`studio tensorboard`: TensorBoard on the workspace's runs (those with train.report_to: [tensorboard] have event
files)."""
from __future__ import annotations

import sys


def cmd_tensorboard(args, fail) -> int:
    import time

    from studio.workspace import Workspace
    try:
        from tensorboard import program
    except ImportError:
        return fail("TensorBoard is not installed: install the studio's tracking extra (pip install -e "
                    "\".[tracking]\")")
    workspace = Workspace(args.workspace)
    folders = sorted({run.parent for run in workspace.run_dirs()}) or [workspace.root / "runs"]
    where = (["--logdir", str(folders[0])] if len(folders) == 1 else
             ["--logdir_spec", ",".join(f"{folder.name}:{folder}" for folder in folders)])
    board = program.TensorBoard()
    board.configure(argv=[None, *where, "--host", args.host, "--port", str(args.port)])
    try:
        url = board.launch()
    except program.TensorBoardServerException as exc:
        return fail(f"TensorBoard could not start: {exc}")
    print(f"TensorBoard on the runs in {', '.join(map(str, folders))}; Ctrl-C stops it.", file=sys.stderr)
    print(url, flush=True)
    try:
        while True:  # TensorBoard serves on threads of its own
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def add_parsers(sub, common, fail) -> None:
    board = sub.add_parser("tensorboard", parents=[common], help="open TensorBoard on the workspace's runs "
                           "(those with train.report_to: [tensorboard])")
    board.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    board.add_argument("--port", type=int, default=6006)
    board.set_defaults(func=lambda args: cmd_tensorboard(args, fail))

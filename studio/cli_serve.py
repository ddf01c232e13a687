"""`studio serve-model RUN [RUN…]`: finished runs served to other programs over HTTP — chat runs through OpenAI's
API, classifiers through /v1/classify (studio/serve). The models load in the background once the server listens;
a key is needed whenever the server listens beyond this machine."""
from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

KEY_VARIABLE = "STUDIO_API_KEY"


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(args) -> str | None:
    """--api-key, else the first line of --api-key-file, else $STUDIO_API_KEY; None: no key. ValueError in words."""
    if args.api_key_file:
        try:
            lines = Path(args.api_key_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"cannot read the key file {args.api_key_file}: {exc.strerror}") from None
        if not lines or not lines[0].strip():
            raise ValueError(f"the key file {args.api_key_file} is empty: write the key on its first line")
        return lines[0].strip()
    key = args.api_key or os.environ.get(KEY_VARIABLE, "")
    return key.strip() or None


def _listening_socket(host: str, port: int):
    import socket
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): pick another --port or "
                         "--host") from None
    sock.listen(128)  # connections wait in the backlog until the server takes them
    return sock


def _stop_with(pid: int) -> None:
    """Ends this server once process `pid` is gone (the studio that started it, however it ended: a SIGTERM or a
    kill skips its exit handlers, and this server runs in a session of its own)."""
    import threading
    import time

    def watch():
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # alive, another user's
                pass
            time.sleep(2)
    threading.Thread(target=watch, name="stop-with", daemon=True).start()


def cmd_serve_model(args, fail) -> int:
    import uvicorn

    from studio.run.inference import ModelNotReady
    from studio.serve.app import create_app
    from studio.serve.models import ServedModel, load_all
    from studio.workspace import RunNotFound, Workspace
    try:
        key = api_key(args)
    except ValueError as exc:
        return fail(str(exc))
    if key is None and not is_loopback(args.host):
        return fail(f"--host {args.host} lets other machines reach the server: give it a key with --api-key-file "
                    f"FILE or ${KEY_VARIABLE} (or listen on 127.0.0.1)")
    if args.max_queue < 1 or args.max_body_mb <= 0:
        return fail("--max-queue and --max-body-mb must be positive")
    if args.api_key:
        print(f"note: a key on the command line is visible to other users of this machine; --api-key-file or "
              f"${KEY_VARIABLE} keeps it out of sight.", file=sys.stderr)
    workspace = Workspace(args.workspace)
    models = {}
    try:
        for ref in args.runs:
            model = ServedModel(workspace.find_run(ref), args.max_queue)
            models[model.id] = model
        sock = _listening_socket(args.host, args.port)
    except (RunNotFound, ModelNotReady, ValueError) as exc:
        return fail(str(exc))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(models, key, int(args.max_body_mb * 2**20)),
                                           log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=5))  # Ctrl-C ends streams left open
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Serving {len(models)} model(s) at http://{host}:{port}/v1", flush=True)
    if args.stop_with:
        _stop_with(args.stop_with)
    load_all(list(models.values()))
    server.run(sockets=[sock])
    return 0


def add_parsers(sub, common, fail) -> None:
    """This module's sub-command; `fail(message)` is how it says why it could not do its job."""
    serve = sub.add_parser("serve-model", parents=[common], help="serve finished runs to other programs: chat "
                           "runs through OpenAI's API, classifiers through /v1/classify")
    serve.add_argument("runs", nargs="+", metavar="RUN", help="run ids (see `studio runs`) or run folders")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only; any "
                       "other needs a key)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key", default=None, metavar="KEY", help="the key clients must send (visible in `ps`: "
                       f"prefer --api-key-file or ${KEY_VARIABLE})")
    serve.add_argument("--api-key-file", default=None, metavar="FILE", help="a file whose first line is the key")
    serve.add_argument("--max-queue", type=int, default=16, metavar="N",
                       help="requests that may wait per model before the server answers 429 (default 16)")
    serve.add_argument("--max-body-mb", type=float, default=20.0, metavar="MB",
                       help="largest request body (default 20 MB)")
    serve.add_argument("--stop-with", type=int, default=None, metavar="PID",
                       help="stop when process PID ends (the studio's Playground starts servers so)")
    serve.set_defaults(func=lambda args: cmd_serve_model(args, fail))

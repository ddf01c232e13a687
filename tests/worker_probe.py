"""A plugin for tests: when the process that imported it exits, it writes which heavy UI modules it had loaded
to $STUDIO_PROBE_OUT (one file per process id), so a test can show that a worker never imported gradio."""
import atexit
import json
import os
import sys
from pathlib import Path


def _write() -> None:
    if "STUDIO_PROBE_OUT" not in os.environ:
        return  # imported by a process the test does not watch
    folder = Path(os.environ["STUDIO_PROBE_OUT"])
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("gradio", "gradio_client"))
    (folder / f"{os.getpid()}.json").write_text(json.dumps({"argv": sys.argv, "gradio": loaded}))


atexit.register(_write)

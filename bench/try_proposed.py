"""The bench with the studio changes it proposes, applied from outside (nothing in studio/ is edited), for an A/B
against a plain `bench/run.py` run on the same machine:

    python bench/try_proposed.py --quick --out /tmp/proposed.json     # same arguments as bench/run.py

PROPOSED (comma-separated, default "arena,peft") picks the changes:
- arena: one malloc arena for the whole process (mallopt(M_ARENA_MAX, 1), what MALLOC_ARENA_MAX=1 does), set before
  any thread starts. glibc gives each new thread its own arena and hands the memory freed there back to the system,
  so the JobManager's trainer thread page-faults its activations in again at every step.
- peft: strategies.finalize() skips `import peft` when no adapter was ever added (peft is loaded only by LoRA runs).
The UI section's server (launch.py) gets the same changes: this file is also its launcher.
Once the studio has made these changes, this file has nothing left to try.
"""
from __future__ import annotations

import ctypes
import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def apply(changes: list[str]) -> None:
    if "arena" in changes and sys.platform.startswith("linux"):
        ctypes.CDLL(None).mallopt(-8, 1)  # M_ARENA_MAX
    sys.path.insert(0, str(ROOT))
    if "peft" in changes:
        import studio.engine.strategies as strategies
        original = strategies.finalize

        def finalize(model):
            if "peft" not in sys.modules:  # no adapter was ever added: nothing to fold
                return
            original(model)
        strategies.finalize = finalize


if __name__ == "__main__":
    apply(os.environ.get("PROPOSED", "arena,peft").split(","))
    if "--port" in sys.argv and "--workspace" in sys.argv:  # started by the bench's UI section, as launch.py
        from studio.cli import main
        sys.exit(main(["serve", *sys.argv[1:]]))
    os.environ["STUDIO_BENCH_LAUNCHER"] = str(Path(__file__).resolve())
    sys.argv = [str(ROOT / "bench" / "run.py"), *sys.argv[1:]]
    runpy.run_path(str(ROOT / "bench" / "run.py"), run_name="__main__")

"""The layers hold: import-linter checks the contracts in pyproject.toml (arrows point down, tasks independent,
no cycles, only the UI imports gradio, the UI imports no torch of its own), counting imports inside functions."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_a_broken_layer_is_caught(tmp_path):
    """The check is not empty: an engine module importing the run layer (inside a function) breaks it."""
    import shutil
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "studio", copy / "studio")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    with open(copy / "studio" / "engine" / "device.py", "a") as f:
        f.write("\n\ndef _up():\n    from studio.run import jobs  # noqa: F401\n")
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(copy / "pyproject.toml")], cwd=copy, capture_output=True,
                            text=True, timeout=300, env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0 and "studio.engine.device -> studio.run.jobs" in result.stdout

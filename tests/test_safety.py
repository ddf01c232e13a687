"""Safety on a shared machine: where the studio listens, the login, no sharing links, code that models ship, how
weights are read, where files are written, and the upload limit."""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from corpus import custom_code_model
from helpers import free_port, start_server
from studio import cli
from studio.workspace import CACHE_VARIABLES, Workspace, confine_caches

ROOT = Path(__file__).resolve().parent.parent
STUDIO = str(Path(sys.executable).with_name("studio"))


def clear_env(monkeypatch, *names):
    """Removes variables for this test only (monkeypatch restores them, set or not, afterwards)."""
    for name in names:
        monkeypatch.setenv(name, "-")
        monkeypatch.delenv(name)


@pytest.fixture
def served(monkeypatch, tmp_path):
    """Runs `studio serve …` in this process with the real launcher replaced: returns what it was asked to do."""
    import studio.ui.app as app
    calls = []
    monkeypatch.setattr(app, "launch", lambda **kwargs: calls.append(kwargs))
    for name, sub in CACHE_VARIABLES.items():
        monkeypatch.setenv(name, str(tmp_path / "ws" / "cache" / sub))
    clear_env(monkeypatch, "STUDIO_AUTH", "STUDIO_MAX_UPLOAD_MB")

    def serve(*args):
        code = cli.main(["--workspace", str(tmp_path / "ws"), "serve", *args])
        return code, (calls[-1] if calls else None)
    return serve


def test_listens_on_this_machine_only_unless_told(served, capsys):
    code, call = served()
    assert code == 0 and call["host"] == "127.0.0.1" and call["auth"] is None
    assert "warning" not in capsys.readouterr().err
    code, call = served("--host", "0.0.0.0")
    err = capsys.readouterr().err
    assert call["host"] == "0.0.0.0"
    assert "warning: the studio listens on 0.0.0.0" in err and "there is no login" in err


def test_login_from_the_command_line_or_the_environment(served, capsys, monkeypatch):
    code, call = served("--host", "0.0.0.0", "--auth", "ann:s3cret:with-colon", "--auth", "bob:pw")
    err = capsys.readouterr().err
    assert call["auth"] == [("ann", "s3cret:with-colon"), ("bob", "pw")]
    assert "a login is required" in err and "STUDIO_AUTH" in err  # the note about passwords in `ps`
    monkeypatch.setenv("STUDIO_AUTH", "carol:pw1,dan:pw2")
    code, call = served()
    assert call["auth"] == [("carol", "pw1"), ("dan", "pw2")]
    code, _ = served("--auth", "no-password")
    assert code == 2 and "must look like USER:PASSWORD" in capsys.readouterr().err


def test_upload_limit_from_the_command_line_or_the_environment(served, capsys, monkeypatch):
    _, call = served("--max-upload-mb", "5")
    assert call["max_upload_mb"] == 5
    code, _ = served("--max-upload-mb", "0")
    assert code == 2 and "--max-upload-mb must be a positive number" in capsys.readouterr().err
    from studio.ui.app import DEFAULT_UPLOAD_MB, upload_limit_mb
    assert upload_limit_mb() == DEFAULT_UPLOAD_MB
    monkeypatch.setenv("STUDIO_MAX_UPLOAD_MB", "12")
    assert upload_limit_mb() == 12 and upload_limit_mb(3) == 3


def test_launch_never_shares_and_passes_login_and_upload_limit(monkeypatch, tmp_path):
    """The real launch(), with gradio's own launch replaced: share is off, auth and max_file_size are passed, and
    gradio's upload folder is inside the workspace."""
    import gradio as gr

    from studio.ui import app
    seen = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: seen.update(kwargs))
    clear_env(monkeypatch, *CACHE_VARIABLES, "HF_HOME")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "")  # launch sets it for uvicorn: restored after the test
    app.launch(port=1, workspace=tmp_path / "ws", block=False, max_upload_mb=3, auth=[("ann", "pw")])
    assert seen["share"] is False and seen["server_name"] == "127.0.0.1"
    assert seen["max_file_size"] == 3 * 1024**2
    check = seen["auth"]  # gradio awaits it (ui/login.py); on a thread of its own, beside playwright's loop
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, check("ann", "pw")).result()
        assert not pool.submit(asyncio.run, check("ann", "wrong")).result()
    assert Path(os.environ["GRADIO_TEMP_DIR"]).is_relative_to(tmp_path / "ws")


def test_library_caches_are_confined_to_the_workspace_unless_already_chosen(monkeypatch, tmp_path):
    clear_env(monkeypatch, *CACHE_VARIABLES, "HF_HOME")
    monkeypatch.setenv("TORCH_HOME", "/shared/torch")
    chosen = confine_caches(tmp_path / "ws")
    assert "TORCH_HOME" not in chosen and os.environ["TORCH_HOME"] == "/shared/torch"
    assert chosen and all(Path(v).is_relative_to(tmp_path / "ws" / "cache") for v in chosen.values())
    clear_env(monkeypatch, *CACHE_VARIABLES)
    monkeypatch.setenv("HF_HOME", "/shared/hf")
    assert not any(name.startswith("HF_") for name in confine_caches(tmp_path / "ws"))


def test_run_folders_stay_inside_the_workspace_whatever_the_model_is_called(tmp_path):
    from studio.recipe import DataSpec, Recipe
    workspace = Workspace(tmp_path / "ws")
    for name in ("../../../../escape", "/etc/passwd", "..", "a/../../b", "C:\\Windows\\system32"):
        run_dir = workspace.new_run_dir(Recipe(model=name, data=DataSpec(path="x")))
        assert run_dir.resolve().is_relative_to(workspace.root / "runs"), (name, run_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]


def test_trust_remote_code_is_off_unless_the_box_is_ticked(tmp_path):
    from helpers import build_backbone
    from studio.families.base import ModelError
    from studio.recipe import Recipe
    from studio.ui.session import new_session
    assert Recipe().trust_remote_code is False and new_session()["recipe"]["trust_remote_code"] is False
    folder = custom_code_model(tmp_path)
    with pytest.raises(ModelError, match="Trust this model's code"):
        build_backbone(folder, "image-classification", pretrained=False)
    assert not (tmp_path / "ws").exists()


def test_trusted_code_runs_and_its_modules_stay_in_the_workspace(tmp_path):
    """In a new process (the model's code is imported): with the box ticked the model loads, and the copy of its
    code that transformers keeps lands inside the workspace, not in the home folder."""
    folder = custom_code_model(tmp_path)
    home, ws = tmp_path / "home", tmp_path / "ws"
    home.mkdir()
    script = ("import sys, torch; from studio.workspace import confine_caches; confine_caches(sys.argv[2]); "
              "from studio import tasks; "
              "b, info, _ = tasks.get('image-classification').backbone(sys.argv[1], pretrained=False, "
              "trust_remote_code=True); "
              "print(tuple(b(torch.zeros(1, 3, 32, 32)).shape), info.trust_remote_code)")
    env = {k: v for k, v in os.environ.items() if k not in CACHE_VARIABLES and k != "HF_HOME"}
    result = subprocess.run([sys.executable, "-c", script, folder, str(ws)], capture_output=True, text=True,
                            env={**env, "HOME": str(home)}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["(1,", "8)", "True"]
    assert list(home.iterdir()) == [] and (ws / "cache" / "huggingface" / "modules").is_dir()


def test_weights_are_read_with_safetensors_or_weights_only():
    """Every torch.load in the studio says weights_only=True; nothing unpickles or loads YAML unsafely, and no
    code turns trust_remote_code on by itself. (tests/corpus.py's pickled-weights case checks the behaviour.)"""
    sources = {p: p.read_text(encoding="utf-8") for p in (ROOT / "studio").rglob("*.py")}
    assert sources
    for path, text in sources.items():
        for start in (m.end() for m in re.finditer(r"torch\.load\(", text)):
            depth, end = 1, start
            while depth:
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            assert "weights_only=True" in text[start:end], (path, text[start:end])
        assert not re.search(r"\bpickle\.loads?\(|\byaml\.load\(|\byaml\.unsafe_load|trust_remote_code=True", text), \
            path



def test_a_real_server_asks_for_a_login(tmp_path):
    """`studio serve` with STUDIO_AUTH, in its own process, home and working folder: the page and its config need
    the password; nothing is written outside the workspace."""
    home, cwd, ws = tmp_path / "home", tmp_path / "cwd", tmp_path / "ws"
    home.mkdir(), cwd.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in CACHE_VARIABLES and k != "HF_HOME"}
    env.update(HOME=str(home), STUDIO_AUTH="ann:s3cret", GRADIO_ANALYTICS_ENABLED="False")
    server = start_server([STUDIO, "--workspace", str(ws), "serve", "--port", str(port)], port,
                          tmp_path / "server.log", cwd=cwd, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        with pytest.raises(urllib.error.HTTPError) as locked:
            urllib.request.urlopen(f"{url}/config", timeout=10)  # what the page is made of: not without a login
        assert locked.value.code == 401

        def login(password):
            form = urllib.parse.urlencode({"username": "ann", "password": password}).encode()
            return urllib.request.urlopen(urllib.request.Request(f"{url}/login", data=form), timeout=10)
        with pytest.raises(urllib.error.HTTPError) as refused:
            login("wrong")
        assert refused.value.code == 400
        answer = login("s3cret")
        cookies = "; ".join(c.split(";", 1)[0] for c in answer.headers.get_all("set-cookie"))
        config = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"{url}/config", headers={"Cookie": cookies}), timeout=10).read())
        assert config.get("auth_required") is not True and len(config["components"]) > 10
    finally:
        server.terminate()
        server.wait(30)
    written = sorted(str(f) for folder in (home, cwd) for f in folder.rglob("*"))
    assert written == [], written

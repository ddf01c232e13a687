"""The UI with its runs on a Ray cluster (`studio serve --cluster ADDRESS`), against the test session's Ray head
(tests/conftest.py), through the page's own handlers: the Model and Strategy tabs say which cluster and what it
has; runs started from the page train as Ray jobs and complete; one started while the cluster is full says, on the
Train tab, what it waits for; the Train tab's log shows the job's log."""
import subprocess
import sys
from pathlib import Path

import gradio as gr
import pytest

from helpers import free_port, wait_for

pytest.importorskip("ray.job_submission", reason="the cluster extra (pip install -e \".[cluster]\")")

from studio.cli import build_parser  # noqa: E402
from studio.run.jobs import JobManager  # noqa: E402
from studio.runfolder import RunFolder  # noqa: E402
from studio.ui.app import build_app  # noqa: E402
from studio.ui.session import new_session  # noqa: E402
from studio.workspace import Workspace  # noqa: E402

STUDIO = str(Path(sys.executable).with_name("studio"))


def test_cluster_is_taken_after_the_sub_command_too():
    assert build_parser().parse_args(["serve", "--cluster", "http://h:8265"]).cluster == "http://h:8265"
    assert build_parser().parse_args(["--cluster", "http://h:8265", "serve"]).cluster == "http://h:8265"


def test_serve_with_a_cluster_where_nothing_answers_is_said_in_words(tmp_path):
    address = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run([STUDIO, "serve", "--cluster", address, "--workspace", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"No Ray cluster answers at {address}" in result.stderr and "Traceback" not in result.stderr


def by_id(app, elem_id: str):
    return next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def handler(app, name: str, writes):
    """The page's handler of that name that writes the component."""
    return next(f.fn for f in app.fns.values() if f.name == name and writes in f.outputs)


def session_for(tiny_bert, text_csv) -> dict:
    state = new_session()
    state["lang"] = "en"
    state["recipe"].update(task="text-classification", model=tiny_bert, data={"path": text_csv}, strategy="full",
                           train={"epochs": 1, "batch_size": 8, "cpus": 2})  # the whole cluster: one at a time
    state["data_kind"] = "text-classification"
    return state


def start(app, state) -> dict:
    answer = handler(app, "on_start", by_id(app, "train-message"))(state)
    state = next(value for component, value in answer.items() if isinstance(component, gr.BrowserState))
    assert state["run_id"], answer
    return state


def test_runs_started_from_the_page_train_on_the_cluster(ray_cluster, tmp_path, tiny_bert, text_csv, monkeypatch):
    monkeypatch.setenv("STUDIO_CLUSTER", ray_cluster)  # what `studio serve --cluster` sets before the UI starts
    workspace = Workspace(tmp_path / "ws")
    manager = JobManager(workspace)
    app = build_app(workspace, manager)
    note = by_id(app, "cluster-note-model")
    show = handler(app, "show", note)
    words = show(new_session() | {"lang": "en"})[note]
    assert words == (f"Runs train on the Ray cluster at {ray_cluster} (nodes: 1, CPUs: 2, GPUs: 0); free now: 2 CPUs "
                     "and 0 GPUs.")
    strategy_note = by_id(app, "cluster-note-strategy")
    assert handler(app, "show", strategy_note)(new_session() | {"lang": "en"})[strategy_note] == words

    first, second = start(app, session_for(tiny_bert, text_csv)), start(app, session_for(tiny_bert, text_csv))
    runs = [RunFolder(workspace.find_run(state["run_id"])) for state in (first, second)]
    wait_for(lambda: runs[0].status()["status"] == "running", 180, "the first run to train on the cluster")
    progress, log = by_id(app, "progress"), by_id(app, "train-log")
    refresh = handler(app, "refresh", progress)
    waiting = "Waiting for the cluster: 0 CPUs and 0 GPUs free; this run asks for 2 CPUs and 0 GPUs."
    wait_for(lambda: waiting in refresh(second, {}, True)[progress], 60, "the second run's words on the Train tab")
    assert "free now: 0 CPUs" in show(first)[note]

    for run in runs:
        wait_for(lambda r=run: r.status()["status"] not in ("queued", "running"), 300, f"run {run.id} to end")
        status = run.status()
        assert status["status"] == "completed", status
        assert (status["backend"], status["cluster_job_id"]) == ("ray", run.id)
        assert manager.jobs[run.id].process.wait(60) == 0  # its placer ends with its job
    shown = refresh(first, {}, True)[log]
    assert "The job's log on the cluster (Ray: SUCCEEDED):" in shown and f"studio.cli worker {runs[0].path}" in shown

"""Training outlives the page's server, and the page outlives training: the UI process group killed mid-run (the
worker trains on, and a new UI shows the run and its model), and the worker killed mid-run (the page keeps
answering, says why the run stopped, and resumes it)."""
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from browser_helpers import choose_example, latest_run_id, set_epochs, tab, wait_text
from helpers import free_port, start_server
from studio.runfolder import RunFolder

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def servers():
    """Starts `python launch.py` in a process group of its own (as a terminal would); all stopped at the end."""
    started = []

    def launch(workspace: Path, port: int | None = None):
        port = port or free_port()
        process = start_server([sys.executable, str(ROOT / "launch.py"), "--port", str(port), "--workspace",
                                str(workspace)], port, workspace.parent / f"server-{port}.log", cwd=ROOT,
                               start_new_session=True)
        started.append(process)
        return process, f"http://127.0.0.1:{port}"
    yield launch
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


def start_long_run(page, url, epochs=1000) -> str:
    page.goto(url)
    choose_example(page, "shapes")
    set_epochs(page, epochs, patience=0)
    tab(page, "Train")
    page.locator("#start").click()
    wait_text(page, "#progress", "Step", timeout=120)
    return latest_run_id(page)


def steps(run: RunFolder) -> int:
    return sum(e["type"] == "step" for e in run.events())


@pytest.mark.slow  # over a minute: a long run outlives a killed UI
def test_the_ui_killed_mid_run_the_run_finishes_and_a_new_ui_shows_it(page, servers, tmp_path):
    workspace = tmp_path / "ws"
    ui, url = servers(workspace)
    run_id = start_long_run(page, url, epochs=1000)  # long enough to outlive the UI it was started from
    run = RunFolder(workspace / "runs" / run_id)
    os.killpg(ui.pid, signal.SIGKILL)  # the server and everything in its process group, without warning
    ui.wait(30)
    before = steps(run)
    deadline = time.time() + 60
    while steps(run) == before and time.time() < deadline:
        time.sleep(0.2)
    assert steps(run) > before and run.worker_alive()  # it trains on without the UI
    # Restarted as a person would, at the same address: the browser keeps a session per address.
    _, url = servers(workspace, port=int(url.rsplit(":", 1)[1]))
    page.goto(url, timeout=90_000)  # a fresh server answers its first page slowly on a busy machine
    tab(page, "Runs")
    wait_text(page, "#runs-table", run_id, timeout=30)
    assert re.search(r"running|completed", page.locator("#runs-table").inner_text())
    deadline = time.time() + 300
    while run.status().get("status") != "completed" and time.time() < deadline:
        time.sleep(0.5)
    assert run.status()["status"] == "completed", run.status()
    tab(page, "Playground")  # this new UI's page is the same browser session: its own run is chosen
    page.wait_for_function("document.querySelectorAll('#playground-examples img').length > 0")
    page.locator("#playground-examples img").first.click()
    wait_text(page, "#prediction", "circle|square|triangle", timeout=60)


@pytest.mark.slow  # about 50 s: a killed worker, then a resumed run
def test_the_worker_killed_mid_run_the_page_answers_and_the_run_resumes(page, servers, tmp_path):
    workspace = tmp_path / "ws"
    _, url = servers(workspace)
    run_id = start_long_run(page, url)
    run = RunFolder(workspace / "runs" / run_id)
    os.kill(run.status()["pid"], signal.SIGKILL)
    wait_text(page, "#progress", "Interrupted", timeout=60)
    assert "SIGKILL" in page.locator("#progress").inner_text()
    tab(page, "Runs")
    wait_text(page, "#runs-note", "Interrupted", timeout=30)
    page.locator("#resume").click()
    wait_text(page, "#runs-note", "queued again", timeout=30)
    tab(page, "Train")
    wait_text(page, "#progress", "Step", timeout=120)
    assert run.status()["status"] == "running"
    page.locator("#stop").click()
    wait_text(page, "#progress", "Stopped", timeout=60)

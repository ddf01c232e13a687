"""A task the studio does not ship (tests/regression_task.py, loaded through STUDIO_PLUGINS) and has no panel for:
its Data, Evaluate and Playground tabs work in the browser through the generic panel."""
import os
import sys
from pathlib import Path

import pytest

from browser_helpers import tab, wait_text
from helpers import free_port, start_server, stop_server

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def plugin_url(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("plugin-ws")
    env = {**os.environ, "STUDIO_PLUGINS": "regression_task",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    port = free_port()
    server = start_server([sys.executable, str(ROOT / "launch.py"), "--port", str(port), "--workspace",
                           str(workspace)], port, workspace / "server.log", cwd=ROOT, env=env)
    yield f"http://127.0.0.1:{port}"
    stop_server(server)


@pytest.fixture(scope="module")
def numbers(tmp_path_factory) -> Path:
    """y = 2a - b + noise over 60 rows."""
    import random
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("numbers") / "numbers.csv"
    rows = ["a,b,label"] + [f"{a:.3f},{b:.3f},{2 * a - b + rng.gauss(0, 0.05):.3f}"
                            for a, b in ((rng.random(), rng.random()) for _ in range(60))]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_task_without_a_panel_shows_its_data_results_and_playground(plugin_url, numbers, page):
    page.goto(plugin_url)
    page.get_by_label("Numbers (predict a value from a table)").check()
    tab(page, "Data")
    page.locator("#data-upload input[type=file]").set_input_files(str(numbers))
    wait_text(page, "#data-status", "Ready", timeout=60)
    wait_text(page, "#generic-rows", "example", timeout=30)  # the generic panel's sample rows
    tab(page, "Train")
    page.locator("#start").click()
    wait_text(page, "#progress-text", "Finished", timeout=180)
    tab(page, "Evaluate")
    wait_text(page, "#generic-results", "rmse", timeout=30)  # its figures in words
    tab(page, "Playground")
    page.locator("#generic-input textarea").fill("0.5,0.25")
    page.locator("#predict").click()
    wait_text(page, "#prediction", "value", timeout=60)

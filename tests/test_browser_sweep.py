"""A sweep from the browser: the Strategy tab's "Try several settings" starts one (two learning rates of the shapes
example's feature extraction), the Runs tab ranks its runs as they finish, and "Use the best" opens the best run in
Evaluate."""
import json

import pytest

from browser_helpers import choose_example, latest_run_id, set_epochs, shot, stop_active_runs, tab, wait_text

# Slow (about 80 s: two runs through worker processes, the first computing the shapes' features); the default run
# checks the same sweep path without the browser (tests/test_sweep.py) and the form's block (same file).
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_sweep_started_on_the_strategy_tab_ranks_its_runs_and_opens_the_best(page, url, workspace):
    page.goto(url)
    choose_example(page, "shapes")
    set_epochs(page, 2)
    page.locator("#sweep").get_by_text("Try several settings").click()
    page.locator("#sweep-rates textarea, #sweep-rates input").first.fill("1e-3, 3e-2")
    page.locator("#sweep-start").click()
    wait_text(page, "#sweep-note", "Started sweep sweep-\\S+: 2 runs", timeout=60)
    tab(page, "Runs")
    try:
        wait_text(page, "#sweep-status", "completed", timeout=400)
    finally:
        stop_active_runs(workspace)
    sweep = json.loads(next((workspace / "sweeps").glob("*/sweep.json")).read_text())
    assert sweep["status"] == "completed" and [r["status"] for r in sweep["runs"]] == ["completed", "completed"]
    best = sweep["best"]["run_id"]
    other = next(r["run_id"] for r in sweep["runs"] if r["run_id"] != best)
    wait_text(page, "#sweep-status", f"Best so far: run {best}")
    table = page.locator("#sweep-table").inner_text()
    assert 0 <= table.index(best) < table.index(other)  # ranked first
    shot(page, "sweep-leaderboard")
    page.locator("#sweep-best").click()
    page.get_by_role("tab", name="Evaluate", exact=True).wait_for()
    page.wait_for_function("document.querySelector('[role=tab][aria-selected=true]').innerText.includes('Evaluate')")
    assert latest_run_id(page) == best

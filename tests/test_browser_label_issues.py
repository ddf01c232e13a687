"""Examples that may be mislabelled, in the browser: a run on shapes with planted wrong labels shows its suspects
in the Evaluate tab's gallery; one is left out, one relabelled, "Train again with these changes" queues a run with
a corrections file in the workspace (the data folder untouched), and the Runs tab compares the two runs."""
import csv
import json
import shutil

import pytest

from browser_helpers import shot, stop_active_runs, tab, wait_text
from studio.examples import make_shapes

# Slow (47–82 s: a run in the test process, then the page's own run through a worker process); the default run
# checks the corrections and the label issues without the browser (tests/test_label_issues.py).
pytestmark = [pytest.mark.browser, pytest.mark.slow]

FLIPS = {"circle/circle_000.jpg": "square", "square/square_001.jpg": "triangle", "triangle/triangle_002.jpg": "circle"}


@pytest.fixture(scope="module")
def noisy_run(workspace, tmp_path_factory):
    """A finished feature-extraction run on small shapes, three of them moved to another shape's folder."""
    from studio.recipe import DataSpec, Recipe
    from studio.run.jobs import JobManager
    from studio.workspace import Workspace
    data = make_shapes(tmp_path_factory.mktemp("data") / "noisy-shapes", per_class=10, size=48)
    for path, label in FLIPS.items():
        shutil.move(str(data / path), str(data / label / ("flipped-" + path.split("/")[1])))
    job = JobManager(Workspace(workspace), in_process=True).start(
        Recipe(model="efficientnet-lite0", data=DataSpec(path=str(data))))
    assert job.wait(300) and job.status["status"] == "completed", job.status
    issues = json.loads((job.run_dir / "eval.json").read_text())["label_issues"]
    assert len(issues) >= 2, issues
    yield data, job.run_id, issues
    stop_active_runs(workspace)


def test_suspects_from_the_gallery_are_corrected_and_trained_again_then_compared(page, url, workspace, noisy_run):
    data, run_id, issues = noisy_run
    files = sorted(p.relative_to(data) for p in data.rglob("*.jpg"))
    page.goto(url)
    tab(page, "Evaluate")
    page.locator("#evaluate-run input").click()
    page.get_by_role("option").filter(has_text="noisy-shapes · ").first.click()
    wait_text(page, "#label-issues-note", f"{len(issues)} examples may be mislabelled")
    gallery = page.locator("#label-issues-gallery")
    gallery.locator("img").first.wait_for()
    assert gallery.locator("img").count() == len(issues)
    shot(page, "label-issues-gallery")
    # the most suspect, chosen in the gallery: left out
    gallery.locator("button").filter(has=page.locator("img")).first.click()
    page.wait_for_function(f"document.querySelector('#label-issue-example input').value === "
                           f"{json.dumps(str(issues[0]['example']))}")
    page.locator("#label-issue-decision input").click()
    page.get_by_role("option", name="leave it out").click()
    wait_text(page, "#label-issues", "leave out")
    # the second, chosen in the list: relabelled as its suggestion
    page.locator("#label-issue-example input").click()
    page.get_by_role("option", name=str(issues[1]["example"]), exact=True).click()
    page.locator("#label-issue-decision input").click()
    page.get_by_role("option", name=f"relabel as {issues[1]['suggested']} (suggested)").click()
    wait_text(page, "#label-issues", f"relabel as {issues[1]['suggested']}")
    page.locator("#train-again").click()
    wait_text(page, "#train-again-note", "Queued a run with the same recipe and 2 change")
    # the user's data is untouched; the corrections live in the workspace
    assert sorted(p.relative_to(data) for p in data.rglob("*.jpg")) == files
    written = next((workspace / "uploads" / "corrections").rglob("corrections.csv"))
    with open(written, newline="") as f:
        assert {r["example"]: r["label"] for r in csv.DictReader(f)} == {
            str(issues[0]["example"]): "exclude", str(issues[1]["example"]): issues[1]["suggested"]}
    tab(page, "Runs")
    wait_text(page, "#compare-table", "completed[\\s\\S]*completed", timeout=300)
    new = sorted(p.name for p in (workspace / "runs").iterdir() if p.name != run_id)[-1]
    picked = page.locator("#compare-runs").inner_text()
    assert run_id in picked and new in picked  # the two runs compared
    shot(page, "label-issues-compared")
    recipe = (workspace / "runs" / new / "recipe.yaml").read_text()
    assert f"corrections: {written}" in recipe
    report = json.loads((workspace / "runs" / new / "data_report.json").read_text())
    assert sum(report["train_counts"].values()) + sum(report["validation_counts"].values()) == len(files) - 1

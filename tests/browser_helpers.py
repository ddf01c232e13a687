"""What the browser tests do on the page: open a tab, wait for words, choose an example, set the epochs, take a
screenshot; and leave no run going behind them."""
import re
import time
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SHOTS = ARTIFACTS / "screenshots"


def tab(page, name):
    page.get_by_role("tab", name=name, exact=True).click()


def wait_text(page, selector, pattern, timeout=120):
    """Waits until the element's text matches; on a timeout the failure says what the element showed instead."""
    try:
        page.wait_for_function(f"document.querySelector('{selector}') && "
                               f"/{pattern}/.test(document.querySelector('{selector}').innerText)",
                               timeout=timeout * 1000)
    except Exception as error:  # playwright's TimeoutError
        shown = page.locator(selector).first.inner_text(timeout=2000) if page.locator(selector).count() else None
        raise AssertionError(f"{selector} never matched /{pattern}/ in {timeout} s; it shows: {shown!r}") from error


def playground_run(page, url, data: str) -> None:
    """A fresh page on the Playground with the run trained on `data` chosen (its name starts with the data's)."""
    page.goto(url)
    tab(page, "Playground")
    page.locator("#playground-run input").click()
    page.get_by_role("option").filter(has_text=f"{data} · ").first.click()


def ask(page, text: str, expected: str) -> None:
    """Types a text into the Playground, presses Enter and waits for an answer matching `expected`."""
    box = page.locator("#playground-text textarea")
    box.fill(text)
    box.press("Enter")
    wait_text(page, "#prediction", expected, timeout=60)


def lists(table: str, run_id: str) -> bool:
    """Whether the table names this run id as a whole (one id may begin another: `…-feature-extraction-2`)."""
    return re.search(rf"(?<![\w-]){re.escape(run_id)}(?![\w-])", table) is not None


def latest_run_id(page) -> str:
    """The run id the top bar names after 'Latest run' (English page)."""
    found = re.search(r"Latest run (\d{8}-\S+)", page.locator("#summary").inner_text())
    assert found, page.locator("#summary").inner_text()
    return found.group(1)


def choose_example(page, name):
    tab(page, "Data")
    page.locator(f"#example-{name}").click()
    wait_text(page, "#data-status", "Ready", timeout=60)


def try_model(page, name: str) -> None:
    tab(page, "Model")
    box = page.get_by_label("Model name or folder")
    if not box.is_visible():
        page.get_by_text("Use another model (a name from huggingface.co, or a folder on this machine)").click()
    box.fill(name)
    page.locator("#use-custom").click()


def set_epochs(page, epochs, patience=None, batch_size=None):
    """Epochs (and early-stopping patience: 0 makes a long run last; a batch size of 1 makes each epoch as many
    steps as examples: on cached features 1000 epochs of 3 steps end within seconds). Feature extraction then
    trains its head over the epochs (head_solver: sgd), not solved at once."""
    tab(page, "Strategy")
    # As a person would, only once the tab has shown the strategy's own settings (its answer makes the options
    # visible: a box typed in before it arrives may be written over, an option checked before it is not there).
    wait_text(page, "#recommendation", "Recommended|Check your data", timeout=60)
    if not page.locator("#epochs input").is_visible():
        page.get_by_text("Advanced settings").click()
    page.locator("#epochs input").wait_for(state="visible")  # the section opens with an animation
    if page.locator("#option-head-solver").is_visible():
        page.locator("#option-head-solver").get_by_label("sgd").check()
    for field, value in (("epochs", epochs), ("patience", patience), ("batch-size", batch_size)):
        if value is not None:
            page.locator(f"#{field} input").fill(str(value))
            page.locator(f"#{field} input").press("Tab")
    page.locator("#show-recipe").click()
    wait_text(page, "#recipe-yaml", f"epochs: {epochs}", timeout=60)
    if patience is not None:
        wait_text(page, "#recipe-yaml", f"early_stopping_patience: {patience}", timeout=60)
    if batch_size is not None:
        wait_text(page, "#recipe-yaml", f"batch_size: {batch_size}\\b", timeout=60)


SHOT_SECONDS = []  # time spent taking screenshots, left out of the demo's clock


def shot(page, name):
    start = time.perf_counter()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    SHOT_SECONDS.append(time.perf_counter() - start)


def stop_active_runs(workspace):
    from studio.runfolder import ACTIVE, RunFolder
    active = [RunFolder(p.parent) for p in workspace.glob("runs/*/status.json")]
    active = [run for run in active if run.status().get("status") in ACTIVE]
    for run in active:
        run.request_cancel()
    deadline = time.time() + 120
    while any(run.status().get("status") in ACTIVE for run in active) and time.time() < deadline:
        time.sleep(0.2)

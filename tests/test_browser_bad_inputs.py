"""The browser's share of the bad-input corpus (the cases marked browser=True in tests/corpus.py): one studio, one
page, each file uploaded on the Data tab or each model typed on the Model tab, the message read off the page.
Also: the upload limit, and the trust_remote_code box."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from browser_helpers import tab, try_model
from corpus import CASES, Case, Models
from helpers import free_port, start_server, stop_server
from studio import tasks
from studio.workspace import CACHE_VARIABLES

pytestmark = pytest.mark.browser

STUDIO = str(Path(sys.executable).with_name("studio"))
BROWSER_CASES = [case for case in CASES if case.browser]
UPLOAD_LIMIT_MB = 2
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def models(tiny_vit, tiny_bert, tiny_whisper, tiny_llama) -> Models:
    return Models(image=tiny_vit, text=tiny_bert, audio=tiny_whisper, chat=tiny_llama)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`studio serve` in its own process, home and working folder, with a 2 MB upload limit and the zip-size
    limit the corpus's zip bomb needs; yields (url, its folder)."""
    root = tmp_path_factory.mktemp("bad-inputs-server")
    for name in ("home", "cwd"):
        (root / name).mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in CACHE_VARIABLES and k != "HF_HOME"}
    env.update(HOME=str(root / "home"), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    for case in BROWSER_CASES:
        env.update(dict(case.env))
    process = start_server([STUDIO, "--workspace", str(root / "ws"), "serve", "--port", str(port),
                            "--max-upload-mb", str(UPLOAD_LIMIT_MB)], port, root / "server.log", cwd=root / "cwd",
                           env=env)
    url = f"http://127.0.0.1:{port}"
    yield url, root
    stop_server(process)


@pytest.fixture(scope="module")
def studio_page(browser, server):
    """One page for every case, as a user who tries one file after another."""
    url, _ = server
    page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    page.goto(url)
    page.wait_for_selector("#tab-model")
    yield page
    page.context.close()


def outside_files(root: Path) -> list[str]:
    return sorted(str(p) for folder in (root / "home", root / "cwd") for p in folder.rglob("*"))


WAIT_JS = """([selector, patterns]) => { const el = document.querySelector(selector);
    return !!el && patterns.every(p => new RegExp(p, 'i').test(el.innerText)); }"""


def wait_words(page, selector: str, patterns: list[str], timeout_s: float = 90) -> None:
    try:
        page.wait_for_function(WAIT_JS, arg=[selector, patterns], timeout=timeout_s * 1000)
    except Exception:
        text = page.locator(selector).inner_text() if page.locator(selector).count() else "(missing)"
        raise AssertionError(f"{selector} never matched {patterns}; it says: {text}") from None


def upload(page, path: Path) -> None:
    tab(page, "Data")
    clear = page.locator("#data-upload").get_by_label("Clear")
    if clear.count() and clear.first.is_visible():
        clear.first.click()
    page.locator("#data-upload input[type=file]").set_input_files(str(path))


@pytest.mark.parametrize("case", BROWSER_CASES, ids=lambda c: c.id)
def test_bad_input_in_the_browser(case: Case, studio_page, server, models, tmp_path):
    page, (_, root) = studio_page, server
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    given = case.build(inputs, models)
    if case.layer == "model":
        tab(page, "Model")  # the last upload may have switched the task: choose the case's own
        page.get_by_label(tasks.get(given.task).title).check()
        try_model(page, given.model)
        wait_words(page, "#custom-note", ["This model cannot be used", *case.expect])
    else:
        assert given.data.is_file(), "browser cases upload one file"
        upload(page, given.data)
        verdict = "Ready:" if case.outcome == "accepted" else "The data cannot be used yet"
        wait_words(page, "#data-status", [verdict, *case.expect])
    assert "Traceback" not in page.locator("body").inner_text()
    assert outside_files(root) == []
    for path in given.escape:
        assert not path.exists()


def test_an_upload_over_the_limit_is_refused_in_words(studio_page, tmp_path):
    page = studio_page
    tab(page, "Data")
    wait_words(page, "#upload-limit", [f"Up to {UPLOAD_LIMIT_MB} MB"])
    big = tmp_path / "big.csv"
    big.write_text("text,label\n" + "a long line of text,a\n" * 150_000)  # 3.2 MB
    upload(page, big)
    toast = page.get_by_text("exceed the maximum allowed size").first
    toast.wait_for(timeout=30_000)
    assert f"{UPLOAD_LIMIT_MB:.1f} Mb" in toast.inner_text() and "big.csv" in toast.inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(600)  # the toast fades in
    page.screenshot(path=str(SHOTS / "upload-too-large.png"))


def test_the_trust_box_is_off_and_explained(studio_page):
    page = studio_page
    tab(page, "Model")
    if not page.locator("#trust-code").is_visible():
        page.get_by_text("Use another model: a Hugging Face hub id or a local folder").click()
    box = page.locator("#trust-code input[type=checkbox]")
    assert not box.is_checked()
    text = page.locator("#trust-code").inner_text()
    assert "Trust this model's code" in text and "runs on this machine" in text

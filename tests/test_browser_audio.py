"""Audio in a real browser: the bundled spoken commands through training with the offline Whisper tiny.en to a
Playground answer for an uploaded clip. Only stable elem_ids are used: the tabs' own buttons (#tab-<id>-button),
the wizard's (#summary, #example-commands, #start, #progress, #playground-run) and the audio panel's."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from studio.assets import COMMANDS_DIR

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


def open_tab(page, tab_id: str) -> None:
    page.locator(f"#tab-{tab_id}-button").click()


def wait_text(page, selector: str, pattern: str, timeout_s: float = 120) -> None:
    page.wait_for_function("([s, p]) => { const el = document.querySelector(s); return !!el && new RegExp(p)"
                           ".test(el.innerText); }", arg=[selector, pattern], timeout=timeout_s * 1000)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_audio_from_the_bundled_commands_to_an_answer_for_an_uploaded_clip(page, start_studio, commands_run,
                                                                          tmp_path):
    """The features of the bundled clips come from the shared run's cache (the integration tests time the encoder);
    everything else runs as for a user: the data checked, a worker trains the head, evaluates and saves."""
    shutil.copytree(commands_run[0] / "cache" / "features", tmp_path / "workspace" / "cache" / "features")
    url = start_studio(tmp_path / "workspace")
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("#tab-model")
    # The page's load event puts the session back (and selects its tab): a click before it ends would be undone.
    # The summary line shows that event's progress until it has written the session's choices.
    wait_text(page, "#summary", "Task", timeout_s=60)
    open_tab(page, "data")
    page.locator("#example-commands").wait_for(state="visible", timeout=30_000)
    page.locator("#example-commands").click()
    wait_text(page, "#data-status", "Ready: 48 examples in 4 classes", timeout_s=90)
    wait_text(page, "#audio-summary", "48 clips")
    page.wait_for_function("document.querySelector('#audio-durations .js-plotly-plot')?.data?.length === 4",
                           timeout=30_000)
    page.locator("#audio-preview-0 audio, #audio-preview-0 button").first.wait_for(timeout=30_000)
    assert "down" in page.locator("#audio-preview-0").inner_text()
    shot(page, "audio-2-data")
    open_tab(page, "train")
    page.locator("#start").click()
    wait_text(page, "#progress", "Finished", timeout_s=300)
    shot(page, "audio-4-train")
    open_tab(page, "evaluate")
    page.wait_for_function("document.querySelector('#confusion-plot .js-plotly-plot')?.data?.[0]?.z?.length === 4",
                           timeout=30_000)
    shot(page, "audio-5-evaluate")
    open_tab(page, "playground")
    page.wait_for_function("!!document.querySelector('#playground-run input')?.value", timeout=30_000)
    clip = tmp_path / "my-recording.flac"
    shutil.copyfile(sorted((COMMANDS_DIR / "up").iterdir())[-1], clip)
    page.locator("#playground-audio input[type=file]").set_input_files(str(clip))
    wait_text(page, "#prediction", "(up|down|yes|no)", timeout_s=60)
    assert "sure" in page.locator("#prediction").inner_text()
    page.locator("#playground-audio-examples label").first.click()  # clip 1: a "down"
    wait_text(page, "#prediction", "down", timeout_s=60)
    page.wait_for_function("document.querySelector('#topk-plot .js-plotly-plot')?.data?.[0]?.y?.includes('down')",
                           timeout=30_000)
    shot(page, "audio-6-playground")
    print(f"\naudio: opening the page to a playground answer in {time.perf_counter() - started:.0f} s")

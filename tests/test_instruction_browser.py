"""The chat flow in a real browser: task "Teach a chat model", the bundled help-desk example checked, a run started
(its step shows tokens/s) and stopped, the Evaluate tab's tuned-vs-base view, and the Playground streaming the
tuned model's answer beside the base model's. The finished run is the one the integration test trained."""
import time

import pytest

from browser_helpers import SHOTS, shot, stop_active_runs, tab, wait_text

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # 3 minutes on 2 CPU cores: it tunes SmolLM2
LENGTH_JS = "id => (document.querySelector(`#${id}`)?.innerText || '').length"


def choose_first_run(page, picker: str) -> None:
    page.locator(f"#{picker} input").click()
    page.get_by_role("option").first.click()


@pytest.fixture(scope="module")
def chat_url(start_studio, chat_run):
    return start_studio(chat_run[0])


def test_from_the_bundled_example_to_a_streamed_chat_answer(page, chat_url, chat_run):
    workspace, run_dir, rows = chat_run
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(chat_url)
    page.get_by_label("Teach a chat model (instruction tuning)").check()
    wait_text(page, "#summary", "Model SmolLM2-135M-Instruct", timeout=20)
    tab(page, "Data")
    page.locator("#example-helpdesk-chat").click()
    wait_text(page, "#data-status", "Ready", timeout=120)
    wait_text(page, "#chat-data-stats", "128 training and 32 validation conversations", timeout=30)
    assert "Tea-riffic" in page.locator("#chat-preview").inner_text()
    shot(page, "chat-2-data")
    tab(page, "Train")
    page.locator("#start").click()
    wait_text(page, "#progress", "tokens.s", timeout=300)  # a step of the real run, with its throughput
    shot(page, "chat-4-train")
    page.locator("#stop").click()
    wait_text(page, "#progress", "Stopped", timeout=120)
    tab(page, "Evaluate")  # this session's run was stopped: the finished one listed is the shared run
    choose_first_run(page, "evaluate-run")
    wait_text(page, "#chat-metrics", "Validation loss", timeout=60)
    assert "Tea-riffic" in page.locator("#chat-samples").inner_text()
    shot(page, "chat-5-evaluate")
    tab(page, "Playground")
    choose_first_run(page, "playground-run")
    page.locator("#chat-message textarea").wait_for(timeout=60000)
    page.locator("#chat-message textarea").fill(rows[0][0])
    page.locator("#chat-send").click()
    lengths, deadline = [], time.time() + 240
    while time.time() < deadline:
        lengths.append(page.evaluate(LENGTH_JS, "chat-tuned"))
        if "Tea-riffic" in page.locator("#chat-tuned").inner_text() and page.evaluate(LENGTH_JS, "chat-base") > 0:
            break
        page.wait_for_timeout(100)
    wait_text(page, "#chat-tuned", "Tea-riffic", timeout=60)
    assert len(set(lengths)) >= 3, lengths  # the answer grew piece by piece: streamed
    shot(page, "chat-6-playground")
    stop_active_runs(workspace)

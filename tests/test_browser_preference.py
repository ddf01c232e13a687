"""Preference tuning in the browser, as a new user does it: the bundled help-desk pairs, a chat model (the tiny random
Llama, for time), one epoch of DPO, then the Evaluate tab's start-vs-tuned table and the held-out prompts with both
references."""
import json

import pytest

from browser_helpers import choose_example, latest_run_id, set_epochs, shot, tab, try_model, wait_text

pytestmark = pytest.mark.browser


def test_from_the_bundled_pairs_to_the_start_vs_tuned_table(page, url, workspace, tiny_llama):
    page.goto(url)
    choose_example(page, "helpdesk-preferences")
    wait_text(page, "#chat-preview", "better answer", timeout=60)  # the pairs side by side
    try_model(page, tiny_llama)
    wait_text(page, "#custom-note", "Using", timeout=60)
    set_epochs(page, 1)
    tab(page, "Train")
    page.locator("#start").click()
    wait_text(page, "#progress", "Finished", timeout=420)
    run_id = latest_run_id(page)
    report = json.loads((workspace / "runs" / run_id / "eval.json").read_text())
    tab(page, "Evaluate")
    wait_text(page, "#chat-versus", "better answer more probable", timeout=60)
    versus = page.locator("#chat-versus").inner_text()
    for figure in (f"{report['base_preference_accuracy']:.0%}", f"{report['preference_accuracy']:.0%}",
                   f"{report['general_loss']:.3f}", f"{report['base_general_loss']:.3f}"):
        assert figure in versus
    samples = page.locator("#chat-samples").inner_text()
    first = report["samples"][0]
    assert "worse answer" in samples and first["worse_reference"][:30] in samples and first["reference"][:30] in samples
    shot(page, "preference-evaluate")

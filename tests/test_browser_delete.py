"""The Runs tab's "Delete this run" in the real page (playwright, Debian's chromium): the first click says what will
be lost and asks again, "Yes, delete it" deletes the run's folder, and the run leaves the Runs table and the
Evaluate picker, while the other run stays."""
from __future__ import annotations

import re

import pytest

from browser_helpers import lists, shot, tab, wait_text
from team_runs import made_run

pytestmark = pytest.mark.browser


def test_a_run_is_deleted_after_one_confirmation_and_leaves_every_list(url, workspace, page):
    gone, kept = made_run(workspace, None), made_run(workspace, None)
    page.goto(url)
    page.locator(".veil").wait_for(state="hidden", timeout=60_000)
    tab(page, "Runs")
    wait_text(page, "#runs-table", re.escape(gone), timeout=60)
    page.locator("#runs-run input").click()
    page.get_by_role("option", name=re.compile(re.escape(gone) + "$")).click()
    page.locator("#delete-run").click()
    wait_text(page, "#delete-note", "for good", timeout=30)
    confirm = page.locator("#delete-run-confirm")
    confirm.wait_for(state="visible", timeout=30_000)
    shot(page, "delete-run-confirm")
    confirm.click()
    wait_text(page, "#delete-note", f"Deleted run {re.escape(gone)}", timeout=30)
    confirm.wait_for(state="hidden", timeout=30_000)
    table = page.locator("#runs-table").inner_text()
    assert not lists(table, gone) and lists(table, kept), table
    assert not (workspace / "runs" / gone).exists() and (workspace / "runs" / kept).is_dir()
    tab(page, "Evaluate")
    page.locator("#evaluate-run input").click()
    page.get_by_role("option").first.wait_for(timeout=30_000)
    assert len(page.get_by_role("option").all_inner_texts()) == 1  # the run that stays

"""The Data tab's duplicates in the browser: a table whose texts repeat (case and spacing aside) shows the pairs
side by side with the warning that validation examples copy training ones, and "Leave out validation copies of
training examples" leaves them out."""
import pytest

from browser_helpers import shot, tab, wait_text

pytestmark = pytest.mark.browser


def test_the_data_tab_shows_copied_pairs_and_leaves_them_out_when_asked(page, url, tmp_path):
    table = tmp_path / "tickets.csv"
    rows = [f"message number {i} about {'ab'[i % 2]},{'ab'[i % 2]}" for i in range(30)]
    rows += [f"  MESSAGE number {i} about {'ab'[i % 2]} ,{'ab'[i % 2]}" for i in range(10)]  # copies of rows 1-10
    table.write_text("text,label\n" + "\n".join(rows))
    page.goto(url)
    tab(page, "Data")
    page.locator("#data-upload input[type=file]").set_input_files(str(table))
    wait_text(page, "#duplicates-note", "10 exact copies")
    wait_text(page, "#duplicates-note", "validation examples have a copy in training")
    assert "message number" in page.locator("#duplicates-table").inner_text().lower()
    shot(page, "data-duplicates")
    page.locator("#drop-duplicates").get_by_text("Leave out validation copies of training examples").click()
    wait_text(page, "#duplicates-note", "copies are left out of this data")
    assert "have a copy in training" not in page.locator("#duplicates-note").inner_text()

"""Ready for a live demo: a reload mid-run shows the same run live; two sessions each see their own run; mistakes
get words (a non-image in the Playground and class by class, numbers out of range, a table without the columns
it needs); feature extraction shows progress before it ends; the page speaks German (and three more languages),
with a screenshot of every tab in every language; Start over clears the wizard."""
import re
import time

import pytest

from browser_helpers import SHOTS, choose_example, latest_run_id, set_epochs, tab, wait_text
from studio.ui import i18n

pytestmark = pytest.mark.browser
TABS = ["Model", "Data", "Strategy", "Train", "Evaluate", "Playground", "Runs"]


def finish(page):
    tab(page, "Train")
    page.locator("#start").click()
    wait_text(page, "#progress", "Finished")
    return latest_run_id(page)


@pytest.mark.slow  # about 40 s: a long run watched across a reload
def test_a_reload_mid_run_shows_the_same_run_live(page, url):
    page.goto(url)
    choose_example(page, "shapes")
    set_epochs(page, 1000, patience=0)
    tab(page, "Train")
    page.locator("#start").click()
    wait_text(page, "#progress", "Step", timeout=120)
    run_id = latest_run_id(page)
    page.reload()
    wait_text(page, "#train-run", re.escape(run_id), timeout=30)  # opens on the Train tab, on its run
    wait_text(page, "#progress", "Step", timeout=30)
    steps = lambda: int(re.search(r"Step (\d+)", page.locator("#progress").inner_text()).group(1))  # noqa: E731
    before = steps()
    deadline = time.time() + 30
    while steps() == before and time.time() < deadline:
        page.wait_for_timeout(300)
    assert steps() > before  # live, not a picture of the moment of the reload
    assert "shapes" in page.locator("#summary").inner_text()  # the wizard's choices came back too
    page.locator("#stop").click()
    wait_text(page, "#progress", "Stopped", timeout=60)


@pytest.mark.slow  # about 40 s: two runs one after the other (wizard state per session stays in the default run)
def test_two_sessions_each_see_their_own_run(page, browser, url):
    other = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    page.goto(url)
    other.goto(url)
    choose_example(page, "shapes")
    choose_example(other, "helpdesk")
    mine, theirs = finish(page), finish(other)
    assert mine != theirs
    for session, data in ((page, "shapes"), (other, "helpdesk")):
        for name, picker in (("Evaluate", "#evaluate-run"), ("Playground", "#playground-run")):
            tab(session, name)
            session.wait_for_function(f"document.querySelector('{picker} input').value.startsWith('{data} ')",
                                      timeout=30000)  # its own run, never the other session's
    page.wait_for_function("document.querySelectorAll('#playground-examples img').length > 0")
    assert other.locator("#playground-examples img").count() == 0  # a text model: no image examples
    other.locator("#playground-text-examples label").first.click()
    wait_text(other, "#prediction", "password_reset|billing|shipping|technical_issue|cancel", timeout=60)
    other.context.close()


def test_a_file_that_is_not_an_image_gets_words_in_the_playground_and_class_by_class(page, url, tmp_path):
    fake = tmp_path / "holiday.png"
    fake.write_text("this is a text file with a picture's name")
    page.goto(url)
    choose_example(page, "shapes")
    finish(page)
    tab(page, "Playground")
    page.locator("#playground-upload input[type=file]").set_input_files(str(fake))
    wait_text(page, "#prediction", "not an image we can read", timeout=60)
    tab(page, "Data")
    page.get_by_role("button", name=re.compile("Or add files class by class")).click()
    page.locator("#class-name input, #class-name textarea").first.fill("cats")
    page.locator("#class-images input[type=file]").set_input_files(str(fake))
    page.locator("#add-class").click()
    page.get_by_text("Not added: holiday.png (this is not an image we can read).").wait_for(timeout=30000)
    assert "Error" not in page.locator("#data-status").inner_text()


def test_numbers_out_of_range_are_corrected_in_the_box_with_a_note(page, url):
    page.goto(url)
    choose_example(page, "shapes")
    tab(page, "Strategy")
    page.get_by_text("Advanced settings").click()
    for typed, shown, note in (("1000000", "1000", "became 1000"), ("2.5", "2", "2.5 became 2"),
                               ("", "30", "was empty")):
        page.locator("#epochs input").fill(typed)
        page.locator("#epochs input").press("Tab")
        wait_text(page, "#strategy-note", re.escape(note), timeout=20)
        page.wait_for_function(f"document.querySelector('#epochs input').value === '{shown}'", timeout=20000)
    page.locator("#show-recipe").click()
    wait_text(page, "#recipe-yaml", "epochs: 30", timeout=20)


def test_a_table_without_the_needed_columns_names_them_and_clearing_it_clears_everything(page, url, tmp_path):
    table = tmp_path / "people.csv"
    table.write_text("name,age,city\nAnna,31,Berlin\nBen,25,Paris\nCleo,40,Rome\nDan,22,Oslo\n")
    page.goto(url)
    tab(page, "Data")
    page.locator("#data-upload input[type=file]").set_input_files(str(table))
    wait_text(page, "#data-status", "No column of this table looks like", timeout=60)
    status = page.locator("#data-status").inner_text()
    assert "name, age, city" in status and "Berlin" not in status
    tab(page, "Train")
    page.locator("#start").click()
    wait_text(page, "#train-message", "No column of this table looks like", timeout=30)  # Start repeats why
    tab(page, "Data")
    page.locator("#data-upload button[aria-label='Clear']").first.click()
    wait_text(page, "#data-status", "No data yet", timeout=30)
    assert not page.locator("#item-column").is_visible()


def test_feature_extraction_shows_progress_before_it_ends(page, url, tmp_path):
    """The default path on data the feature cache has never seen: the counter of examples read grows while it
    runs."""
    import zipfile

    from studio.examples import make_shapes
    # enough images for the reading to last several of the page's 1 s refreshes (with 90 it once showed one)
    images = make_shapes(tmp_path / "fresh", per_class=80, size=64, seed=7)
    archive = tmp_path / "fresh.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(images.rglob("*.jpg")):
            zf.write(path, path.relative_to(images))
    page.goto(url)
    tab(page, "Data")
    page.locator("#data-upload input[type=file]").set_input_files(str(archive))
    wait_text(page, "#data-status", "Ready", timeout=60)
    tab(page, "Train")
    page.locator("#start").click()
    seen = set()
    deadline = time.time() + 180
    while time.time() < deadline and "Finished" not in page.locator("#progress").inner_text():
        found = re.search(r"(\d+) / \d+", page.locator("#progress").inner_text())
        if found:
            seen.add(int(found.group(1)))
        page.wait_for_timeout(200)
    assert len(seen) >= 2, seen  # it moved on the page before the run ended


def labels_on(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll(
        'label, [data-testid="block-info"], [data-testid="block-label"], button, .tab-nav button')]
        .filter(e => e.offsetParent !== null).map(e => e.innerText.trim()).filter(t => t)""")


def test_the_page_speaks_german_from_the_browser_with_no_english_left(browser, url):
    context = browser.new_context(locale="de-DE", viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.goto(url)
    wait_text(page, "#tab-model", "Wähl|Was|Modell", timeout=30)
    german = i18n.catalog("de")
    english_only = {text for text, translated in german.items() if translated != text and "{" not in text
                    and len(text) > 3}
    left = []
    for name, heading in (("Model", "### 1. Choose what the model will learn"), ("Data", "### 2. Give it labelled"),
                          ("Strategy", "### 3. Choose how to adapt the model")):
        page.get_by_role("tab", name=german.get(name, name), exact=True).click()
        # the tab is open once its own heading shows, in German: only then are its labels read
        shown = next(v for k, v in german.items() if k.startswith(heading)).split("\n")[0].lstrip("# ")[:20]
        wait_text(page, "#tabs", re.escape(shown), timeout=30)
        labels = labels_on(page)
        assert len(labels) > 10, labels  # the page is there, not an empty one
        left += [text for text in labels if text in english_only]
    assert not left, left
    context.close()


@pytest.mark.slow  # a minute or more: every tab in five languages
def test_screenshots_of_every_tab_in_every_language_and_start_over(page, url):
    page.goto(url)
    choose_example(page, "shapes")
    finish(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for code in i18n.LANGUAGES:
        page.locator("#language input").click()
        page.get_by_role("option", name=i18n.LANGUAGES[code], exact=True).click()
        # the page reloads in the new language: its tabs are named in it once it has
        page.get_by_role("tab", name=i18n.tr("Playground", code), exact=True).wait_for(timeout=30_000)
        for name in TABS:
            page.get_by_role("tab", name=i18n.tr(name, code), exact=True).click()
            page.locator(f"#tab-{name.lower()}").wait_for(state="visible")
            # 35 full-page pictures: one took over 30 s once, late in a long slow run (chromium, not the page)
            page.screenshot(path=str(SHOTS / f"lang-{code}-{TABS.index(name) + 1}-{name.lower()}.png"),
                            full_page=True, timeout=90_000)
    page.locator("#start-over").click()
    wait_text(page, "#summary", i18n.tr("none yet", "zh"), timeout=30)  # cleared, language kept
    assert "shapes" not in page.locator("#summary").inner_text()

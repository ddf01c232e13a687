"""What a new user tripped over in the browser, preparing a demo (the demo's second pass), at 1280 px: tables whose
deciding columns were off screen, the Data tab showing the previous task's data, actions offered that cannot work,
gradio's footer, Enter in the text Playground, the Start button while a run trains, a cramped chat Playground, and a
text key read out by screen readers."""
import csv
import json
import re
import time

import pytest

from browser_helpers import choose_example, shot, tab, wait_text
from helpers import tiny_llama_folder, write_text_csv
from studio.recipe import DataSpec, Recipe, TrainSpec
from studio.run.jobs import JobManager
from studio.workspace import Workspace

pytestmark = pytest.mark.browser
WIDTH = 1280
RIGHTMOST_JS = """sel => { const ths = [...document.querySelectorAll(`${sel} th`)].filter(t => t.offsetParent);
                      return ths.length ? Math.max(...ths.map(t => t.getBoundingClientRect().right)) : -1; }"""


@pytest.fixture(scope="module")
def runs(workspace, tmp_path_factory):
    """A text classifier with long texts, a chat model trained with a system prompt, and an EfficientNet-Lite0
    feature-extraction run, trained in the page's workspace: {"text": "text", ...}, the keys pick() knows."""
    from studio.assets import SHAPES_DIR
    folder = tmp_path_factory.mktemp("second-pass")
    texts = write_text_csv(folder / "topics.csv", per_class=10)
    chat = folder / "chat.csv"
    with open(chat, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["system", "prompt", "response"])
        for i in range(16):
            writer.writerow(["You are the Kettlebird help desk.", f"how do I reset my password {i}",
                             f"Hello! please reset your password {i % 3}"])
    llama = tiny_llama_folder(folder / "tiny-llama")
    manager = JobManager(Workspace(workspace), in_process=True)
    recipes = {"text": Recipe(task="text-classification", model="all-minilm-l6-v2", data=DataSpec(path=texts)),
               "chat": Recipe(task="instruction-tuning", model=llama,
                              data=DataSpec(path=str(chat), max_length=96, prompt_column="prompt",
                                           response_column="response", system_column="system"),
                              train=TrainSpec(epochs=1, batch_size=4)),
               "image": Recipe(model="efficientnet-lite0", data=DataSpec(path=str(SHAPES_DIR)))}
    out = {}
    for name, recipe in recipes.items():
        job = manager.start(recipe)
        assert job.wait(600) and job.status["status"] == "completed", job.status
        out[name] = name
    return out


@pytest.fixture()
def small(page):
    page.set_viewport_size({"width": WIDTH, "height": 900})
    return page


def pick(page, selector: str, which: str) -> None:
    """Chooses a run in a run picker: the one named after its data (a picker names runs as people do)."""
    data = {"text": "topics", "chat": "chat", "image": "shapes"}[which]
    page.locator(f"{selector} input").click()
    page.get_by_role("option").filter(has_text=f"{data} · ").first.click()


def test_every_table_shows_its_deciding_columns_in_a_1280px_window(small, url, runs):
    page = small
    page.goto(url)
    page.get_by_label("Text (messages, reviews, tickets)").check()
    choose_example(page, "helpdesk")
    assert 0 < page.evaluate(RIGHTMOST_JS, "#data-rows") <= WIDTH
    assert page.locator("#data-rows th").first.inner_text().strip().lower() == "label"
    tab(page, "Evaluate")
    pick(page, "#evaluate-run", runs["text"])
    wait_text(page, "#metrics", "validation examples", timeout=60)
    if page.locator("#mistakes-table th").count():
        assert 0 < page.evaluate(RIGHTMOST_JS, "#mistakes-table") <= WIDTH
        assert page.locator("#mistakes-table th").first.inner_text().strip() == "true"
    pick(page, "#evaluate-run", runs["chat"])
    wait_text(page, "#chat-metrics", "perplexity", timeout=60)
    headers = [h.inner_text().strip() for h in page.locator("#chat-samples th").all()]
    assert headers[:3] == ["prompt", "tuned model", "base model"], headers
    assert 0 < page.evaluate(RIGHTMOST_JS, "#chat-samples") <= WIDTH
    shot(page, "second-pass-chat-evaluate-1280")


def test_a_task_switch_leaves_no_data_of_the_previous_task(small, url):
    page = small
    page.goto(url)
    choose_example(page, "shapes")
    page.locator("#data-gallery").wait_for(state="visible")
    tab(page, "Model")
    page.get_by_label("Text (messages, reviews, tickets)").check()
    wait_text(page, "#summary", "not chosen yet", timeout=30)
    tab(page, "Data")
    wait_text(page, "#data-status", "No data yet", timeout=30)
    assert not page.locator("#data-gallery").is_visible()


def test_runs_offer_only_what_they_can_do_and_say_why(small, url, runs):
    page = small
    page.goto(url)
    tab(page, "Runs")
    pick(page, "#runs-run", runs["chat"])
    page.locator("#compare-full").wait_for(state="visible")
    assert not page.locator("#compare-scratch").is_visible()  # a chat model has no scratch baseline
    pick(page, "#runs-run", runs["image"])
    page.locator("#compare-scratch").wait_for(state="visible")
    page.get_by_text("Export the model").click()
    wait_text(page, "#export-refused", "not a Hugging Face model", timeout=30)  # no transformers export, and why
    assert "Transformers" not in page.locator("#export-format").inner_text()
    tab(page, "Evaluate")
    pick(page, "#evaluate-run", runs["chat"])
    wait_text(page, "#chat-metrics", "perplexity", timeout=60)
    assert "scratch" not in page.locator("#evaluate-compare-hint").inner_text().lower()


def test_no_gradio_footer_nor_api_page(small, url):
    page = small
    page.goto(url)
    tab(page, "Model")
    assert page.locator("footer a").count() == 0
    assert not page.locator("text=Use via API").count() and not page.locator("text=Built with Gradio").count()
    info = json.loads(page.evaluate("fetch('/gradio_api/info').then(r => r.text())"))
    assert not info.get("named_endpoints") and not info.get("unnamed_endpoints"), info


def test_enter_predicts_and_a_changed_text_drops_its_old_answer(small, url, runs):
    page = small
    page.goto(url)
    tab(page, "Playground")
    pick(page, "#playground-run", runs["text"])
    box = page.locator("#playground-text textarea")
    box.fill("the match and the goal of the team")
    box.press("Enter")
    wait_text(page, "#prediction", "sports|food|tech", timeout=60)
    box.press("End")
    box.type(" and more")
    wait_text(page, "#prediction", "Press Enter", timeout=30)  # the old answer is gone with the old text


def test_start_is_greyed_while_a_run_trains(small, url):
    page = small
    page.goto(url)
    choose_example(page, "shapes")
    tab(page, "Train")
    page.locator("#start").click()
    page.wait_for_function("document.querySelector('#start').disabled === true", timeout=30_000)
    wait_text(page, "#progress", "Finished", timeout=180)
    page.wait_for_function("document.querySelector('#start').disabled === false", timeout=30_000)


def test_the_chat_playground_takes_the_width_and_shows_the_training_system_prompt(small, url, runs):
    page = small
    page.goto(url)
    tab(page, "Playground")
    pick(page, "#playground-run", runs["chat"])
    page.locator("#chat-tuned").wait_for(state="visible")
    tuned, base = page.locator("#chat-tuned").bounding_box(), page.locator("#chat-base").bounding_box()
    assert base["x"] + base["width"] - tuned["x"] > 0.8 * WIDTH  # side by side across the page
    page.wait_for_function("document.querySelector('#chat-system textarea').value.includes('Kettlebird')")
    shot(page, "second-pass-chat-playground-1280")


def test_no_text_key_reaches_the_page(small, url):
    page = small
    page.goto(url)
    choose_example(page, "shapes")
    tab(page, "Strategy")
    wait_text(page, "#recommendation", "Recommended", timeout=60)
    text = page.evaluate("document.body.innerText")
    assert not re.search(r"\b(common|errors|upload_text)\.[a-z_]+\b", text), re.findall(r"\bcommon\.[a-z_]+", text)


@pytest.mark.slow  # about 50 s: the first load converts the GGUF model
def test_the_chat_example_loads_in_seconds_once_its_model_is_converted(small, url):
    """The first load converts the offline chat model from GGUF (progress words shown); a later one, in a new page,
    reads the converted folder: under 3 s from the click to 'Ready'."""
    page = small
    page.goto(url)
    page.get_by_label("Teach a chat model (instruction tuning)").check()
    choose_example(page, "helpdesk-chat")
    fresh = page.context.browser.new_context(viewport={"width": WIDTH, "height": 900}).new_page()  # a new session
    fresh.goto(url)
    fresh.get_by_label("Teach a chat model (instruction tuning)").check()
    tab(fresh, "Data")
    wait_text(fresh, "#data-status", "No data yet", timeout=30)
    started = time.monotonic()
    fresh.locator("#example-helpdesk-chat").click()
    wait_text(fresh, "#data-status", "Ready", timeout=60)
    took = time.monotonic() - started
    fresh.context.close()
    print(f"\nthe chat example's second load: {took:.2f} s")
    assert took < 3.0, took


PAGE_TEXTS_JS = """() => {
    const shown = el => el.offsetParent !== null;
    const charts = [...document.querySelectorAll('.js-plotly-plot')].filter(shown).flatMap(p => [
        p.layout?.title?.text, p.layout?.xaxis?.title?.text, p.layout?.yaxis?.title?.text,
        ...(p.layout?.annotations || []).map(a => a.text), ...(p.data || []).map(t => t.name)]);
    const headers = [...document.querySelectorAll('th')].filter(shown).map(th => th.innerText);
    const boxes = [...document.querySelectorAll('textarea')].filter(shown).map(t => t.value);
    return {charts: charts.filter(Boolean).map(String), headers: headers.map(h => h.trim()).filter(Boolean),
            body: [document.body.innerText, ...boxes].join(' | ')};
}"""


def english_left(page, lang: str) -> list[str]:
    """Catalog texts shown in English on a page in another language (where the language says them otherwise):
    chart titles, axes and legends, table headers, and every sentence of the page's text and boxes, those filled
    in from a template (a log line, a data warning) included."""
    from studio.ui import i18n
    english, other = i18n.catalog("en"), i18n.catalog(lang)
    translated = {key for key in english if other.get(key, key) != key}
    seen = page.evaluate(PAGE_TEXTS_JS)
    left = [t for t in seen["charts"] + seen["headers"] if t in translated]
    for key in translated:
        literal = re.split(r"\{[^}]*\}", key)
        if sum(map(len, literal)) < 24:  # a short text may be a word of the data too
            continue
        if re.search(".+?".join(map(re.escape, literal)), seen["body"], re.S):
            left.append(key)
    return left


def test_the_german_page_says_everything_in_german(small, url, runs):
    """Every tab in German after one pick of the language: the data report and its chart, the recommendation, the
    training log, the Evaluate tab's figures, chart layouts and table headers; no catalog text left in English
    anywhere. (gradio's own words, the upload box's, follow the browser's language.)"""
    from studio.ui.i18n import tr
    page = small
    page.goto(url)
    page.locator("#language input").click()
    page.get_by_role("option", name="Deutsch").click()
    page.wait_for_function("document.querySelector('#summary')?.innerText.includes('Aufgabe')", timeout=60_000)
    tab(page, tr("Data", "de"))
    page.locator("#example-shapes").click()
    wait_text(page, "#data-status", "Bereit", timeout=60)
    page.locator("#counts-plot .js-plotly-plot").wait_for(state="visible")
    assert not english_left(page, "de"), english_left(page, "de")
    tab(page, tr("Strategy", "de"))
    wait_text(page, "#recommendation", tr("Recommended: {strategy}.", "de").split("{")[0].strip(), timeout=60)
    assert not english_left(page, "de"), english_left(page, "de")
    shot(page, "second-pass-de-strategy")
    tab(page, tr("Train", "de"))
    page.locator("#start").click()
    wait_text(page, "#progress", tr("Finished", "de"), timeout=180)
    assert not english_left(page, "de"), english_left(page, "de")
    shot(page, "second-pass-de-train")
    tab(page, tr("Evaluate", "de"))
    pick(page, "#evaluate-run", "image")
    page.locator("#confusion-plot .js-plotly-plot").wait_for(state="visible", timeout=60_000)
    assert not english_left(page, "de"), english_left(page, "de")
    shot(page, "second-pass-de-evaluate")
    pick(page, "#evaluate-run", "chat")
    wait_text(page, "#chat-metrics", "Perplexit", timeout=60)
    assert not english_left(page, "de"), english_left(page, "de")
    tab(page, tr("Runs", "de"))
    pick(page, "#runs-run", "text")
    page.locator("#runs-loss-plot .js-plotly-plot").wait_for(state="visible")
    assert not english_left(page, "de"), english_left(page, "de")
    shot(page, "second-pass-de-runs")


@pytest.mark.slow  # 56 full-page screenshots: about three minutes
@pytest.mark.parametrize("lang", ["en", "de"])
def test_screenshots_of_every_tab_for_each_task(small, url, runs, lang):
    """test-artifacts/screenshots/tabs-<lang>-<task>-<tab>.png, each task with its bundled example chosen and, on
    Evaluate and Playground, its run from the fixture (audio has none here: its empty state is shot)."""
    from studio import tasks
    from studio.ui.app import TAB_NAMES
    from studio.ui.i18n import LANGUAGES, tr
    page = small
    page.goto(url)
    if lang != "en":  # picking a language reloads the page in it
        with page.expect_navigation():
            page.locator("#language input").click()
            page.get_by_role("option", name=LANGUAGES[lang]).click()
    page.wait_for_function(f"document.querySelector('#summary')?.innerText.includes('{tr('Task', lang)}')",
                           timeout=60_000)
    picked = {"image-classification": "image", "text-classification": "text", "instruction-tuning": "chat"}
    for name in ("image-classification", "text-classification", "audio-classification", "instruction-tuning"):
        task = tasks.get(name)
        tab(page, tr("Model", lang))
        page.get_by_label(tr(task.title, lang)).check()
        tab(page, tr("Data", lang))
        page.locator(f"#example-{task.examples[0].id}").click()
        wait_text(page, "#data-status", {"en": "Ready", "de": "Bereit"}[lang], timeout=90)
        for key, words in TAB_NAMES.items():
            tab(page, tr(words, lang))
            if key in ("evaluate", "playground") and name in picked:
                pick(page, f"#{key}-run", picked[name])
            page.wait_for_timeout(1500)  # charts draw in an animation: the picture, not an assertion, waits on it
            shot(page, f"tabs-{lang}-{name}-{key}")

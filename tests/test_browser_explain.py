"""The Playground's Explain: beside a prediction, a text's words shaded by weight (#explain-tokens) and an image's
heatmap over it with an opacity slider (#explain-heatmap, #explain-opacity), with how long it took (#explain-note);
a changed input drops its old explanation."""
import pytest

from browser_helpers import ask, playground_run, shot, wait_text
from helpers import write_text_csv
from studio.recipe import DataSpec, Recipe
from studio.run.jobs import JobManager
from studio.workspace import Workspace

# Slow (about 2 min): two runs trained for the page (MiniLM and EfficientNet-Lite0 features) and a studio started;
# tests/test_explain.py checks the explanations themselves in the default run.
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def runs(workspace, tmp_path_factory):
    """A MiniLM text classifier (topics) and an EfficientNet-Lite0 one (shapes), trained in the page's workspace."""
    from studio.assets import SHAPES_DIR
    texts = write_text_csv(tmp_path_factory.mktemp("explain-texts") / "topics.csv", per_class=10)
    manager = JobManager(Workspace(workspace), in_process=True)
    for recipe in (Recipe(task="text-classification", model="all-minilm-l6-v2", data=DataSpec(path=texts)),
                   Recipe(model="efficientnet-lite0", data=DataSpec(path=str(SHAPES_DIR)))):
        job = manager.start(recipe)
        assert job.wait(600) and job.status["status"] == "completed", job.status


def test_a_text_is_explained_word_by_word_and_a_new_text_drops_it(page, url, runs):
    playground_run(page, url, "topics")
    ask(page, "the match and the goal of the team", "sports")
    page.locator("#explain").click()
    wait_text(page, "#explain-note", r"Why sports .* explained in [\d.]+ s", timeout=60)
    tokens = page.locator("#explain-tokens")
    tokens.wait_for(state="visible")
    for word in ("match", "goal", "team"):
        assert word in tokens.inner_text()
    shot(page, "explain-text")
    box = page.locator("#playground-text textarea")
    box.press("End")
    box.type(" today")
    tokens.wait_for(state="hidden", timeout=30_000)


def test_an_image_gets_a_heatmap_with_an_opacity_slider(page, url, runs):
    playground_run(page, url, "shapes")
    page.locator("#playground-examples .thumbnail-item").first.click()
    wait_text(page, "#prediction", "sure", timeout=60)
    page.locator("#explain").click()
    wait_text(page, "#explain-note", r"explained in [\d.]+ s", timeout=60)
    heatmap = page.locator("#explain-heatmap img")
    heatmap.wait_for(state="visible")
    before = heatmap.get_attribute("src")
    slider = page.locator("#explain-opacity input[type=range]")
    box = slider.bounding_box()
    slider.click(position={"x": box["width"] * 0.1, "y": box["height"] / 2})  # a click: the slider's release
    page.wait_for_function("src => document.querySelector('#explain-heatmap img')?.src !== src", arg=before,
                           timeout=30_000)
    shot(page, "explain-image")

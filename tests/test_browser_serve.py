"""The Playground's "Serve this model" in the browser: Start serving shows a base URL, a key and a snippet; the
model answers there (a classifier: /v1/classify with the key shown, the same label as the Playground's; a chat
model: the official openai client with that URL and key); a wrong key is refused; Stop serving stops the server."""
import json
import re
import urllib.error
import urllib.request

import openai
import pytest

from browser_helpers import ask, playground_run, shot, wait_text
from helpers import write_chat_csv, write_text_csv
from studio.recipe import DataSpec, Recipe, TrainSpec
from studio.run.jobs import JobManager
from studio.workspace import Workspace

# Slow (about two minutes): two runs trained for the page, then a model server process started for each.
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def run_ids(workspace, tiny_llama, tmp_path_factory):
    """(a MiniLM text classifier's run, a LoRA chat run on the tiny Llama), in the page's workspace."""
    folder = tmp_path_factory.mktemp("serve-data")
    manager = JobManager(Workspace(workspace), in_process=True)
    jobs = [manager.start(recipe) for recipe in (
        Recipe(task="text-classification", model="all-minilm-l6-v2",
               data=DataSpec(path=write_text_csv(folder / "topics.csv", per_class=8))),
        Recipe(task="instruction-tuning", model=tiny_llama, strategy="lora",
               data=DataSpec(path=write_chat_csv(folder / "questions.csv", 20), max_length=96),
               train=TrainSpec(epochs=3, batch_size=4, learning_rate=1e-2)))]  # enough to answer in words
    for job in jobs:
        assert job.wait(600) and job.status["status"] == "completed", job.status
    return [job.run_id for job in jobs]


def start_serving(page) -> tuple[str, str, str]:
    """Opens the panel and starts the server: (base URL, key, the panel's text)."""
    page.locator("#serve-panel").get_by_text("Serve this model").click()
    page.locator("#serve-start").click()
    wait_text(page, "#serve-info", "Serving at", timeout=240)
    info = page.locator("#serve-info").inner_text()
    return (re.search(r"http://127\.0\.0\.1:\d+/v1", info).group(0), re.search(r"sk-studio-[\w-]+", info).group(0),
            info)


def classify(url: str, key: str, run: str, text: str) -> dict:
    request = urllib.request.Request(f"{url}/classify", data=json.dumps({"model": run, "input": [text]}).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def test_a_served_classifier_answers_with_the_key_shown_and_stops_when_asked(page, url, run_ids):
    run_id = run_ids[0]
    playground_run(page, url, "topics")
    ask(page, "the match and the goal of the team", "sure")
    label = page.locator("#prediction h3").inner_text().strip()
    base, key, info = start_serving(page)
    assert f"{base}/classify" in info and run_id in info  # the snippet is ready to paste
    shot(page, "playground-serve")
    answer = classify(base, key, run_id, "the match and the goal of the team")
    assert answer["data"][0]["label"] == label
    with pytest.raises(urllib.error.HTTPError) as refused:
        classify(base, key + "x", run_id, "anything")
    assert refused.value.code == 401
    page.locator("#serve-stop").click()
    wait_text(page, "#serve-info", "The model server has stopped")
    with pytest.raises(OSError):  # nothing listens there any more
        classify(base, key, run_id, "anything")


def test_a_served_chat_model_answers_the_openai_client(page, url, run_ids):
    run_id = run_ids[1]
    playground_run(page, url, "questions")
    base, key, info = start_serving(page)
    assert "from openai import OpenAI" in info and f"{base}/chat/completions" in info
    api = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=120)
    assert [m.id for m in api.models.list().data] == [run_id]
    reply = api.chat.completions.create(model=run_id, messages=[{"role": "user", "content": "hello"}],
                                        temperature=0, max_tokens=8)
    assert reply.choices[0].message.content and reply.usage.completion_tokens <= 8
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base, api_key="sk-wrong", max_retries=0).models.list()
    page.locator("#serve-stop").click()
    wait_text(page, "#serve-info", "The model server has stopped")

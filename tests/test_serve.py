"""`studio serve-model` as a program uses it: the real server in its own process on 127.0.0.1, called with the
official `openai` client — the models list, a temperature-0 completion equal to `studio predict`'s greedy answer,
streamed chunks joining into the same text, four requests at once (batched, each still its own greedy answer),
errors in OpenAI's shape (wrong key, unknown model, the bad inputs), and /v1/classify agreeing with
`studio predict` — on a tiny LoRA chat run and a tiny text classifier (fast), and on the SmolLM2 chat run
(integration: greedy equality, 503 while it loads, 429 when too many wait)."""
import base64
import io
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from PIL import Image

from helpers import WORDS, free_port, make_recipe, start_server, wait_for, write_chat_csv
from studio import cli
from studio.recipe import DataSpec, Recipe, TrainSpec
from studio.run.jobs import JobManager
from studio.workspace import Workspace

STUDIO = str(Path(sys.executable).with_name("studio"))
KEY = "sk-test-serve-1234"
MESSAGE = "how do I reset my password"


def serve(workspace, runs: list[str], tmp_path, *options) -> tuple[object, str]:
    """The server for runs, with KEY from a file: (its process, its /v1 URL)."""
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n")
    port = free_port()
    process = start_server([STUDIO, "--workspace", str(workspace), "serve-model", *runs, "--port", str(port),
                            "--api-key-file", str(key_file), *options], port, tmp_path / f"serve-{port}.log")
    return process, f"http://127.0.0.1:{port}/v1"


def client(base_url: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)


def ready(api: openai.OpenAI) -> bool:
    return all(m.status == "ready" for m in api.models.list().data)


def predicted(capsys, workspace, run: str, *inputs: str, options=()) -> list[dict]:
    """`studio predict`'s answers, one per input."""
    capsys.readouterr()
    assert cli.main(["--workspace", str(workspace), "predict", run, *inputs, *options]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]


def greedy(api: openai.OpenAI, model: str, message: str, tokens: int) -> str:
    reply = api.chat.completions.create(model=model, messages=[{"role": "user", "content": message}],
                                        temperature=0, max_tokens=tokens)
    assert reply.usage.prompt_tokens > 0 and 0 < reply.usage.completion_tokens <= tokens
    return reply.choices[0].message.content


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("serve-ws")


@pytest.fixture(scope="module")
def runs(workspace, tiny_llama, tiny_bert, text_csv, tmp_path_factory):
    """(a LoRA chat run on the tiny Llama, trained enough to answer in words; a text classifier's run)."""
    data = write_chat_csv(tmp_path_factory.mktemp("serve-data") / "qa.csv", 20)
    manager = JobManager(Workspace(workspace), in_process=True)
    chat = manager.start(Recipe(task="instruction-tuning", model=tiny_llama, data=DataSpec(path=data, max_length=96),
                                strategy="lora", train=TrainSpec(epochs=3, batch_size=4, learning_rate=1e-2)))
    classifier = manager.start(make_recipe("text", tiny_bert, text_csv, "full", epochs=1))
    for job in (chat, classifier):
        assert job.wait(300) and job.status["status"] == "completed", job.status.get("error")
    return chat.run_id, classifier.run_id


@pytest.fixture(scope="module")
def server(workspace, runs, tmp_path_factory):
    process, url = serve(workspace, list(runs), tmp_path_factory.mktemp("serve-log"), "--max-body-mb", "8")
    wait_for(lambda: ready(client(url)), 120, "the models to load")
    yield url
    process.terminate()
    process.wait(30)


def test_models_are_listed_as_openai_model_objects(server, runs):
    models = client(server).models.list().data
    assert sorted(m.id for m in models) == sorted(runs)
    assert all(m.object == "model" and m.owned_by == "studio" and m.name for m in models)


def test_greedy_completion_equals_predict_and_the_stream_joins_into_it(server, runs, workspace, capsys):
    api = client(server)
    answer = greedy(api, runs[0], MESSAGE, 16)
    assert answer and answer == predicted(capsys, workspace, runs[0], MESSAGE, options=["--max-new-tokens", "16"])[0][
        "answer"]
    chunks = list(api.chat.completions.create(model=runs[0], messages=[{"role": "user", "content": MESSAGE}],
                                              temperature=0, max_tokens=16, stream=True,
                                              stream_options={"include_usage": True}))
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2  # streamed, not all at once
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer
    assert chunks[-1].usage.completion_tokens > 0 and chunks[-2].choices[0].finish_reason in ("stop", "length")
    stop = answer[len(answer) // 2:]  # the answer's second half: the same greedy text is cut where it first appears
    stopped = api.chat.completions.create(model=runs[0], messages=[{"role": "user", "content": MESSAGE}],
                                          temperature=0, max_tokens=16, stop=[stop])
    assert stopped.choices[0].message.content == answer[:answer.find(stop)].rstrip()
    assert stopped.choices[0].finish_reason == "stop"


def test_a_stop_string_after_a_space_leaves_no_space_in_the_stream():
    """The streamed pieces hold back a trailing space: a stop string may follow it, and the final text has none
    (it was sent before the stop string was seen: 'Hello! ' against the whole answer's 'Hello!')."""
    from studio.serve.generation import Completion, _Row
    pieces = ["Hello", "!", " pl", "ease", " more"]

    class Pieces:  # a tokenizer's decode over these pieces: token id i is pieces[i]
        @staticmethod
        def decode(ids, skip_special_tokens=True):
            return "".join(pieces[i] for i in ids)
    sent = []
    row = _Row(Completion([0], 10, 0.0, 1.0, ["please"], None, sent.append), Pieces(), stop_ids=[99])
    assert [row.add(token) for token in range(4)] == [False, False, False, True]
    assert "".join(e["text"] for e in sent if "text" in e) == "Hello!" and row.finish == "stop"


def test_four_requests_at_once_each_get_their_own_answer(server, runs):
    api = client(server)
    asks = [(MESSAGE, 16), ("hello", 5), ("the printer is out of toner", 9), ("thank you", 3)]
    alone = [greedy(api, runs[0], message, tokens) for message, tokens in asks]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda ask: greedy(api, runs[0], *ask), asks))
    assert together == alone


def test_wrong_key_unknown_model_and_bad_requests_are_refused_in_words(server, runs):
    user = [{"role": "user", "content": MESSAGE}]
    with pytest.raises(openai.AuthenticationError):
        client(server, "sk-wrong").models.list()
    api = client(server)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        api.chat.completions.create(model="no-such-run", messages=user)
    with pytest.raises(openai.BadRequestError, match=r"maximum context length is 512 tokens.* hold \d+ tokens"):
        api.chat.completions.create(model=runs[0], messages=[{"role": "user", "content": "hello " * 600}])
    for tokens in (0, 10**6):
        with pytest.raises(openai.BadRequestError, match="max_tokens") as refused:
            api.chat.completions.create(model=runs[0], messages=user, max_tokens=tokens)
        assert refused.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError, match="no user turn"):
        api.chat.completions.create(model=runs[0], messages=[{"role": "system", "content": "Be brief."}])
    with pytest.raises(openai.BadRequestError, match="is a classifier"):
        api.chat.completions.create(model=runs[1], messages=user)
    with pytest.raises(openai.BadRequestError, match="larger than this server takes"):
        api.chat.completions.create(model=runs[0], messages=[{"role": "user", "content": "x" * 50_000_000}])
    assert greedy(api, runs[0], MESSAGE, 4)  # still serving


def test_classify_agrees_with_predict_and_refuses_an_image_for_a_text_model(server, runs, workspace, capsys):
    texts = [f"{words[i % 10]} {words[(3 * i) % 10]} and more" for i in range(7) for words in WORDS.values()][:20]
    api = client(server)
    got = api.post("/classify", body={"model": runs[1], "input": texts, "top_k": 2}, cast_to=object)
    expected = predicted(capsys, workspace, runs[1], *texts, options=["--top-k", "2"])
    assert got["model"] == runs[1] and [d["index"] for d in got["data"]] == list(range(20))
    for answer, reference in zip(got["data"], expected):
        assert answer["label"] == reference["label"]
        assert [t["label"] for t in answer["top_k"]] == [t["label"] for t in reference["top_k"]]
        assert answer["score"] == pytest.approx(reference["score"], abs=1e-5)
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(png, format="PNG")
    image = {"filename": "red.png", "data": base64.b64encode(png.getvalue()).decode()}
    with pytest.raises(openai.BadRequestError, match=r"is a file \(red.png\), and this run classifies texts"):
        api.post("/classify", body={"model": runs[1], "input": [image]}, cast_to=object)
    with pytest.raises(openai.BadRequestError, match="is a chat model"):
        api.post("/classify", body={"model": runs[0], "input": texts}, cast_to=object)


def test_the_commands_refuse_in_words(runs, workspace, capsys, monkeypatch):
    monkeypatch.delenv("STUDIO_API_KEY", raising=False)
    for command, words in ((["serve-model", "no-such-run"], "No run called 'no-such-run'"),
                           (["serve-model", runs[0], "--host", "0.0.0.0"], "give it a key"),
                           (["predict", runs[1], "some text", "--max-new-tokens", "5"], "for chat runs")):
        assert cli.main(["--workspace", str(workspace), *command]) == 2
        assert words in capsys.readouterr().err


@pytest.mark.integration
def test_smollm2_chat_run_answers_as_predict_does_and_says_when_it_is_busy(chat_run, tmp_path, capsys):
    """The real SmolLM2 run: 503 with Retry-After while it loads, the greedy answer `studio predict` gives, and
    429 when more than --max-queue (1) requests wait behind the one being answered."""
    workspace, run_dir, rows = chat_run
    process, url = serve(workspace, [run_dir.name], tmp_path, "--max-queue", "1")
    try:
        api = client(url)
        user = [{"role": "user", "content": rows[0][0]}]
        assert api.models.list().data[0].status == "loading"  # the model loads after the server listens
        with pytest.raises(openai.InternalServerError) as loading:
            api.chat.completions.create(model=run_dir.name, messages=user)
        assert loading.value.status_code == 503 and loading.value.response.headers["retry-after"]
        wait_for(lambda: ready(api), 180, "SmolLM2 to load")
        answer = greedy(api, run_dir.name, rows[0][0], 16)
        assert answer == predicted(capsys, workspace, run_dir.name, rows[0][0],
                                   options=["--max-new-tokens", "16"])[0]["answer"]

        def sampled(seed: int):  # seeded requests run one at a time: the first answers, one waits, one is refused
            try:
                return api.chat.completions.create(model=run_dir.name, messages=user, seed=seed, max_tokens=24,
                                                   temperature=1.0).choices[0].message.content
            except openai.RateLimitError as refused:
                return refused
        with ThreadPoolExecutor(3) as pool:
            outcomes = list(pool.map(sampled, range(3)))
        assert sum(isinstance(o, openai.RateLimitError) for o in outcomes) >= 1
        assert sum(isinstance(o, str) for o in outcomes) >= 1
    finally:
        process.terminate()
        process.wait(30)


def test_a_server_started_from_the_ui_ends_with_the_studio_however_it_ends(runs, workspace, tmp_path):
    """The Playground's servers run in sessions of their own; a studio killed outright (no exit handlers) must not
    leave them behind: each watches the studio's process and ends with it."""
    import os
    import signal
    import subprocess
    script = ("import sys, time\nfrom pathlib import Path\nfrom studio.run.model_server import ModelServers\n"
              "from studio.workspace import Workspace\nws = Workspace(sys.argv[1])\n"
              "served = ModelServers(ws).start(ws.find_run(sys.argv[2]))\n"
              "print(served.process.pid, flush=True)\ntime.sleep(600)\n")
    studio = subprocess.Popen([sys.executable, "-c", script, str(workspace), runs[1]], stdout=subprocess.PIPE,
                              text=True)
    server = int(studio.stdout.readline())
    os.kill(studio.pid, signal.SIGKILL)
    studio.wait(30)

    def gone() -> bool:
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            return True
        return open(f"/proc/{server}/stat").read().split()[2] == "Z"  # ended, not yet reaped
    wait_for(gone, 60, "the model server to end with its studio")

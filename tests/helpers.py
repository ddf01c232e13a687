"""Helpers the tests share: tiny generated text data and recipes built in code."""
from __future__ import annotations

import csv
import json
import random
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from studio.recipe import DataSpec, Recipe, TrainSpec

WORDS = {
    "sports": "goal match team player score league coach stadium win ball".split(),
    "food": "pizza bread cheese soup salad taste recipe cook dinner spicy".split(),
    "tech": "computer software laptop screen code battery phone app update server".split(),
}


def write_text_csv(path, per_class: int = 12, seed: int = 0) -> str:
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for _ in range(per_class):
            for label, words in WORDS.items():
                writer.writerow([" ".join(rng.choices(words, k=6)), label])
    return str(path)


def make_recipe(task: str, model: str, data: str, strategy: str = "full", options: dict | None = None,
                **train) -> Recipe:
    kind = "text-classification" if task == "text" else "image-classification"
    return Recipe(task=kind, model=model, data=DataSpec(path=data), strategy=strategy,
                  strategy_options=options or {}, train=TrainSpec(**{"epochs": 1, "batch_size": 8, **train}))


def finished_run(manager, recipe, callbacks=()) -> tuple[Path, dict]:
    """Runs a recipe to its end: (run folder, eval.json)."""
    job = manager.start(recipe, callbacks)
    assert job.wait(300), "run did not finish in time"
    assert job.status["status"] == "completed", job.status.get("error")
    return job.run_dir, json.loads((job.run_dir / "eval.json").read_text())


def run_counting_loads(workspace, recipe):
    """Runs a recipe in-process to its end while counting AutoModelForCausalLM.from_pretrained calls (a base or
    reference model must be the same weights with the adapter off, never a second copy): (job, the paths loaded)."""
    from transformers import AutoModelForCausalLM

    from studio.run.jobs import JobManager
    from studio.workspace import Workspace
    loads = []
    original = AutoModelForCausalLM.from_pretrained.__func__

    def counting(cls, *args, **kwargs):
        loads.append(args[0])
        return original(cls, *args, **kwargs)
    AutoModelForCausalLM.from_pretrained = classmethod(counting)
    try:
        job = JobManager(Workspace(workspace), in_process=True).start(recipe)
        assert job.wait(300)
    finally:
        AutoModelForCausalLM.from_pretrained = classmethod(original)
    assert job.status["status"] == "completed", job.status.get("error")
    return job, loads


def login(http, name: str, password: str):
    """Logs an httpx client in through the studio's login form (gradio's POST /login): its cookie then goes with
    every request of that client. The response (200 in, 400 wrong, 429 locked out)."""
    return http.post("/login", data={"username": name, "password": password})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(command: list[str], port: int, log_path: Path, **popen) -> subprocess.Popen:
    """Starts a studio server process and waits until http://127.0.0.1:port answers; its output goes to log_path.
    RuntimeError with the log's end if it exits or takes over three minutes."""
    with open(log_path, "w") as log:  # the child keeps its own copy of the file
        process = subprocess.Popen(command, stdout=log, stderr=log, **popen)
    process.log_path = Path(log_path)
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=2)
            return process
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                raise RuntimeError(f"the studio did not start: {Path(log_path).read_text()[-3000:]}") from None
            time.sleep(0.5)


TRACEBACK = "Traceback (most recent call last):\n"
# A traceback whose first frame is gradio's (its queue running a page handler) or uvicorn's / starlette's (a route):
# what a handler let out. The studio's own log.exception tracebacks start in its code: a handled error, said to the
# user in words. gradio.exceptions.Error is the studio's words, or gradio refusing a value the page never offers.
SERVING_FRAME = re.compile(r'  File "[^"]*/(gradio|uvicorn|starlette)/')


def handler_errors(log_text: str) -> list[str]:
    """The exceptions page handlers (or routes) let out, by the server's log: each one's line."""
    found = []
    for block in log_text.split(TRACEBACK)[1:]:
        lines = block.splitlines()
        raised = next((line for line in lines if line and not line.startswith(" ")), "")
        if lines and SERVING_FRAME.match(lines[0]) and not raised.startswith("gradio.exceptions.Error"):
            found.append(raised)
    return found


def stop_server(process: subprocess.Popen) -> None:
    """Stops a server start_server started, then fails if a page handler raised while it served: a handler that
    returns a component it does not list, or the wrong number of values, shows only "Error" on the page."""
    if process.poll() is None:
        process.terminate()
        process.wait(30)
    raised = handler_errors(process.log_path.read_text(errors="replace"))
    assert not raised, f"page handlers raised (see {process.log_path}): {raised[:5]}"


def build_backbone(model: str, task: str, pretrained: bool, trust_remote_code: bool = False, max_length: int = 128):
    """(backbone, ModelInfo) through the task, as a run builds them."""
    from studio import tasks
    backbone, info, _ = tasks.get(task).backbone(model, pretrained, trust_remote_code, max_length)
    return backbone, info


SOUNDS = {"low": 220.0, "high": 1760.0, "noise": None}  # tones, and white noise


def sound(kind: str, seconds: float, rate: int, seed: int = 0):
    """A synthetic clip of one SOUNDS kind: float32 mono at `rate`, a little louder or quieter per seed."""
    import numpy as np
    rng = np.random.default_rng(seed)
    time_s = np.arange(int(seconds * rate)) / rate
    frequency = SOUNDS[kind]
    wave = rng.standard_normal(len(time_s)) * 0.2 if frequency is None else \
        0.4 * np.sin(2 * np.pi * frequency * (1 + 0.03 * rng.standard_normal()) * time_s)
    return (wave * rng.uniform(0.5, 1.0)).astype(np.float32)


def write_sound_folders(root, per_class: int = 6) -> str:
    """root/<kind>/<n>.wav|.flac|.ogg: synthetic clips at several rates and lengths, a class per SOUNDS kind."""
    import soundfile
    formats = (("wav", 16_000), ("flac", 22_050), ("ogg", 8_000))
    for kind in SOUNDS:
        folder = Path(root) / kind
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            ext, rate = formats[n % len(formats)]
            soundfile.write(folder / f"{kind}_{n}.{ext}", sound(kind, 0.3 + 0.1 * n, rate, seed=n), rate)
    return str(root)


CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
          "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
TOKENIZER_TEXT = "hello how are you the printer is out of toner please reset your password thank you"


def tiny_llama_folder(folder, chat_template: str | None = CHATML) -> str:
    """A Llama from a config (2 layers, hidden size 32) with a small byte-level BPE tokenizer, random weights,
    saved like a hub checkpoint."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator([TOKENIZER_TEXT] * 10, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    eos = "<|im_end|>" if chat_template else "<|endoftext|>"
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token=eos, bos_token="<|im_start|>",
                                        pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    if chat_template:
        tokenizer.chat_template = chat_template
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def write_chat_csv(path, rows: int = 24) -> str:
    """prompt,response pairs in a recognisable style (tiny models learn nothing, but the plumbing is the same)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "response"])
        for i in range(rows):
            writer.writerow([f"how do I reset my password {i}", f"Hello! please reset your password {i % 3}"])
    return str(path)


def wait_for(predicate, timeout=180, what="the condition"):
    """Polls until predicate() is true; fails the test after timeout seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")

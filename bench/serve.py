"""What `studio serve-model` delivers to programs: tokens/s of one streamed answer, and 4 streams at once (their
total tokens/s ÷ one stream's: what batching waiting requests into one generate call buys), through the real
server process and the official openai client, on a short LoRA run (SmolLM2; the smoke run: a tiny Llama)."""
from __future__ import annotations

import csv
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import sft, studio_side

STREAMS = 4


def _server(workspace: Path, run_id: str, log: Path) -> tuple[subprocess.Popen, str]:
    """`studio serve-model` on a free port, its model loaded: (the process, its /v1 URL)."""
    import socket

    import openai
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    studio = str(Path(sys.executable).with_name("studio"))
    with open(log, "w") as out:
        process = subprocess.Popen([studio, "--workspace", str(workspace), "serve-model", run_id, "--port", str(port)],
                                   stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/v1"
    api = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        try:
            if all(m.status == "ready" for m in api.models.list().data):
                return process, url
        except openai.APIConnectionError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the model server did not become ready: {log.read_text()[-2000:]}")


def _stream(api, model: str, message: str, tokens: int) -> dict:
    """One streamed greedy answer: its tokens, seconds, and when its first text came."""
    start, first = time.perf_counter(), None
    usage = None
    for chunk in api.chat.completions.create(model=model, messages=[{"role": "user", "content": message}],
                                             temperature=0, max_tokens=tokens, stream=True,
                                             stream_options={"include_usage": True}):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        usage = chunk.usage or usage
    return {"tokens": usage.completion_tokens, "seconds": time.perf_counter() - start, "first_s": first}


def measure(workspace: Path, run_id: str, messages: list[str], tokens: int, log: Path) -> dict:
    """One stream at a time, then len(messages) at once, and one-token requests, against a fresh server."""
    import openai
    process, url = _server(workspace, run_id, log)
    try:
        api = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
        _stream(api, run_id, messages[0], 4)  # warm-up: the first generate call's one-off costs
        single = [_stream(api, run_id, message, tokens) for message in messages[:2]]
        began = time.perf_counter()
        with ThreadPoolExecutor(len(messages)) as pool:
            together = list(pool.map(lambda message: _stream(api, run_id, message, tokens), messages))
        together_s = time.perf_counter() - began
        short = [_timed(lambda: api.chat.completions.create(
            model=run_id, messages=[{"role": "user", "content": messages[0]}], temperature=0, max_tokens=1))
            for _ in range(3)]
    finally:
        process.terminate()
        process.wait(30)
    one_rate = sum(s["tokens"] for s in single) / sum(s["seconds"] for s in single)
    together_rate = sum(s["tokens"] for s in together) / together_s
    firsts = [s["first_s"] for s in single + together if s["first_s"] is not None]
    return {"tokens_per_s": one_rate, "concurrent_tokens_per_s": together_rate, "speedup": together_rate / one_rate,
            "max_tokens": tokens, "single": single, "concurrent": together, "concurrent_s": round(together_s, 3),
            "one_token_request_ms": [round(1000 * s, 1) for s in short],
            "first_text_ms_median": round(1000 * statistics.median(firsts), 1) if firsts else None}


def section_serve(ctx, results: dict) -> None:
    from studio.assets import HELPDESK_CHAT
    name, _ = sft.model_for(ctx)
    with open(HELPDESK_CHAT, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    data = ctx.work / "serve-helpdesk.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows[:21])
    run = studio_side.must_complete(studio_side.run(ctx.inproc, sft.chat_recipe(
        name, data, max_length=128, epochs=1, batch_size=4, learning_rate=2e-3)))
    tokens = 32 if ctx.cfg.mode == "smoke" else 96
    got = measure(ctx.inproc.workspace.root, run["run_dir"].name, [r[0] for r in rows[21:21 + STREAMS]], tokens,
                  ctx.work / "serve.log")
    results["serve_tokens_per_s"] = got["tokens_per_s"]
    results["serve_concurrent_speedup"] = got["speedup"]
    results["details"]["serve"] = {
        "model": name, "device": ctx.device.type, **got,
        "counted": f"completion tokens (the server's usage) per second of streamed greedy answers of at most {tokens} "
                   f"tokens through the openai client: one stream at a time (2 requests after a warm-up), and "
                   f"{STREAMS} streams sent at once (total tokens ÷ wall time from the first send to the last "
                   "[DONE]); one_token_request_ms: a whole request for one token (latency)"}


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start

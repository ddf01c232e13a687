"""The UI numbers, measured as a user meets them: the real app started with launch.py in its own process, its runs
training in worker processes beside it as they do for a user, driven through gradio_client.

Endpoints are found by what triggers them (the elem_id and event in the app's /config), not by their generated
api names, so the bench survives new handlers. Session A plays the user's browser tab: it clicks through the wizard
and its Train tab polls the refresh endpoint once a second, as gr.Timer(1.0) does in the page. Session B is a
second visitor calling a light endpoint (the model picker) while A's run trains. The page keeps its session in the
browser (gr.BrowserState): here each session's value is passed with every call and taken back from its answer,
as the page does."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

CURVE_EVENTS = ("step", "head_search")  # a point of the live curve (a solved head's curve is its search)

ROOT = Path(__file__).resolve().parent.parent
TIMER_PERIOD_S = 1.0  # the Train tab's gr.Timer

# role: (elem_id or component type, event) of the trigger; or ("fn", name) for a handler without an elem_id.
ROLES = {
    "model": ("model-choice", "input"),  # the light endpoint: the model picker re-renders the model cards
    "custom": ("fn", "on_custom"),
    "shapes": ("example-shapes", "click"),
    "strategy": ("strategy", "input"),
    "start": ("start", "click"),
    "stop": ("stop", "click"),
    "refresh": ("type:timer", "tick"),
    "playground": ("tab-playground", "select"),
    "predict": ("playground-upload", "upload"),
}
# Where a role's trigger alone is ambiguous (several tabs have a timer): a component its endpoint must update.
ROLE_SHOWS = {"refresh": "loss-plot"}
SESSION = "browserstate"  # the type of the component holding the page's session


class Server:
    """python launch.py --port P --workspace W, as a user starts the studio."""

    def __init__(self, workspace: Path, start_timeout: float = 180):
        self.workspace, self.start_timeout = Path(workspace), start_timeout
        self.process = None

    def __enter__(self) -> str:
        self.workspace.mkdir(parents=True, exist_ok=True)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        self.log = open(self.workspace / "server.log", "w")
        # STUDIO_BENCH_LAUNCHER: another launcher script (same arguments as launch.py), to try a change to the
        # studio on the UI numbers before making it
        launcher = os.environ.get("STUDIO_BENCH_LAUNCHER") or str(ROOT / "launch.py")
        self.process = subprocess.Popen([sys.executable, launcher, "--port", str(port),
                                         "--workspace", str(self.workspace)], cwd=ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return self.url
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.25)
        self.__exit__()
        tail = (self.workspace / "server.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the studio did not start (exit code {self.process.poll()}); its log ends:\n{tail}")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def endpoints(url: str) -> dict[str, dict]:
    """role -> {"api": api name, "inputs"/"outputs": the types of its components}, read from the app's /config."""
    config = json.load(urllib.request.urlopen(f"{url}/config", timeout=10))
    components = {c["id"]: c for c in config["components"]}
    found = {}
    for dep in config["dependencies"]:
        for target in dep.get("targets", []):
            component = components.get(target[0], {})
            keys = {component.get("props", {}).get("elem_id"), f"type:{component.get('type')}"}
            outputs = [components[i] for i in dep["outputs"] if not components[i].get("skip_api")]
            shown = {c.get("props", {}).get("elem_id") for c in outputs}
            for role, (key, event) in ROLES.items():
                if ((key in keys and target[1] == event) or (key == "fn" and dep.get("api_name") == event)) and \
                        ROLE_SHOWS.get(role, None) in shown | {None}:
                    found.setdefault(role, {
                        "api": "/" + dep["api_name"],
                        "inputs": [components[i]["type"] for i in dep["inputs"]
                                   if not components[i].get("skip_api")],
                        "outputs": [c["type"] for c in outputs],
                        "shows": [c.get("props", {}).get("elem_id") for c in outputs]})
    missing = sorted(set(ROLES) - set(found))
    if missing:
        raise RuntimeError(f"the app has no endpoint for: {', '.join(missing)}")
    return found


def p95_ms(seconds: list[float]) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000.0, 95))


def _plot_points(value) -> int:
    """Points in the first trace of a plot output (0 for a skipped update or an empty figure)."""
    if isinstance(value, dict) and value.get("__type__") == "update":
        value = value.get("value")
    if isinstance(value, dict) and "plot" in value:
        value = value["plot"]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return 0
    if not isinstance(value, dict):
        return 0
    data = value.get("data") or []
    return len(data[0].get("y") or []) if data else 0


class Studio:
    """One user's session (session A) and a second visitor (session B) on a running app."""

    def __init__(self, url: str, workspace: Path):
        from gradio_client import Client
        self.url, self.workspace = url, Path(workspace)
        self.api = endpoints(url)
        # download_files=False: the session is a plain dict whose recipe has a "path" key, which the client would
        # otherwise take for a file to download
        self.a = Client(url, verbose=False, download_files=False)
        self.b = Client(url, verbose=False, download_files=False)
        self.sessions = {id(self.a): None, id(self.b): None}  # each page's session (the browser's storage)
        self.run_id = None
        self.curve_seen: dict[str, float] = {}  # run id -> time.time() when a refresh first returned its curve
        self.finish_seen: dict[str, float] = {}  # run id -> when a refresh first said the run had finished
        self.refresh_s: list[float] = []
        self._polling = threading.Event()
        self._poller = None

    def call(self, client, role, *args):
        """The endpoint with `args` for its inputs and the page's session where it takes it; the session it
        answers with is kept for the next call."""
        endpoint, given = self.api[role], iter(args)
        inputs = [self.sessions[id(client)] if kind == SESSION else next(given) for kind in endpoint["inputs"]]
        out = client.predict(*inputs, api_name=endpoint["api"])
        out = list(out) if isinstance(out, (list, tuple)) else [out]
        for kind, value in zip(endpoint["outputs"], out):
            if kind == SESSION:
                self.sessions[id(client)] = value
        return [value for kind, value in zip(endpoint["outputs"], out) if kind != SESSION]

    def status(self, run_id: str) -> str:
        try:
            return json.loads((self.workspace / "runs" / run_id / "status.json").read_text())["status"]
        except (OSError, ValueError, KeyError):
            return "unknown"

    def first_step_time(self, run_id: str) -> float | None:
        try:
            lines = (self.workspace / "runs" / run_id / "events.jsonl").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            event = json.loads(line)
            if event["type"] in CURVE_EVENTS:
                return event["time"]
        return None

    def start_run(self) -> str:
        message = self.call(self.a, "start")[0]
        run_id = (self.sessions[id(self.a)] or {}).get("run_id")
        if not run_id or run_id == self.run_id:
            raise RuntimeError(f"the studio did not start the run: {message}")
        self.run_id = run_id
        return self.run_id

    def refresh(self):
        run_id = self.run_id
        start = time.perf_counter()
        out = self.call(self.a, "refresh")
        self.refresh_s.append(time.perf_counter() - start)
        shown = dict(zip([e for e, kind in zip(self.api["refresh"]["shows"], self.api["refresh"]["outputs"])
                          if kind != SESSION], out))
        if run_id and run_id not in self.curve_seen and _plot_points(shown["loss-plot"]) > 0:
            self.curve_seen[run_id] = time.time()
        if run_id and run_id not in self.finish_seen and "Finished in" in str(shown["progress"]):
            self.finish_seen[run_id] = time.time()
        return out

    # the Train tab's timer, in a thread: one refresh a second while polling is on
    def start_polling(self) -> None:
        self._polling.set()

        def tick():
            while self._polling.is_set():
                began = time.perf_counter()
                self.refresh()
                time.sleep(max(0.0, TIMER_PERIOD_S - (time.perf_counter() - began)))
        self._poller = threading.Thread(target=tick, daemon=True)
        self._poller.start()

    def stop_polling(self) -> None:
        self._polling.clear()
        if self._poller is not None:
            self._poller.join(30)

    def wait_finished(self, run_id: str, timeout: float) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.status(run_id)
            if state in ("completed", "failed", "cancelled"):
                return state
            time.sleep(0.05)
        raise RuntimeError(f"run {run_id} did not finish in {timeout:.0f} s")

    def first_curve_delay(self, run_id: str) -> float | None:
        step = self.first_step_time(run_id)
        seen = self.curve_seen.get(run_id)
        return None if step is None or seen is None else seen - step


def measure(workspace: Path, image_model: str, calls: int, warmup_calls: int = 5, run_timeout: float = 600,
            latency_timeout: float = 300) -> dict:
    from gradio_client import handle_file
    out: dict = {}
    with Server(workspace) as url:
        studio = Studio(url, workspace)
        for _ in range(warmup_calls):
            studio.call(studio.b, "model", "efficientnet-lite0")
        idle = []
        for _ in range(calls):
            began = time.perf_counter()
            studio.call(studio.b, "model", "efficientnet-lite0")
            idle.append(time.perf_counter() - began)
        out["ui_p95_ms_idle"] = p95_ms(idle)

        # demo → model: example images, feature extraction (the default strategy), the first playground answer
        began = time.perf_counter()
        if image_model != "efficientnet-lite0":
            studio.call(studio.a, "custom", image_model, False)  # the name, and the trust box left off
        studio.call(studio.a, "shapes")
        demo_run = studio.start_run()
        studio.start_polling()
        state = studio.wait_finished(demo_run, run_timeout)
        while demo_run not in studio.finish_seen and state == "completed" and time.perf_counter() - began < run_timeout:
            time.sleep(0.02)  # the page shows that the run finished at its next timer tick
        studio.stop_polling()
        if state != "completed":
            raise RuntimeError(f"the demo run ended {state}; see {workspace / 'runs' / demo_run}")
        studio.call(studio.a, "playground")
        example = sorted((workspace / "runs" / demo_run / "examples").iterdir())[0]
        answer = studio.call(studio.a, "predict", demo_run, handle_file(str(example)))[0]
        out["demo_to_model_s"] = time.perf_counter() - began
        if not str(answer).startswith("###"):
            raise RuntimeError(f"the playground gave no answer: {answer}")
        out["demo_answer"] = str(answer).splitlines()[0].lstrip("# ")

        # a full fine-tuning run: the first curve point, then the light endpoint while it trains
        studio.call(studio.a, "strategy", "full")
        runs = [studio.start_run()]
        studio.start_polling()
        deadline = time.time() + run_timeout
        while studio.first_step_time(runs[0]) is None and time.time() < deadline:
            if studio.status(runs[0]) in ("completed", "failed", "cancelled"):
                raise RuntimeError(f"the full run ended {studio.status(runs[0])} before its first step")
            time.sleep(0.05)
        while runs[0] not in studio.curve_seen and time.time() < deadline:
            time.sleep(0.02)
        training, discarded = [], 0
        deadline = time.time() + latency_timeout
        while len(training) < calls and time.time() < deadline:
            if studio.status(studio.run_id) != "running":  # a short run ended: train again
                studio.wait_finished(studio.run_id, run_timeout)
                runs.append(studio.start_run())
                while studio.first_step_time(studio.run_id) is None and time.time() < deadline:
                    time.sleep(0.05)
                continue
            began = time.perf_counter()
            studio.call(studio.b, "model", "efficientnet-lite0")
            took = time.perf_counter() - began
            if studio.status(studio.run_id) == "running":
                training.append(took)
            else:
                discarded += 1
        studio.call(studio.a, "stop")
        studio.stop_polling()
        studio.wait_finished(studio.run_id, run_timeout)
        if len(training) < calls:
            raise RuntimeError(f"only {len(training)} of {calls} calls landed while a run trained")
        out["ui_p95_ms_during_training"] = p95_ms(training)
        curves = {"feature-extraction demo": studio.first_curve_delay(demo_run),
                  "full": studio.first_curve_delay(runs[0])}
        if any(v is None for v in curves.values()):
            raise RuntimeError(f"a curve never showed its first point: {curves}")
        out["first_curve_point_s"] = max(curves.values())
        out["details"] = {
            "light_endpoint": studio.api["model"]["api"] + " (the model picker: re-renders the model cards and summary)",
            "calls": calls, "idle_ms": _summary(idle), "during_training_ms": _summary(training),
            "discarded_calls": discarded, "training_runs": len(runs),
            "refresh_p95_ms": p95_ms(studio.refresh_s) if studio.refresh_s else None,
            "first_curve_point_s": {k: round(v, 3) for k, v in curves.items()},
            "timer_period_s": TIMER_PERIOD_S,
        }
    return out


def _summary(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000.0
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "max": float(ms.max()),
            "n": int(len(ms))}

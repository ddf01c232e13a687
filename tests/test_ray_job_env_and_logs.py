"""What the studio hands Ray and asks of it: no secrets in a job's environment (Ray shows it on its dashboard); a
job's entrypoint joins its cluster again after an out-of-memory retry; one backend per cluster address; a job's log
asked again only when its run moved on; a cluster that cannot be used said in words when Start is pressed."""
import shlex
import sys

import gradio as gr
from helpers import free_port, wait_for

from studio.run import backends
from studio.run.backends import ray_jobs
from studio.run.log_tails import LogTails
from studio.runfolder import WORKER_LOG, EventWriter, RunFolder


def run_folder(path, status: str, **fields) -> RunFolder:
    path.mkdir()
    run = RunFolder(path)
    writer = EventWriter(run)
    writer.set_status(status, **fields)
    writer.close()
    return run


def test_secrets_are_not_passed_to_a_job(monkeypatch):
    passed = {"HF_HOME": "/shared/hf", "HF_HUB_OFFLINE": "1", "STUDIO_MAX_RUNS": "2", "TRANSFORMERS_VERBOSITY": "info",
              "TOKENIZERS_PARALLELISM": "true"}
    secret = {"HF_TOKEN": "hf_abc", "HF_TOKEN_PATH": "/x/token", "STUDIO_API_KEY": "k", "STUDIO_Db_Password": "p",
              "TRANSFORMERS_secret": "s", "HF_HUB_KEYS": "k", "TOKENIZERS_TOKEN": "t"}
    for name, value in {**passed, **secret}.items():
        monkeypatch.setenv(name, value)
    env = ray_jobs.job_environment()
    assert {name: env.get(name) for name in passed} == passed
    assert not set(secret) & set(env)


def test_one_backend_per_cluster_address(tmp_path):
    address = f"http://127.0.0.1:{free_port()}"
    run = run_folder(tmp_path / "run", "running", backend="ray", cluster=address, cluster_job_id="run")
    assert backends.for_run(run) is backends.for_run(run) is backends.cluster(address)
    assert backends.cluster(address) is not backends.cluster(address + "0")


def test_a_jobs_log_is_asked_again_only_when_its_run_moved_on(tmp_path):
    """A run on this machine (its worker's log), read through the same tails the Train tab uses."""
    run = run_folder(tmp_path / "run", "running")
    log = run.file(WORKER_LOG)
    log.write_text("".join(f"line {i}\n" for i in range(10)))
    tails = LogTails(lines=3, every_s=5)
    running = {"status": "running"}
    assert tails.get(run, running, events=1, now=0).lines == ["line 7", "line 8", "line 9"]
    log.write_text(log.read_text() + "line 10\n")
    assert tails.get(run, running, events=1, now=10).lines[-1] == "line 9"  # nothing new in the run
    assert tails.get(run, running, events=2, now=4).lines[-1] == "line 9"  # new, but asked 4 s ago
    assert tails.get(run, running, events=2, now=6).lines[-1] == "line 10"
    log.write_text(log.read_text() + "line 11\n")
    assert tails.get(run, {"status": "completed"}, events=2, now=6.5).lines[-1] == "line 11"  # its end: at once


def test_a_cluster_that_does_not_answer_is_said_in_words_on_start(tmp_path, tiny_bert, text_csv, monkeypatch):
    from studio.run.jobs import JobManager
    from studio.ui.app import build_app
    from studio.ui.session import new_session
    from studio.workspace import Workspace

    address = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("STUDIO_CLUSTER", address)
    workspace = Workspace(tmp_path / "ws")
    app = build_app(workspace, JobManager(workspace))
    message = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "train-message")
    on_start = next(f.fn for f in app.fns.values() if f.name == "on_start" and message in f.outputs)
    state = new_session() | {"lang": "en", "data_kind": "text-classification"}
    state["recipe"].update(task="text-classification", model=tiny_bert, data={"path": text_csv}, strategy="full")
    answer = on_start(state)
    words = answer[message]
    assert words.startswith("**Cannot start yet.**"), words
    assert f"No Ray cluster answers at {address}" in words or "Running on a cluster needs Ray" in words
    saved = next(value for component, value in answer.items() if isinstance(component, gr.BrowserState))
    assert not saved["run_id"] and not workspace.runs()


def test_a_jobs_entrypoint_joins_its_cluster_again_on_a_retry(ray_cluster):
    """ray_train.join() twice in one job, as a run retried after running out of memory calls it."""
    client = ray_jobs.connect(ray_cluster)
    code = "from studio.run import ray_train; ray_train.join(); ray_train.join(); print('joined twice')"
    job = client.submit_job(entrypoint=shlex.join([sys.executable, "-c", code]), entrypoint_num_cpus=0,
                            runtime_env={"env_vars": ray_jobs.job_environment()})
    wait_for(lambda: client.get_job_status(job).is_terminal(), 180, "the job to end")
    assert client.get_job_status(job).value == "SUCCEEDED", client.get_job_logs(job)[-2000:]
    assert "joined twice" in client.get_job_logs(job)


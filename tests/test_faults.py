"""Faults survived: a studio process killed mid-run (SIGKILL) and restarted, resuming a stopped run, out of memory
with and without the automatic retry at half the batch."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import make_recipe
from studio.cli import main
from studio.runfolder import RunFolder
from studio.run.jobs import JobManager, ResumeError
from studio.engine.loop import Callback
from studio.workspace import Workspace


def finish(job, timeout=300):
    assert job.wait(timeout), "run did not finish in time"
    return job.status


def eval_of(run_dir):
    return json.loads((run_dir / "eval.json").read_text())


def same_history(a, b):
    assert [h["step"] for h in a] == [h["step"] for h in b]
    for x, y in zip(a, b):
        assert x["val_loss"] == pytest.approx(y["val_loss"], rel=1e-4, abs=1e-5)
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4, abs=1e-5)


@pytest.mark.slow  # about 50 s: three runs, one of them killed and resumed
def test_killed_worker_then_resumed_run_matches_an_uninterrupted_one(tmp_path, tiny_bert, text_csv, capsys):
    """`studio train` in its own process; its worker is SIGKILLed after epoch 3 (as the kernel does when memory
    runs out). The command says so and fails; `studio runs` shows the run interrupted; --resume completes it with
    exactly the steps and losses of a run never interrupted."""
    recipe = make_recipe("text", tiny_bert, text_csv, "full", epochs=30, batch_size=2, learning_rate=1e-3)
    recipe.train.early_stopping_patience = 0
    workspace = tmp_path / "ws"
    recipe_file = tmp_path / "recipe.yaml"
    recipe.save(recipe_file)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "studio.cli", "train", str(recipe_file), "--workspace",
                             str(workspace)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        run_dir = None
        while time.time() < deadline:  # wait until a few epochs are done, then kill the worker without warning
            dirs = Workspace(workspace).run_dirs()
            if dirs:
                run_dir = dirs[0]
                epochs = [e for e in RunFolder(run_dir).events() if e["type"] == "epoch"]
                if len(epochs) >= 3:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the run never reached its third epoch")
        worker = RunFolder(run_dir).status()["pid"]
        assert worker != proc.pid  # training runs in a worker process of its own
        os.kill(worker, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2 and "interrupted" in err and "SIGKILL" in err
    assert not (run_dir / "eval.json").exists()

    # The next look (here: `studio runs`) shows it interrupted, not running forever.
    assert main(["runs", "--json", "--workspace", str(workspace)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in listed] == ["interrupted"]

    assert main(["train", "--resume", run_dir.name, "--workspace", str(workspace)]) == 0
    resumed = eval_of(run_dir)
    log = [e.get("message", "") for e in RunFolder(run_dir).events() if e["type"] == "log"]
    assert any(m.startswith("Resumed after epoch") for m in log)
    assert not (run_dir / "checkpoints" / "last.pt").exists()  # finished: nothing left to resume

    straight = finish(JobManager(Workspace(tmp_path / "ws2"), in_process=True).start(recipe))
    assert straight["status"] == "completed"
    reference = eval_of(tmp_path / "ws2" / "runs" / straight["run_id"])
    assert resumed["steps"] == reference["steps"] == 30 * 15
    same_history(resumed["history"], reference["history"])


class StopAt(Callback):
    def __init__(self, job_ref, step):
        self.job_ref, self.step = job_ref, step

    def on_step_end(self, loop):
        if loop.step == self.step:
            self.job_ref[0].cancel()


def test_stopped_mid_epoch_resumes_to_the_same_steps(tmp_path, tiny_bert, text_csv):
    manager = JobManager(Workspace(tmp_path / "ws"), in_process=True)
    recipe = make_recipe("text", tiny_bert, text_csv, "lora", epochs=4, batch_size=4)
    steps_per_epoch = 8  # 30 training rows (36 minus 6 for validation) in batches of 4
    holder = []
    stopper = StopAt(holder, 2 * steps_per_epoch + 3)  # in the middle of epoch 3
    job = manager.start(recipe, [stopper])
    holder.append(job)
    assert finish(job)["status"] == "cancelled"
    assert job.run_dir.joinpath("checkpoints", "last.pt").exists()
    resumed = finish(manager.resume(job.run_id))
    assert resumed["status"] == "completed", resumed.get("error")
    log = [e.get("message", "") for e in job.events() if e["type"] == "log"]
    assert "Resumed 3 batches into epoch 3 (step 19)." in log  # the stop lost no step
    straight = finish(manager.start(recipe))
    assert eval_of(job.run_dir)["steps"] == eval_of(manager.get(straight["run_id"]).run_dir)["steps"] == 32
    same_history(eval_of(job.run_dir)["history"], eval_of(manager.get(straight["run_id"]).run_dir)["history"])
    with pytest.raises(ResumeError, match="completed"):
        manager.resume(job.run_id)


class OutOfMemoryAbove(Callback):
    """Raises the error torch raises when the device is full, whenever a batch is larger than `limit`."""

    def __init__(self, limit):
        self.limit = limit

    def on_step_end(self, loop):
        if loop.train_loader.batch_size > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_retries_with_half_the_batch(tmp_path, tiny_bert, text_csv):
    manager = JobManager(Workspace(tmp_path / "ws"), in_process=True)
    job = manager.start(make_recipe("text", tiny_bert, text_csv, "full", epochs=1, batch_size=16),
                        [OutOfMemoryAbove(4)])
    status = finish(job)
    assert status["status"] == "completed", status.get("error")
    messages = [e.get("message", "") for e in job.events() if e["type"] == "log"]
    assert "Out of memory with batch size 16: retrying with 8." in messages
    assert "Out of memory with batch size 8: retrying with 4." in messages
    assert "batch_size: 4" in (job.run_dir / "recipe.yaml").read_text()  # the recipe says what actually ran


def test_out_of_memory_without_retry_fails_with_advice(tmp_path, tiny_bert, text_csv):
    manager = JobManager(Workspace(tmp_path / "ws"), in_process=True)
    recipe = make_recipe("text", tiny_bert, text_csv, "full", epochs=1, batch_size=16)
    recipe.train.retry_smaller_batch = False
    job = manager.start(recipe, [OutOfMemoryAbove(4)])
    status = finish(job)
    assert status["status"] == "failed"
    assert "ran out of memory" in status["error"] and "smaller batch size" in status["error"]
    assert "Traceback" not in status["error"] and (job.run_dir / "error.log").exists()
    assert finish(manager.start(make_recipe("text", tiny_bert, text_csv, "full", epochs=1)))["status"] == "completed"


def test_a_sigterm_from_outside_the_studio_interrupts_and_the_studios_stop_cancels(tmp_path, tiny_bert, text_csv):
    """A worker process stopped by a SIGTERM no one sent through the studio (a shutdown, `kill`, Ray's stop_job run
    by hand) ends interrupted (resumable), in words; the studio's own Stop (its cancel file, then a signal) ends
    cancelled."""
    recipe = make_recipe("text", tiny_bert, text_csv, "full", epochs=30, batch_size=2, learning_rate=1e-3)
    recipe.train.early_stopping_patience = 0
    manager = JobManager(Workspace(tmp_path / "ws"))
    ended = {}
    for how in ("outside", "studio"):
        job = manager.start(recipe)
        deadline = time.time() + 180
        while not any(e["type"] == "step" for e in job.events()) and time.time() < deadline:
            time.sleep(0.05)
        if how == "outside":
            os.kill(job.status["pid"], signal.SIGTERM)
        else:
            job.cancel()
        assert job.wait(120)
        ended[how] = job.status
    assert ended["outside"]["status"] == "interrupted", ended["outside"]
    assert ended["outside"]["message"].startswith("Stopped from outside the studio")
    assert (ended["studio"]["status"], ended["studio"]["message"]) == ("cancelled", "Stopped by the user.")

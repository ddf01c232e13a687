"""Admission: runs queue per device kind in start order (a CPU run does not wait behind a GPU run), and a waiting
run's status says what it waits for: the runs ahead on its device, from its own workspace and from others, and
the time the one training now has left (its own estimate). Real lock files and threads; the device kinds are the
locks' names, so no GPU is needed."""
import json
import threading

import pytest

from studio.run import admission
from helpers import wait_for


@pytest.fixture()
def locks(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_LOCK_DIR", str(tmp_path / "locks"))
    return tmp_path


def run_dir(root, workspace: str, name: str):
    path = root / workspace / "runs" / name
    path.mkdir(parents=True)
    return path


def test_a_cpu_run_starts_beside_a_gpu_run_and_a_gpu_run_says_what_it_waits_for(locks):
    training = run_dir(locks, "team-a", "gpu-fine-tune")
    (training / "events.jsonl").write_text(json.dumps({"kind": "progress", "step": 3, "eta": 361.0}) + "\n")
    cancel = threading.Event()
    holder, _ = admission.wait_for_devices(training, "cuda", 1, 1, cancel)
    try:
        second = run_dir(locks, "team-b", "second-gpu-run")
        admission.take_ticket(second)  # started before the CPU run
        said = []
        waiter = threading.Thread(target=admission.wait_for_devices,
                                  args=(second, "cuda", 1, 1, cancel, said.append), daemon=True)
        waiter.start()
        wait_for(lambda: said, 10, "the waiting GPU run to say where it stands")
        assert said[-1] == {"position": 1, "ahead_here": 0, "ahead_elsewhere": 1, "device": "cuda",
                            "training_left_s": 361}

        cpu_run = run_dir(locks, "team-b", "feature-extraction")
        got = admission.wait_for_devices(cpu_run, "cpu", 1, 1, threading.Event())
        assert got is not None  # at once: nothing ahead of it needs the CPU
        got[0].release()

        third = run_dir(locks, "team-a", "third-gpu-run")
        said_third = []
        threading.Thread(target=admission.wait_for_devices, args=(third, "cuda", 1, 1, cancel, said_third.append),
                         daemon=True).start()
        wait_for(lambda: said_third, 10, "the third run to say where it stands")
        assert said_third[-1]["position"] == 2  # the run training, and the one started before it
        assert (said_third[-1]["ahead_here"], said_third[-1]["ahead_elsewhere"]) == (1, 1)
    finally:
        cancel.set()
        holder.release()


def test_the_device_goes_to_the_earliest_waiting_run_when_it_is_freed(locks):
    cancel = threading.Event()
    first = run_dir(locks, "w", "first")
    lock, _ = admission.wait_for_devices(first, "cpu", 1, 1, cancel)
    got = {}
    for name in ("second", "third"):
        path = run_dir(locks, "w", name)
        admission.take_ticket(path)
        threading.Thread(target=lambda p=path, n=name: got.setdefault(n, admission.wait_for_devices(
            p, "cpu", 1, 1, cancel)), daemon=True).start()
    lock.release()
    wait_for(lambda: "second" in got, 10, "the second run to get the CPU")
    assert "third" not in got  # it waits for the second run, which holds the CPU now
    got["second"][0].release()
    wait_for(lambda: "third" in got, 10, "the third run to get the CPU")
    got["third"][0].release()
    cancel.set()

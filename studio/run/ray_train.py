"""One run on several devices of a Ray cluster: when a cluster placed the run (its job's entrypoint is the worker)
and train.devices is N > 1, Ray Train's TorchTrainer starts N workers (one CPU set or one GPU each, on whichever
nodes have them; the entrypoint itself reserved nothing) and each runs the studio's own loop as one rank: Ray Train
has already joined them in a torch.distributed group (gloo on CPUs, nccl on GPUs) and set RANK / WORLD_SIZE /
LOCAL_RANK, which engine/distributed.py reads as it does under `accelerate launch`. Only rank 0 writes the run
folder; how the ranks ended is read from it, as for the local ranks.

Ray 2.60 runs Ray Train v2, whose result does not carry what the loop reports (checked 2026-12-02): nothing is
read from fit()'s return."""
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from studio.recipe import Recipe
from studio.run.stopping import CANCEL_POLL_S
from studio.runfolder import CANCEL, RunFolder


def spreads(recipe: Recipe) -> bool:
    """True when the run trains on several devices (Ray Train's workers, on a cluster)."""
    return recipe.train.devices != "all" and int(recipe.train.devices) > 1


def join() -> None:
    """Connects this process (the job's entrypoint) to the job's cluster, once: an attempt retried after running
    out of memory (runner.with_retries) is already connected. The ranks' output goes to the job's log."""
    import ray
    ray.init(ignore_reinit_error=True, log_to_driver=True)


def launch(run: RunFolder, recipe: Recipe, rank: Callable[[dict], None], resume: bool,
           cancel: threading.Event) -> str | None:
    """Trains the run on train.devices Ray Train workers, each calling rank({"run_dir", "resume"}); waits for
    them, passing a stop on to every rank (the cancel file, which they poll). Returns Ray Train's words when it
    reports a failure, else None."""
    import ray
    from ray.train import RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.torch import TorchTrainer

    join()
    gpus = recipe.train.device == "cuda" or (recipe.train.device == "auto" and ray.cluster_resources().get("GPU"))
    trainer = TorchTrainer(
        rank, train_loop_config={"run_dir": str(run.path), "resume": resume},
        scaling_config=ScalingConfig(num_workers=int(recipe.train.devices), use_gpu=bool(gpus),
                                     resources_per_worker={"CPU": recipe.train.cpus, **({"GPU": 1} if gpus else {})}),
        # Ray Train keeps its own bookkeeping here: on the shared workspace, which every node sees
        run_config=RunConfig(name=run.id, storage_path=str(Path(run.path).parent.parent / "ray-train")))
    ended = threading.Event()

    def relay_stop() -> None:
        while not ended.wait(CANCEL_POLL_S):
            if cancel.is_set():
                run.file(CANCEL).touch()  # the ranks poll it and stop at the same step
                return
    threading.Thread(target=relay_stop, name="relay-stop", daemon=True).start()
    try:
        trainer.fit()
        return None
    except TrainingFailedError as exc:  # a rank failed or died: how is in the run folder, or in Ray's words
        return f"Ray Train reports {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    finally:
        ended.set()

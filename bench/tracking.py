"""What reporting to experiment trackers costs a run (train.report_to): samples/s of the same fine-tuning with
TensorBoard and MLflow (the workspace's SQLite store) ÷ without, alternating sides (none, trackers, none,
trackers) so that drift on the machine weighs on both, after a first run with trackers measured apart. trackio is left out: it reads its folder once per process,
and these runs share one (a worker process per run has its own)."""
from __future__ import annotations

import statistics

from bench import studio_side

TRACKERS = ["tensorboard", "mlflow"]


def section_tracking(ctx, results: dict) -> None:
    cfg = ctx.cfg
    folder = ctx.mnist("fe", cfg.fe_per_class, 0)
    rates: dict[str, list[float]] = {"none": [], "trackers": []}
    # The first run with trackers in a process also imports them and creates the SQLite store (seconds of CPU,
    # once per worker process): measured apart, so that the ratio is what reporting costs a run in its stride.
    first = studio_side.throughput(ctx.inproc, "image", cfg.image_model, str(folder), "full", cfg.ft_batch,
                                   cfg.ft_warmup, cfg.ft_measure, report_to=TRACKERS)["samples_per_s"]
    for _ in range(2):
        for side, report_to in (("none", []), ("trackers", TRACKERS)):
            got = studio_side.throughput(ctx.inproc, "image", cfg.image_model, str(folder), "full", cfg.ft_batch,
                                         cfg.ft_warmup, cfg.ft_measure, report_to=report_to)
            rates[side].append(got["samples_per_s"])
    results["tracking_vs_none_ratio"] = statistics.mean(rates["trackers"]) / statistics.mean(rates["none"])
    results["details"]["tracking"] = {
        "trackers": TRACKERS, "samples_per_s": rates, "first_run_with_trackers_samples_per_s": first,
        "model": cfg.image_model, "strategy": "full",
        "batch_size": cfg.ft_batch, "warmup_steps": cfg.ft_warmup, "measured_steps": cfg.ft_measure,
        "counted": "samples/s over the same measured steps after warm-up of in-process runs of one recipe, with "
                   "and without train.report_to (each step's loss, learning rate and throughput sent)"}

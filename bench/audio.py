"""The audio section: feature extraction on the bundled spoken commands through a worker against plain passes of
the same encoder."""
from __future__ import annotations

import os
import statistics
from pathlib import Path

from bench import plain, studio_side, workloads


def section_audio(ctx, results: dict) -> None:
    """Feature extraction on the bundled spoken commands with the offline Whisper tiny.en through a worker (cold
    feature cache) vs one plain pass of the same encoder over the same clips, plain-studio-plain. The model is
    converted from its package before anything is timed (once per workspace, as a user's first run does)."""
    cfg = ctx.cfg
    folder = cfg.audio_model
    if cfg.audio_model == "whisper-tiny-en":
        from studio import catalog
        from studio.families import packages
        os.environ["STUDIO_CONVERTED_CACHE"] = str(ctx.work / "converted")  # the workers inherit it
        folder = str(packages.convert(catalog.find(cfg.audio_model)))
    paths = workloads.audio_files(Path(cfg.audio_data))
    manager = ctx.fresh_manager("workspace-audio")
    plain_runs = [plain.audio_encoder_pass(folder, paths, cfg.fe_batch, ctx.device, ctx.amp)]
    cold = studio_side.feature_extraction(manager, cfg.audio_model, cfg.audio_data, cfg.fe_batch, cfg.fe_epochs,
                                          task="audio")
    plain_runs.append(plain.audio_encoder_pass(folder, paths, cfg.fe_batch, ctx.device, ctx.amp))
    if cold["cached"]:
        raise RuntimeError("the audio run found its features cached: the workspace was not fresh")
    plain_s = statistics.mean(r["seconds"] for r in plain_runs)
    results["audio_fe_vs_inference_ratio"] = cold["wall_s"] / plain_s
    results["audio_example_fe_accuracy"] = cold["accuracy"]
    results["details"]["audio"] = {
        "model": cfg.audio_model, "clips": len(paths), "batch_size": cfg.fe_batch, "studio_cold_s": cold["wall_s"],
        "plain_pass_s": [r["seconds"] for r in plain_runs], "plain_model_load_s": plain_runs[0]["load_s"],
        "studio_cold_phases": cold["phases"], "studio_epochs_run": cold["epochs_run"],
        "counted": "studio: JobManager.start() to done through a worker process (the spare one), i.e. recipe "
                   "check, every clip decoded once to check it, split, model build, features (each clip padded "
                   "to Whisper's 30 s window), all epochs on the head, evaluation, saved model; plain: one "
                   "inference_mode pass of the encoder (decode, resample, log-mel features, forward, mean over "
                   "time) over the same clips, model build excluded (plain_model_load_s)"}

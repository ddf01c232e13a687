"""The Runs tab's comparison rows and the charts' handling of resumed runs, from plain events (no browser)."""
from studio.ui import charts
from studio.ui.runs_tab import compare_row

EVENTS = [
    {"type": "model", "trainable": 3843, "total": 3374851},
    {"type": "epoch", "epoch": 1, "step": 3, "val_loss": 0.9, "accuracy": 0.5, "macro_f1": 0.4, "elapsed": 2.0},
    {"type": "epoch", "epoch": 2, "step": 6, "val_loss": 0.4, "accuracy": 0.9, "macro_f1": 0.88, "elapsed": 4.0},
    {"type": "epoch", "epoch": 3, "step": 9, "val_loss": 0.6, "accuracy": 0.8, "macro_f1": 0.79, "elapsed": 6.0},
]


def test_a_running_run_is_compared_on_its_best_epoch_so_far():
    row = compare_row("r1", {"strategy": "feature-extraction", "status": "running"}, EVENTS, None)
    assert row["trained weights"] == "3,843" and row["trained %"] == "0.11%"
    assert row["best accuracy"] == "90.0%" and row["best epoch"] == 2 and row["seconds"] == "6"


def test_a_finished_run_is_compared_on_its_evaluation():
    report = {"accuracy": 0.95, "macro_f1": 0.951, "best_epoch": 2, "peak_memory_mb": 812.4}
    row = compare_row("r1", {"strategy": "full", "status": "completed", "wall_time_s": 41.2}, EVENTS, report)
    assert (row["best accuracy"], row["best macro-F1"], row["seconds"], row["peak memory MB"]) == \
        ("95.0%", "0.951", "41", "812")


def test_curves_show_the_attempt_that_counted_after_a_resume():
    events = [{"type": "step", "step": s, "train_loss": 1.0} for s in (1, 2, 3, 4)]
    events += [{"type": "step", "step": s, "train_loss": 0.5} for s in (3, 4, 5)]  # resumed after step 2
    kept = charts.latest(events, "step", "step")
    assert [e["step"] for e in kept] == [1, 2, 3, 4, 5] and [e["train_loss"] for e in kept][2:] == [0.5] * 3

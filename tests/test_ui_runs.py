"""The Runs tab's comparison rows, the charts' handling of resumed runs, the panels' Evaluate values (no browser)."""
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


def test_a_running_run_s_best_epoch_is_its_most_accurate_one():
    events = EVENTS + [{"type": "epoch", "epoch": 4, "step": 12, "val_loss": 0.3, "accuracy": 0.85, "elapsed": 8.0}]
    row = compare_row("r1", {"strategy": "full", "status": "running"}, events, None)
    assert row["best epoch"] == 2 and row["best accuracy"] == "90.0%"  # epoch 4's loss is lower, its accuracy not


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


def test_every_panel_answers_with_one_value_per_evaluate_component(tmp_path):
    """The Evaluate tab hands each panel's values to its components in one list: one value too many shifts every
    later component (a chat run once showed an error instead of its results)."""
    import gradio as gr

    from studio.ui import panels
    with gr.Blocks():
        for panel in panels.all_panels():
            panel.results.build()
            panel.build_mistakes()
    for panel in panels.all_panels():
        assert len(panel.show_mistakes({"misclassified": []}, tmp_path, "en")) == len(panel.mistakes), panel


def test_opening_the_strategy_tab_leaves_the_boxes_that_already_show_their_value():
    """A slow answer to opening the tab must not undo a number typed meanwhile: only changed boxes are written."""
    import gradio as gr

    from studio.ui.strategy_tab import unchanged_left_alone
    boxes = unchanged_left_alone([10, 0.003, gr.update(value=8, visible=True), gr.update(value="sgd", visible=True)],
                                 [10, 0.01, 8, "lbfgs"])
    assert boxes[0] == gr.skip() and boxes[1] == 0.003
    assert boxes[2] == {"__type__": "update", "visible": True} and boxes[3]["value"] == "sgd"


def test_a_solved_head_draws_its_search_for_a_regularisation():
    import json
    search = [{"type": "head_search", "candidate": i, "candidates": 3, "C": c, "score": s, "loss": l}
              for i, c, s, l in ((1, 0.1, 0.6, 0.9), (2, 1.0, 0.8, 0.5), (3, 10.0, 0.7, 0.6))]
    events = [*search, {"type": "head_fit", "C": 1.0},
              {"type": "epoch", "epoch": 1, "step": 0, "val_loss": 0.4, "accuracy": 0.85}]
    loss = json.loads(charts.loss_figure(events).plot)
    accuracy = json.loads(charts.accuracy_figure(events).plot)
    assert loss["data"][0]["y"] == [0.9, 0.5, 0.6] and accuracy["data"][0]["y"] == [0.6, 0.8, 0.7]
    assert accuracy["data"][1]["x"] == [2] and accuracy["data"][1]["y"] == [0.85]  # the chosen candidate
    fine_tuned = json.loads(charts.loss_figure([*events, {"type": "step", "step": 1, "train_loss": 1.0}]).plot)
    assert fine_tuned["data"][0]["x"] == [1]  # fine-tuning after the probe: the steps are the curve

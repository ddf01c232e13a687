"""The Runs tab's comparison rows, the charts' handling of resumed runs, the panels' Evaluate values (no browser)."""
from studio import tasks
from studio.ui import charts
from studio.ui.runs_tab import compare_row

EVENTS = [
    {"type": "model", "trainable": 3843, "total": 3374851},
    {"type": "epoch", "epoch": 1, "step": 3, "val_loss": 0.9, "accuracy": 0.5, "macro_f1": 0.4, "elapsed": 2.0},
    {"type": "epoch", "epoch": 2, "step": 6, "val_loss": 0.4, "accuracy": 0.9, "macro_f1": 0.88, "elapsed": 4.0},
    {"type": "epoch", "epoch": 3, "step": 9, "val_loss": 0.6, "accuracy": 0.8, "macro_f1": 0.79, "elapsed": 6.0},
]


IMAGES = tasks.get("image-classification")


def test_a_running_run_is_compared_on_its_best_epoch_so_far():
    row = compare_row("r1", IMAGES, {"strategy": "feature-extraction", "status": "running"}, EVENTS, None)
    assert row["trained weights"] == "3,843" and row["trained %"] == "0.11%"
    assert row["validation accuracy"] == "90.0%" and row["best epoch"] == 2 and row["seconds"] == "6"


def test_a_running_run_s_best_epoch_is_its_most_accurate_one():
    events = EVENTS + [{"type": "epoch", "epoch": 4, "step": 12, "val_loss": 0.3, "accuracy": 0.85, "elapsed": 8.0}]
    row = compare_row("r1", IMAGES, {"strategy": "full", "status": "running"}, events, None)
    assert row["best epoch"] == 2 and row["validation accuracy"] == "90.0%"  # epoch 4's loss is lower, its accuracy not


def test_a_chat_run_is_compared_on_its_lowest_loss_and_its_perplexity():
    chat = tasks.get("instruction-tuning")
    events = [{"type": "epoch", "epoch": 1, "step": 3, "val_loss": 2.0, "accuracy": 0.6, "elapsed": 2.0},
              {"type": "epoch", "epoch": 2, "step": 6, "val_loss": 1.5, "accuracy": 0.5, "elapsed": 4.0}]
    row = compare_row("r2", chat, {"strategy": "lora", "status": "running"}, events, None)
    assert row["best epoch"] == 2 and row["best answer tokens predicted exactly"] == "50.0%"
    done = compare_row("r2", chat, {"strategy": "lora", "status": "completed"}, events,
                       {"perplexity": 4.48, "general_loss": 3.15, "base_general_loss": 3.0})
    assert done["perplexity"] == "4.48"
    assert done["loss on general text (lower: more kept)"] == "3.150 (+5.0%)"  # what it kept, beside the start's


def test_a_finished_run_is_compared_on_its_evaluation():
    report = {"accuracy": 0.95, "macro_f1": 0.951, "best_epoch": 2, "peak_memory_mb": 812.4}
    row = compare_row("r1", IMAGES, {"strategy": "full", "status": "completed", "wall_time_s": 41.2}, EVENTS, report)
    assert (row["validation accuracy"], row["best macro-F1"], row["seconds"], row["peak memory MB"]) == \
        ("95.0%", "0.951", "41", "812")


def test_curves_show_the_attempt_that_counted_after_a_resume():
    events = [{"type": "step", "step": s, "train_loss": 1.0} for s in (1, 2, 3, 4)]
    events += [{"type": "step", "step": s, "train_loss": 0.5} for s in (3, 4, 5)]  # resumed after step 2
    kept = charts.latest(events, "step", "step")
    assert [e["step"] for e in kept] == [1, 2, 3, 4, 5] and [e["train_loss"] for e in kept][2:] == [0.5] * 3


def test_a_long_curve_is_thinned_to_what_a_chart_shows():
    events = [{"type": "step", "step": s, "train_loss": 1 / s} for s in range(1, 5001)]
    trace = charts.loss_figure(events).data[0]
    assert len(trace.x) == charts.MAX_POINTS and trace.x[0] == 1 and trace.x[-1] == 5000


def test_every_panel_updates_only_its_own_evaluate_components(tmp_path):
    """Each panel answers with a {component: update} dict of its own components (nothing by position)."""
    import gradio as gr

    from studio.ui import panels
    built = panels.for_app()
    with gr.Blocks():
        for view in {id(p.results): p.results for p in built.values()}.values():
            view.build()
        for panel in built.values():
            panel.build_mistakes()
    for panel in built.values():
        updates = panel.show_mistakes({"misclassified": []}, tmp_path, "en")
        assert set(map(id, updates)) <= set(map(id, panel.mistakes)), panel


def test_a_solved_head_draws_its_search_for_a_regularisation():
    search = [{"type": "head_search", "candidate": i, "candidates": 3, "C": c, "score": s, "loss": l}
              for i, c, s, l in ((1, 0.1, 0.6, 0.9), (2, 1.0, 0.8, 0.5), (3, 10.0, 0.7, 0.6))]
    events = [*search, {"type": "head_fit", "C": 1.0},
              {"type": "epoch", "epoch": 1, "step": 0, "val_loss": 0.4, "accuracy": 0.85}]
    loss = charts.loss_figure(events)
    accuracy = charts.metrics_figure(events, IMAGES.curves)
    assert list(loss.data[0].y) == [0.9, 0.5, 0.6] and list(accuracy.data[0].y) == [0.6, 0.8, 0.7]
    assert list(accuracy.data[1].x) == [2] and list(accuracy.data[1].y) == [0.85]  # the chosen candidate
    fine_tuned = charts.loss_figure([*events, {"type": "step", "step": 1, "train_loss": 1.0}])
    assert list(fine_tuned.data[0].x) == [1]  # fine-tuning after the probe: the steps are the curve


def test_opening_the_strategy_tab_writes_only_the_boxes_whose_value_changed():
    """A slow answer to opening the tab must not undo a number typed meanwhile: boxes that already show their value
    are shown or hidden, never written."""
    import gradio as gr

    from studio.ui.strategy_tab import Box, box_updates
    with gr.Blocks():
        epochs, lr, rank = gr.Number(), gr.Number(), gr.Number()
    boxes = [Box("train", "train", "epochs", epochs), Box("train", "train", "learning_rate", lr, float),
             Box("option", "strategy_options", "lora_r", rank)]
    updates = box_updates(boxes, {"train.epochs": 10, "train.learning_rate": 0.003},
                          {"train.epochs": 10, "train.learning_rate": 0.01, "strategy_options.lora_r": 8})
    assert "value" not in updates[epochs] and updates[lr]["value"] == 0.003
    assert updates[rank]["visible"] is False and "value" not in updates[rank]

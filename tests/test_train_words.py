"""The Train tab's words: what a queued run waits for (from the status admission writes), the epoch lines of
the log naming the task's own figure (a chat run's is its answer tokens predicted exactly), and a run that ended
faster than the eye replayed over a few ticks."""
import time

from studio import tasks
from studio.ui.train_tab import log_text, replay_position, waiting_words


def test_a_queued_run_says_whose_runs_are_ahead_on_which_device_and_for_how_long():
    status = {"status": "queued", "position": 3, "ahead_here": 1, "ahead_elsewhere": 2, "device": "cpu",
              "training_left_s": 361}
    assert waiting_words(status, "en") == ("Waiting for this machine's CPU: 1 run from this workspace and 2 runs "
                                          "from other workspaces, then yours. One run trains at a time on a device. "
                                          "The one training now has about 6:01 left.")
    german = waiting_words({**status, "ahead_here": 0, "ahead_elsewhere": 1, "device": "cuda"}, "de")
    assert german.startswith("Wartet auf die GPU dieses Rechners: erst 1 Lauf aus einem anderen Arbeitsbereich")
    assert "6:01" in german
    assert "Starting" in waiting_words({"status": "queued", "position": 0}, "en")


def test_an_epoch_line_names_the_tasks_own_figure():
    epoch = {"type": "epoch", "epoch": 1, "total_epochs": 2, "train_loss": 2.0, "val_loss": 1.5, "accuracy": 0.66}
    chat = log_text([epoch], "en", tasks.get("instruction-tuning").curves)
    assert chat.endswith("validation loss 1.5000, answer tokens predicted exactly 66.0%"), chat
    image = log_text([epoch], "en", tasks.get("image-classification").curves)
    assert image.endswith("validation accuracy 66.0%"), image


def test_a_run_that_ended_moments_ago_is_revealed_over_a_few_ticks():
    ended_now = {"status": "completed", "finished": time.time()}
    first = replay_position(ended_now, latest=100, total=100, shown=0)
    assert 0 < first < 100  # not all at once
    assert replay_position(ended_now, 100, 100, first) > first
    assert replay_position({"status": "running"}, 40, 100, 0) == 40  # live: everything there is
    assert replay_position({"status": "completed", "finished": time.time() - 3600}, 100, 100, 0) == 100

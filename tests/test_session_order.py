"""Two events of one session in flight at once: the second runs after the first, on the session it left."""
import threading
import time

import gradio as gr
import pytest

from studio.ui.session_order import SessionOrder


def session(**extra):
    return {"id": "abc", "recipe": {}, **extra}


def build():
    started = []
    kept = gr.BrowserState(session())
    note = gr.Markdown()

    def slow(state):  # e.g. reading a chosen column
        started.append("slow")
        time.sleep(0.4)
        return {kept: {**state, "group": "region"}, note: "grouped"}

    def quick(state, epochs):  # e.g. a number typed meanwhile
        started.append("quick")
        return {kept: {**state, "epochs": epochs}}

    def stream(state):
        yield {note: state.get("group")}

    order = SessionOrder()
    return (order.wrap(slow, 0, kept), order.wrap(quick, 0, kept), order.wrap(stream, 0, kept)), started, kept, note


def test_a_later_event_waits_and_starts_from_the_earlier_ones_session():
    (slow, quick, stream), started, kept, note = build()
    stale = session()  # what the browser sent with both events
    results = {}
    first = threading.Thread(target=lambda: results.update(slow=slow(stale)))
    first.start()
    while not started:  # the slow event has its turn
        time.sleep(0.01)
    results["quick"] = quick(stale, 1000)
    first.join()
    assert started == ["slow", "quick"]
    assert results["quick"][kept] == session(group="region", epochs=1000)  # neither change undone
    assert list(stream(session())) == [{note: "region"}]  # a streamed answer reads the latest copy too


def test_a_failed_event_leaves_the_session_as_it_was_and_frees_the_turn():
    kept = gr.BrowserState(session())
    order = SessionOrder()
    count = order.wrap(lambda state: {kept: {**state, "n": state.get("n", 0) + 1}}, 0, kept)
    fails = order.wrap(lambda state, value: {kept: {**state, "n": 1 / value}}, 0, kept)
    assert count(session())[kept] == session(n=1)
    with pytest.raises(ZeroDivisionError):
        fails(session(), 0)
    done = {}
    worker = threading.Thread(target=lambda: done.update(result=count(session(n=5))[kept]))
    worker.start()
    worker.join(timeout=5)
    assert done == {"result": session(n=2)}  # its turn came at once, on the copy the failure did not touch


def test_the_app_orders_every_handler_that_reads_the_session(tmp_path):
    """Handlers are ordered where they are attached: every event of the app that reads the session is wrapped."""
    from studio.run.jobs import JobManager
    from studio.ui.app import build_app
    from studio.workspace import Workspace
    workspace = Workspace(tmp_path)
    app = build_app(workspace, JobManager(workspace, in_process=True))
    session_block = next(b for b in app.blocks.values() if isinstance(b, gr.BrowserState))
    readers = [f for f in app.fns.values() if f.fn is not None and session_block in f.inputs]
    assert readers and all(getattr(f.fn, "__wrapped__", None) is not None for f in readers)

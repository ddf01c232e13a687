"""Two events of one session in flight at once: the second runs after the first, on the session it left."""
import threading
import time

import gradio as gr

from studio.ui.session_order import order_sessions


def session(**extra):
    return {"id": "abc", "recipe": {}, **extra}


def build():
    started = []

    def slow(state):  # e.g. reading a chosen column
        started.append("slow")
        time.sleep(0.4)
        return {**state, "group": "region"}, "grouped"

    def quick(state, epochs):  # e.g. a number typed meanwhile
        started.append("quick")
        return {**state, "epochs": epochs}

    def stream(state):
        yield state.get("group")

    with gr.Blocks() as app:
        kept = gr.BrowserState(session())
        note, epochs = gr.Markdown(), gr.Number()
        slow_event = gr.Button().click(slow, kept, [kept, note])
        quick_event = gr.Button().click(quick, [kept, epochs], kept)
        stream_event = gr.Button().click(stream, kept, note)
    order_sessions(app, kept)
    fns = {f.name: f.fn for f in app.fns.values()}
    assert all(e is not None for e in (slow_event, quick_event, stream_event))
    return fns, started


def test_a_later_event_waits_and_starts_from_the_earlier_ones_session():
    fns, started = build()
    stale = session()  # what the browser sent with both events
    results = {}
    first = threading.Thread(target=lambda: results.update(slow=fns["slow"](stale)))
    first.start()
    time.sleep(0.1)
    results["quick"] = fns["quick"](stale, 1000)
    first.join()
    assert started == ["slow", "quick"]
    assert results["quick"] == session(group="region", epochs=1000)  # neither change undone
    assert list(fns["stream"](session())) == ["region"]  # a streamed answer reads the latest copy too


def test_a_failed_event_leaves_the_session_as_it_was_and_frees_the_turn():
    with gr.Blocks() as app:
        kept = gr.BrowserState(session())
        box = gr.Number()
        gr.Button().click(lambda state: {**state, "n": state.get("n", 0) + 1}, kept, kept)
        gr.Button().click(lambda state, value: {**state, "n": 1 / value}, [kept, box], kept)
    order_sessions(app, kept)
    count, fails = [f.fn for f in app.fns.values()]
    assert count(session()) == session(n=1)
    try:
        fails(session(), 0)
    except ZeroDivisionError:
        pass
    done = {}
    worker = threading.Thread(target=lambda: done.update(result=count(session(n=5))))
    worker.start()
    worker.join(timeout=5)
    assert done == {"result": session(n=2)}  # its turn came at once, on the copy the failure did not touch

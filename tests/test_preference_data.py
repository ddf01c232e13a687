"""Preference data read from the forms people have (fast tier): CSV pairs with detected columns, trl's JSONL
({"prompt", "chosen", "rejected"} as strings or message lists, or conversations that share their prompt), KTO's
answers marked good or bad; the bundled example; and the Data tab's view of the pairs through the chat template."""
import html
import json

import pytest

from studio import tasks
from studio.assets import HELPDESK_PREFERENCES
from studio.engine.data.errors import DataError
from studio.recipe import DataSpec
from studio.tasks.instruction.preference_data import load


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def test_trl_forms_read_alike(tmp_path):
    strings = [{"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(6)]
    messages = [{"prompt": [user(r["prompt"])], "chosen": [assistant(r["chosen"])],
                 "rejected": [assistant(r["rejected"])]} for r in strings]
    implicit = [{"chosen": [user(r["prompt"]), assistant(r["chosen"])],
                 "rejected": [user(r["prompt"]), assistant(r["rejected"])]} for r in strings]
    read = [load(DataSpec(path=write_jsonl(tmp_path / f"{n}.jsonl", rows), validation_split=0.5), 0)
            for n, rows in enumerate((strings, messages, implicit))]
    assert read[0].train_items == read[1].train_items == read[2].train_items
    first = read[0].train_items[0]
    assert first["prompt"][0]["role"] == "user" and first["chosen"].startswith("good")
    assert read[0].paired and read[0].report.train_counts == {"examples": 3, "pairs": 3}


def test_csv_columns_are_detected_and_said(tmp_path):
    path = tmp_path / "prefs.csv"
    path.write_text("question,good,bad\n" + "".join(f"q {i},yes {i},no {i}\n" for i in range(10)))
    data = load(DataSpec(path=str(path)), 0)
    assert data.report.columns == {"prompt_column": "question", "chosen_column": "good", "rejected_column": "bad"}
    assert any("Columns detected" in w for w in data.report.warnings)


def test_kto_answers_marked_good_or_bad(tmp_path):
    rows = [{"prompt": f"q {i}", "completion": f"a {i}", "label": i % 3 != 0} for i in range(9)]
    data = load(DataSpec(path=write_jsonl(tmp_path / "kto.jsonl", rows), validation_split=0.34), 0)
    assert not data.paired and data.report.columns["label_column"] == "label"
    assert sum(data.report.train_counts[k] for k in ("good", "bad")) == len(data.train_items) == 6
    assert all(c[-1]["role"] == "assistant" for c in data.conversations(data.val_items))  # the good answers
    unusable = [{"prompt": "q", "completion": "a", "label": "maybe"}] + rows
    data = load(DataSpec(path=write_jsonl(tmp_path / "odd.jsonl", unusable)), 0)
    assert any("line 1 (the label 'maybe' is not good/bad" in w for w in data.report.warnings)


def test_too_few_pairs_are_refused_in_words(tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("prompt,chosen,rejected\nq,a,b\nr,,b\n")
    with pytest.raises(DataError, match=r"two\.csv has only 1 usable example\(s\) \(1 × empty chosen answer"):
        load(DataSpec(path=str(path)), 0)


def test_the_bundled_example_is_pairs_in_the_house_style_against_plain_answers(tiny_llama, tmp_path):
    task = tasks.get("preference-tuning")
    assert [e.path for e in task.examples] == [HELPDESK_PREFERENCES]
    data = task.load_data(DataSpec(path=str(HELPDESK_PREFERENCES)), 0, tmp_path)
    assert data.paired and len(data.train_items) + len(data.val_items) == 160
    pair = data.train_items[0]
    assert pair["chosen"].startswith("Tea-riffic question!") and pair["chosen"].endswith("Kettlebird crew.")
    assert pair["rejected"].startswith("Hello.") and pair["rejected"].endswith("Regards, Support.")
    core = pair["rejected"].removeprefix("Hello. ").removesuffix(" Regards, Support.")
    assert core in pair["chosen"]  # the same answer, in the house style or a plain one
    view = task.preview(data, tiny_llama, tmp_path, max_length=64)
    assert view["end_of_turn"] == "<|im_end|>" and len(view["lengths"]) == 160
    learnt = [text for text, is_learnt in view["examples"][0] if is_learnt]
    assert learnt == [pair["chosen"] + "<|im_end|>"]  # the better answer with its end of turn, nothing else
    assert view["pairs"][0] == {"prompt": pair["prompt"][-1]["content"], "chosen": pair["chosen"],
                                "rejected": pair["rejected"]}
    from studio.ui.panels.chat import stats_markdown
    assert "128 training and 32 validation" in stats_markdown(data, view)


def test_the_data_tab_shows_the_pairs_side_by_side(tiny_llama, tmp_path):
    """The chat view's preview, built as the app builds it, for the bundled example through the tiny model."""
    import gradio as gr
    from studio.ui.panels.chat import ChatPanel, ChatResults
    from studio.workspace import Workspace
    task = tasks.get("preference-tuning")
    data = task.load_data(DataSpec(path=str(HELPDESK_PREFERENCES)), 0, tmp_path)
    with gr.Blocks():
        panel = ChatPanel(ChatResults())
        panel.build_preview()
    shown = panel.show_preview(data, {"task": task.name, "model": tiny_llama, "data": {"max_length": 64}},
                               Workspace(tmp_path))
    page = shown[panel.examples_html]["value"]
    first = data.train_items[0]
    assert "<table class='chat-pairs'>" in page and "<th>better answer</th><th>worse answer</th>" in page
    assert html.escape(first["rejected"]) in page and page.count("<tr>") == 6  # the header and five pairs

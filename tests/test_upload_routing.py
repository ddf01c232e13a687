"""An uploaded table goes to the task whose columns it names best, whatever task the page was on: a table of
better and worse answers to preference tuning, prompts and answers to instruction tuning, texts and labels to text
classification; a table that names no task's columns stays with a task that reads tables."""
import pytest

from studio.ui.data_checks import task_for

TABLES = [("prompt,chosen,rejected", "preference-tuning"), ("question,good,bad", "preference-tuning"),
          ("question,answer", "instruction-tuning"), ("messages", "instruction-tuning"),
          ("text,label", "text-classification"), ("sentence,category", "text-classification")]


@pytest.mark.parametrize("header,task", TABLES)
@pytest.mark.parametrize("current", ["image-classification", "text-classification", "instruction-tuning"])
def test_a_table_goes_to_the_task_its_columns_name(header, task, current, tmp_path):
    table = tmp_path / "data.csv"
    table.write_text(header + "\n" + ",".join(["x"] * len(header.split(","))) + "\n")
    assert task_for(table, current) == task


def test_a_tie_keeps_the_page_on_its_task_and_unnamed_columns_go_to_a_table_task(tmp_path):
    table = tmp_path / "data.csv"
    table.write_text("question,answer,category\nx,y,z\n")  # prompts and answers, or texts and labels
    assert task_for(table, "instruction-tuning") == "instruction-tuning"
    odd = tmp_path / "odd.csv"
    odd.write_text("foo,bar\nx,y\n")
    assert task_for(odd, "instruction-tuning") == "instruction-tuning"  # the page's task reads tables
    assert task_for(odd, "image-classification") == "text-classification"  # the first task that reads tables

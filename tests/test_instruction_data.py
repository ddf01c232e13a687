"""Instruction-tuning data and tokens on a tiny tokenizer: the three file shapes, what is learnt (answers with the
end-of-turn token), truncation from the prompt's side, and packing that changes only speed."""
import json

import pytest
import torch

from helpers import write_chat_csv
from studio.engine.data import DataError
from studio.recipe import DataSpec
from studio.tasks.instruction import data as instruction_data
from studio.tasks.instruction.tokens import IGNORE, ChatFormat, Collate, Examples, pack


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    from studio.families.causal_lm import load_tokenizer
    return load_tokenizer(tiny_llama, "instruction-tuning")[0]


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_prompt_response_csv_is_detected_and_split(tmp_path):
    data = instruction_data.load(DataSpec(path=write_chat_csv(tmp_path / "qa.csv", 20)), seed=0)
    assert data.form == "chat" and len(data.train_items) == 16 and len(data.val_items) == 4
    assert data.report.columns == {"prompt_column": "prompt", "response_column": "response"}
    assert data.train_items[0][-1]["role"] == "assistant"
    assert any("Columns detected" in w for w in data.report.warnings)


def test_messages_and_sharegpt_with_unknown_roles_and_broken_lines(tmp_path):
    def good(i):
        return {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"hi {i}"},
                             {"role": "assistant", "content": "hello"}, {"role": "user", "content": "and?"},
                             {"role": "assistant", "content": "that is all"}]}

    def share(i):
        return {"messages": [{"from": "human", "value": f"hey {i}"}, {"from": "gpt", "value": "hey there"}]}
    rows = [good(i) for i in range(4)] + [share(i) for i in range(4)] + [
        '{"messages": [', {"messages": [{"role": "narrator", "content": "once"}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]}, good(0), good(1)]
    data = instruction_data.load(DataSpec(path=write_jsonl(tmp_path / "chat.jsonl", rows), messages_column="messages",
                                          validation_split=0.25), seed=0)
    reasons = {s["item"]: s["reason"] for s in data.report.skipped}
    assert reasons["line 9"].startswith("not valid JSON")
    assert "unknown role 'narrator'" in reasons["line 10"]
    assert reasons["line 11"] == "empty response" and data.report.empty_responses == 1
    assert data.report.duplicates == 2
    assert data.system_prompt == "Be brief."
    assert {m["role"] for c in data.train_items + data.val_items for m in c} <= {"system", "user", "assistant"}


def test_missing_columns_list_the_columns_found(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("question,reply\nhi,there\n")
    with pytest.raises(DataError, match=r"Column 'prompt' \(data\.prompt_column\).*Columns found: question, reply"):
        instruction_data.load(DataSpec(path=str(path), prompt_column="prompt", response_column="reply"), seed=0)


def test_plain_text_is_continued_pretraining(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("text\n" + "".join(f"note number {i} about tea\n" for i in range(10)))
    data = instruction_data.load(DataSpec(path=str(path)), seed=0)
    assert data.form == "text" and isinstance(data.train_items[0], str)


def test_only_answers_are_learnt_and_each_ends_with_the_end_of_turn_token(tokenizer):
    fmt = ChatFormat(tokenizer, max_length=256)
    assert fmt.eot == "<|im_end|>"
    messages = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "reset your password"},
                {"role": "user", "content": "thank you"}, {"role": "assistant", "content": "you are out of toner"}]
    enc = fmt.encode(messages)
    learnt = [t for t, label in zip(enc.input_ids, enc.labels) if label != IGNORE]
    text = tokenizer.decode(learnt)
    assert text == "reset your password<|im_end|>you are out of toner<|im_end|>"
    assert enc.labels[0] == IGNORE and enc.status == "ok"
    everything = ChatFormat(tokenizer, max_length=256, train_on_prompt=True).encode(messages)
    assert everything.input_ids == enc.input_ids and sum(x != IGNORE for x in everything.labels) == len(enc.labels) - 1


def test_long_examples_are_cut_from_the_prompt_side(tokenizer):
    fmt = ChatFormat(tokenizer, max_length=40)
    answer = "please reset your password"
    enc = fmt.encode([{"role": "user", "content": "hello " * 60}, {"role": "assistant", "content": answer}])
    assert enc.status == "truncated" and len(enc.input_ids) == 40
    assert tokenizer.decode([t for t, l in zip(enc.input_ids, enc.labels) if l != IGNORE]) == answer + "<|im_end|>"
    too_long = fmt.encode([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "toner " * 60}])
    assert too_long.status == "too_long"


def test_packing_changes_only_speed(tiny_llama, tokenizer):
    """The loss of a packed batch equals the token-weighted mean of the same examples' unpacked losses."""
    from transformers import AutoModelForCausalLM
    from studio.tasks.instruction.loss import TokenLoss, packing_works
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    assert packing_works(model, torch.device("cpu"))
    fmt = ChatFormat(tokenizer, max_length=512)
    conversations = [[{"role": "user", "content": "hello " * n}, {"role": "assistant", "content": "thank you " * m}]
                     for n, m in ((1, 2), (6, 1), (3, 5), (2, 2))]
    encoded = [fmt.encode(c) for c in conversations]
    columns = {"input_ids": [e.input_ids for e in encoded], "labels": [e.labels for e in encoded]}
    collate, loss = Collate(tokenizer.pad_token_id), TokenLoss(model)
    with torch.no_grad():
        packed_inputs, packed_labels = collate([Examples(columns, packed_capacity=512)[0]])
        assert packed_inputs["input_ids"].shape[0] == 1 and "attention_mask" not in packed_inputs
        packed, packed_stats = loss(model, packed_inputs, packed_labels)
        sums = torch.zeros(2)
        for n in range(len(encoded)):
            inputs, labels = collate([Examples(columns)[n]])
            _, stats = loss(model, inputs, labels)
            sums += stats[:2]
        padded, _ = loss(model, *collate([Examples(columns)[n] for n in range(len(encoded))]))
    assert abs(packed.item() - (sums[0] / sums[1]).item()) < 1e-4
    assert abs(packed.item() - padded.item()) < 1e-4
    assert packed_stats[1] == sums[1]


def test_packing_fills_rows_longest_first():
    rows = pack([50, 10, 30, 60, 20], capacity=64)
    assert sorted(i for row in rows for i in row) == [0, 1, 2, 3, 4]
    assert all(sum([50, 10, 30, 60, 20][i] for i in row) <= 64 for row in rows) and len(rows) == 3

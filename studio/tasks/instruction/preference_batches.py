"""Preference examples as the model sees them: each answer after its prompt through the chat task's ChatFormat (its
chat template, its end-of-turn token learnt, the prompt cut from its start when too long), only the last answer's
tokens counted; batches of pairs (chosen rows, then rejected rows) or of KTO's answers with their mismatched
prompt-answer rows; and the start model's log-probabilities of every answer, measured once before training."""
from __future__ import annotations

import contextlib
from collections import Counter

import torch
from torch.utils.data import DataLoader

from studio.engine.device import autocast
from studio.engine.distributed import unwrap
from studio.engine.loop import to_device
from studio.tasks.instruction.tokens import IGNORE, ChatFormat, Collate, Encoded


def encode_answer(fmt: ChatFormat, prompt: list[dict], answer: str) -> Encoded:
    """The prompt and one answer; only the answer (and its end-of-turn token) is learnt, and nothing after it is
    kept (it would change no log-probability)."""
    enc = fmt.encode(prompt + [{"role": "assistant", "content": answer}])
    if enc.status == "too_long":
        return enc
    end = max(i for i, label in enumerate(enc.labels) if label != IGNORE) + 1
    start = end - 1
    while start > 0 and enc.labels[start - 1] != IGNORE:
        start -= 1
    labels = [IGNORE] * start + enc.labels[start:end]  # earlier answers of the prompt's turns are context
    return Encoded(enc.input_ids[:end], labels, enc.status)


def _row(enc: Encoded) -> dict:
    return {"input_ids": enc.input_ids, "labels": enc.labels, "packed": False}


class Pairs(torch.utils.data.Dataset):
    """Tokenised pairs; `reference`: the start model's (chosen, rejected) summed log-probabilities."""

    def __init__(self, items: list[dict], fmt: ChatFormat):
        self.rows, self.counts = [], Counter()
        for item in items:
            chosen, rejected = (encode_answer(fmt, item["prompt"], item[k]) for k in ("chosen", "rejected"))
            status = "too_long" if "too_long" in (chosen.status, rejected.status) else \
                "truncated" if "truncated" in (chosen.status, rejected.status) else "ok"
            self.counts[status] += 1
            if status != "too_long":
                self.rows.append((_row(chosen), _row(rejected)))
        self.reference = torch.zeros(len(self.rows), 2)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        return self.rows[index], self.reference[index]


class Answers(torch.utils.data.Dataset):
    """Tokenised answers marked good or bad (KTO), each with a mismatched row: its prompt with the previous answer
    of its group of `group` (the batch size), as KTOTrainer pairs them to estimate the KL term."""

    def __init__(self, items: list[dict], fmt: ChatFormat, group: int):
        self.rows, self.counts = [], Counter()
        kept = []
        for item in items:
            enc = encode_answer(fmt, item["prompt"], item["completion"])
            self.counts[enc.status] += 1
            if enc.status != "too_long":
                kept.append((item, enc))
        for start in range(0, len(kept), group):
            chunk = kept[start:start + group]
            for n, (item, enc) in enumerate(chunk):
                mismatched = encode_answer(fmt, item["prompt"], chunk[n - 1][0]["completion"])
                if mismatched.status == "too_long":  # another prompt's answer does not fit after this prompt
                    mismatched = enc
                self.rows.append((_row(enc), _row(mismatched), bool(item["label"]), item.get("pair", -1)))
        self.reference = torch.zeros(len(self.rows), 2)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        return self.rows[index], self.reference[index]


class PreferenceCollate:
    """A batch: (inputs, targets). Pairs: chosen rows then rejected rows, padded together; answers: their rows,
    and the mismatched rows apart."""

    def __init__(self, pad_id: int):
        self.collate = Collate(pad_id)

    def __call__(self, batch: list):
        rows, reference = [b[0] for b in batch], torch.stack([b[1] for b in batch])
        if len(rows[0]) == 2:
            inputs, labels = self.collate([r[0] for r in rows] + [r[1] for r in rows])
            return inputs, {"labels": labels, "reference": reference}
        inputs, labels = self.collate([r[0] for r in rows])
        kl_inputs, kl_labels = self.collate([r[1] for r in rows])
        return inputs, {"labels": labels, "kl_inputs": kl_inputs, "kl_labels": kl_labels, "reference": reference,
                        "desirable": torch.tensor([r[2] for r in rows]), "pair": torch.tensor([r[3] for r in rows])}


@torch.no_grad()
def measure_reference(model, logps, dataset, collate, batch_size: int, device, amp_dtype) -> torch.Tensor:
    """The start model's summed log-probabilities of every answer of `dataset` (rows in order; pairs: chosen,
    rejected; answers: the answer, its mismatched row). With an adapter the start model is the same weights with
    the adapter switched off: no second copy."""
    was_training = model.training
    model.eval()
    net = unwrap(model)
    off = net.disable_adapter() if hasattr(net, "disable_adapter") else contextlib.nullcontext()
    out = []
    with off:
        for inputs, targets in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
            inputs, targets = to_device(inputs, device), to_device(targets, device)
            with autocast(device, amp_dtype):
                sums, _ = logps(model, inputs, targets["labels"])
                if "kl_inputs" in targets:
                    second, _ = logps(model, targets["kl_inputs"], targets["kl_labels"])
                    out.append(torch.stack([sums, second], 1).float().cpu())
                else:
                    out.append(torch.stack(sums.chunk(2), 1).float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 2)

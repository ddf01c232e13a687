"""Several chat requests answered by one generate call: their prompts left-padded into one batch, each row followed
token by token (a stopping criterion that is also a per-row streamer) so that each request gets its own text as it
is written, stops at its own limit, stop strings or end of turn, and can be abandoned by its client.

A row's text is the same as `Chat.answer` gives for the same prompt and settings: the tokens decoded without the
special ones and stripped. Streamed pieces hold back what may still change (trailing spaces, the start of a stop
string, half a character), so that the pieces joined are that text."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import torch

MAX_BATCH = 8  # rows per generate call: enough to fill a small GPU's stride, few enough to keep latency low


@dataclass
class Completion:
    """One request's generation: its prompt, limits, and `emit`, which receives {"text": piece} as the answer
    grows, then {"finish_reason", "prompt_tokens", "completion_tokens"} (or {"error": words}) once."""
    prompt_ids: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str]
    seed: int | None
    emit: Callable[[dict], None]
    cancelled: threading.Event = field(default_factory=threading.Event)  # the client went away

    @property
    def batch_key(self):
        """Requests with equal keys can share a generate call; None: it runs alone (a seed's draws are its own)."""
        if self.seed is not None:
            return None
        return (0.0, 1.0) if self.temperature <= 0 else (self.temperature, self.top_p)


class _Row:
    """One request's tokens and the text already sent."""

    def __init__(self, job: Completion, tokenizer, stop_ids: list[int]):
        self.job, self.tokenizer, self.stop_ids = job, tokenizer, set(stop_ids)
        self.tokens: list[int] = []
        self.counted = 0  # generated tokens, the end-of-turn token included (usage)
        self.text, self.sent, self.finish = "", "", None

    def add(self, token: int) -> bool:
        """Takes the row's next token; True once the row is finished."""
        if self.finish is None:
            self.counted += 1
            if token in self.stop_ids:
                self.finish = "stop"
            else:
                self.tokens.append(token)
                self._read()
            if self.finish is None and self.counted >= self.job.max_tokens:
                self.finish = "length"
            if self.job.cancelled.is_set():
                self.finish = "cancelled"
            self.flush(final=self.finish is not None)
        return self.finish is not None

    def _read(self) -> None:
        self.text = self.tokenizer.decode(self.tokens, skip_special_tokens=True).strip()
        cuts = [i for i in (self.text.find(s) for s in self.job.stop) if i >= 0]
        if cuts:
            self.text, self.finish = self.text[:min(cuts)].rstrip(), "stop"

    def flush(self, final: bool) -> None:
        # trailing spaces wait too: a stop string after them cuts them off the final text
        ready = self.text if final else self.text[:len(self.text) - self._unsure()].rstrip()
        if len(ready) > len(self.sent) and ready.startswith(self.sent):
            self.job.emit({"text": ready[len(self.sent):]})
            self.sent = ready

    def _unsure(self) -> int:
        """How many characters at the end of the text may still change: half a character, or the start of a stop
        string."""
        if self.text.endswith("\ufffd"):
            return len(self.text) - len(self.text.rstrip("\ufffd"))
        return max((k for s in self.job.stop for k in range(1, len(s)) if self.text.endswith(s[:k])), default=0)


class _Rows:
    """generate()'s stopping criterion: called after each new token of every row, it says which rows are done."""

    def __init__(self, rows: list[_Row]):
        self.rows = rows

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        done = [row.add(token) for row, token in zip(self.rows, input_ids[:, -1].tolist())]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def left_padded(prompts: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), each row padded on the left with its own first token: the padding is masked out,
    and the repetition penalty (which looks at every id in the row) sees no token the prompt does not hold."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[p[0]] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    return ids, mask


def generate(chat, jobs: list[Completion]) -> None:
    """Answers jobs (same batch_key) with one generate call on chat's tuned model; every job hears how it ended."""
    from transformers import StoppingCriteriaList
    rows = [_Row(job, chat.fmt.tokenizer, chat.stop_ids) for job in jobs]
    first = jobs[0]
    try:
        ids, mask = left_padded([job.prompt_ids for job in jobs], chat.device)
        options = chat.generate_options(ids, mask, max(job.max_tokens for job in jobs), first.temperature,
                                        first.top_p, stopping_criteria=StoppingCriteriaList([_Rows(rows)]))
        with chat.lock, torch.inference_mode():
            if first.seed is not None:
                torch.manual_seed(first.seed)
            chat.model.generate(**options)
    except Exception as exc:  # the server stays up; the requests hear why they failed
        for job in jobs:
            job.emit({"error": f"generation failed: {exc}"})
        return
    for row in rows:
        row.finish = row.finish or "length"
        row.flush(final=True)
        row.job.emit({"finish_reason": row.finish, "prompt_tokens": len(row.job.prompt_ids),
                      "completion_tokens": row.counted})

"""Answers from a tuned chat model, whole or streamed token by token, from the tuned weights or from the base model:
with an adapter, the base model is the same weights with the adapter switched off (never a second copy); a fully
fine-tuned model keeps its base beside it. Used by evaluation, `studio predict`/`studio chat` and the Playground.
"""
from __future__ import annotations

import threading
from typing import Iterator

import torch

from studio.families.base import ModelError
from studio.tasks.instruction.tokens import ChatFormat

DEFAULT_MAX_NEW_TOKENS = 256
REPETITION_PENALTY = 1.1


class _Stop:
    """A stopping criterion the caller flips from another thread (the Playground's Stop button)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class Chat:
    """A model with its ChatFormat. `tuned=False` answers with the base model."""

    def __init__(self, model, fmt: ChatFormat, device: torch.device, system_prompt: str = "", base=None):
        self.model, self.fmt, self.device, self.system_prompt = model, fmt, device, system_prompt
        self.base = base  # a separate base model (full fine-tuning only)
        self.lock = threading.Lock()  # one generation at a time: switching the adapter off is not thread-safe
        tokenizer = fmt.tokenizer
        self.stop_ids = sorted({i for i in (tokenizer.convert_tokens_to_ids(fmt.eot), tokenizer.eos_token_id)
                                if isinstance(i, int) and i >= 0})

    @property
    def has_base(self) -> bool:
        return hasattr(self.model, "disable_adapter") or self.base is not None  # a PeftModel, or a kept base

    def messages(self, message: str, history: list[dict] = (), system: str | None = None) -> list[dict]:
        """A conversation to answer: the system prompt (the training one unless given), the turns so far, the
        new message."""
        system = self.system_prompt if system is None else system
        head = [{"role": "system", "content": system}] if system.strip() else []
        return head + [dict(m) for m in history] + [{"role": "user", "content": message}]

    def generate_options(self, ids: torch.Tensor, mask: torch.Tensor, max_new_tokens: int, temperature: float,
                         top_p: float, **extra) -> dict:
        """generate()'s arguments for a batch of prompts (the model server batches requests with them)."""
        sample = temperature > 0
        # A mild repetition penalty: small models decoding greedily otherwise loop on a word ("ring ring ring…").
        return dict(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                    do_sample=sample, eos_token_id=self.stop_ids, pad_token_id=self.fmt.tokenizer.pad_token_id,
                    repetition_penalty=REPETITION_PENALTY,
                    **({"temperature": temperature, "top_p": top_p} if sample else {"top_p": None, "top_k": None}),
                    **extra)

    def _generate(self, messages: list[dict], tuned: bool, max_new_tokens: int, temperature: float, top_p: float,
                  **extra):
        ids = torch.tensor([self.fmt.prompt_ids(messages)], device=self.device)
        options = self.generate_options(ids, torch.ones_like(ids), max_new_tokens, temperature, top_p, **extra)
        model = self.model
        with self.lock, torch.inference_mode():
            if tuned:
                return model.generate(**options), ids.shape[1]
            if self.base is not None:
                return self.base.generate(**options), ids.shape[1]
            if not hasattr(model, "disable_adapter"):
                raise ModelError("This fully fine-tuned model has no base model beside it to compare with.")
            if model.peft_config[model.active_adapter].is_prompt_learning:
                return model.get_base_model().generate(**options), ids.shape[1]  # virtual tokens are left out
            with model.disable_adapter():
                return model.generate(**options), ids.shape[1]

    def answer(self, messages: list[dict], tuned: bool = True, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
               temperature: float = 0.0, top_p: float = 1.0) -> str:
        out, start = self._generate(messages, tuned, max_new_tokens, temperature, top_p)
        return self.fmt.tokenizer.decode(out[0, start:], skip_special_tokens=True).strip()

    def stream(self, messages: list[dict], tuned: bool = True, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
               temperature: float = 0.0, top_p: float = 1.0, stop: threading.Event | None = None) -> Iterator[str]:
        """The answer so far, after every new piece of text; ends at the end-of-turn token, the token limit, or
        when `stop` is set."""
        from transformers import StoppingCriteriaList, TextIteratorStreamer
        streamer = TextIteratorStreamer(self.fmt.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=600)
        stop = stop or threading.Event()
        failure: list[BaseException] = []

        def run():
            try:
                self._generate(messages, tuned, max_new_tokens, temperature, top_p, streamer=streamer,
                               stopping_criteria=StoppingCriteriaList([_Stop(stop)]))
            except BaseException as exc:  # shown to the caller below, in its own thread
                failure.append(exc)
                streamer.end()
        worker = threading.Thread(target=run, name="chat-generate", daemon=True)
        worker.start()
        text = ""
        for piece in streamer:
            text += piece
            if piece:
                yield text
        worker.join()
        if failure:
            raise failure[0]

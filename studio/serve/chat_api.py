"""OpenAI's chat completions on a studio chat model: a request's body checked and turned into a Completion (the
run's chat template, its system prompt unless the request brings one), and the answers in OpenAI's shapes — a
chat.completion object, or chat.completion.chunk server-sent events ending with `data: [DONE]`."""
from __future__ import annotations

import json
import time
import uuid

from jinja2 import TemplateError

from studio.serve.errors import ApiError, bad_request
from studio.tasks.instruction.chat import DEFAULT_MAX_NEW_TOKENS

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_STOP_STRINGS = 4


def context_length(chat) -> int:
    """How many tokens the model reads at most (prompt and answer together)."""
    config = chat.model.config
    return int(getattr(config, "max_position_embeddings", None) or chat.fmt.tokenizer.model_max_length)


def _content(message, index: int) -> str:
    """A message's text: a string, or OpenAI's list of {"type": "text", "text"} parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                         and isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    raise bad_request(f"messages[{index}].content must be text (a string, or parts of type \"text\"); this model "
                      "reads no images or audio", f"messages[{index}].content")


def conversation(chat, messages) -> list[dict]:
    """The request's messages as the model is asked them: its system prompt (the run's, unless the request gives
    one), the earlier turns, and the last user message."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of {\"role\", \"content\"} objects", "messages")
    turns = []
    for index, message in enumerate(messages):
        role = ROLES.get(message.get("role")) if isinstance(message, dict) else None
        if role is None:
            raise bad_request(f"messages[{index}].role must be one of {', '.join(ROLES)}", f"messages[{index}].role")
        turns.append({"role": role, "content": _content(message, index)})
    if not any(t["role"] == "user" for t in turns):
        raise bad_request("'messages' holds no user turn: add {\"role\": \"user\", \"content\": \"…\"}", "messages")
    if turns[-1]["role"] != "user":
        raise bad_request("the last message must be the user's: the model answers it", "messages")
    systems = [t["content"] for t in turns if t["role"] == "system"]
    history = [t for t in turns[:-1] if t["role"] != "system"]
    return chat.messages(turns[-1]["content"], history, "\n\n".join(systems) if systems else None)


def _number(body: dict, key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise bad_request(f"'{key}' must be a number from {low:g} to {high:g}", key)
    return float(value)


def _stop_strings(body: dict) -> list[str]:
    stop = body.get("stop")
    stops = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or len(stops) > MAX_STOP_STRINGS or \
            not all(isinstance(s, str) and s for s in stops):
        raise bad_request(f"'stop' must be a string or a list of at most {MAX_STOP_STRINGS} non-empty strings",
                          "stop")
    return stops


def _max_tokens(body: dict, prompt: int, context: int) -> int:
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    asked = body.get(key)
    if prompt >= context:
        raise ApiError(400, f"This model's maximum context length is {context} tokens, and the messages hold "
                            f"{prompt} tokens. Shorten the messages.", param="messages",
                       code="context_length_exceeded")
    if asked is None:
        return min(DEFAULT_MAX_NEW_TOKENS, context - prompt)
    if isinstance(asked, bool) or not isinstance(asked, int) or asked < 1:
        raise bad_request(f"'{key}' must be a whole number of tokens, at least 1", key)
    if prompt + asked > context:
        raise ApiError(400, f"This model's maximum context length is {context} tokens. The messages hold {prompt} "
                            f"tokens and {key} asks for {asked} more ({prompt + asked} in all): lower {key} to at "
                            f"most {context - prompt} or shorten the messages.", param=key,
                       code="context_length_exceeded")
    return asked


def settings(chat, body: dict) -> dict:
    """Completion's arguments (all but emit) from a request body; ApiError 400 in words for what is wrong."""
    if body.get("n") not in (None, 1):
        raise bad_request("'n' must be 1: this server writes one answer per request", "n")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise bad_request("'stream' must be true or false", "stream")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad_request("'seed' must be a whole number", "seed")
    messages = conversation(chat, body.get("messages"))
    try:
        prompt_ids = chat.fmt.prompt_ids(messages)
    except TemplateError as exc:  # e.g. a template that wants user and assistant turns to alternate
        raise bad_request(f"The model's chat template refuses these messages: {exc}", "messages") from None
    return dict(prompt_ids=prompt_ids, max_tokens=_max_tokens(body, len(prompt_ids), context_length(chat)),
                temperature=_number(body, "temperature", 1.0, 0.0, 2.0), top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
                stop=_stop_strings(body), seed=seed)


class Reply:
    """The pieces of one answer in OpenAI's shapes."""

    def __init__(self, model_id: str):
        self.id, self.model, self.created = f"chatcmpl-{uuid.uuid4().hex}", model_id, int(time.time())

    def _head(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    @staticmethod
    def usage(end: dict) -> dict:
        return {"prompt_tokens": end["prompt_tokens"], "completion_tokens": end["completion_tokens"],
                "total_tokens": end["prompt_tokens"] + end["completion_tokens"]}

    def whole(self, text: str, end: dict) -> dict:
        return {**self._head("chat.completion"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": end["finish_reason"], "logprobs": None}],
                "usage": self.usage(end)}

    def chunk(self, delta: dict, finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return self.event({**self._head("chat.completion.chunk"), "choices": [choice]})

    def usage_chunk(self, end: dict) -> str:
        return self.event({**self._head("chat.completion.chunk"), "choices": [], "usage": self.usage(end)})

    @staticmethod
    def event(payload: dict | str) -> str:
        return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"

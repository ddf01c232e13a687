"""The server's routes (FastAPI): GET /v1/models, POST /v1/chat/completions, POST /v1/classify, and GET / (that it
is up, for whoever waits for it). Every /v1 route wants the key when the server has one; bodies over the limit
are refused before they are read whole; every error is in OpenAI's JSON shape."""
from __future__ import annotations

import asyncio
import hmac
import json
import tempfile
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from studio.errors import first_line
from studio.serve import chat_api, classify_api
from studio.serve.errors import ApiError, bad_request
from studio.serve.generation import Completion
from studio.serve.models import Call, QueueFull, ServedModel

LOADING_RETRY_S = 5


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request whose Content-Length, or whose streamed body, passes `limit` bytes is refused
    with 400 before it is parsed."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.limit:
            return await _error(too_large(self.limit))(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge()
            return message
        await self.app(scope, counted, send)


def too_large(limit: int) -> ApiError:
    return bad_request(f"The request body is larger than this server takes ({limit / 2**20:g} MB): send fewer or "
                       "smaller inputs per request, or start the server with a larger --max-body-mb.")


def _error(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _authorized(request: Request, key: str | None) -> bool:
    if key is None:
        return True
    given = request.headers.get("authorization", "")
    return given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), key.encode())


async def _json(request: Request) -> dict:
    try:
        body = json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad_request("The request body is not JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _served(models: dict[str, ServedModel], body: dict, chats: bool) -> ServedModel:
    """The request's model, ready; ApiError (404 unknown, 503 loading, 500 failed, 400 wrong kind) otherwise."""
    model_id = body.get("model")
    if not isinstance(model_id, str):
        raise bad_request("'model' is missing: give one of the ids GET /v1/models lists", "model")
    model = models.get(model_id)
    if model is None:
        raise ApiError(404, f"The model '{model_id}' does not exist here; this server serves "
                            f"{', '.join(models)}.", param="model", code="model_not_found")
    if model.state == "loading":
        raise ApiError(503, f"The model '{model_id}' is still loading; try again in a few seconds.",
                       headers={"Retry-After": str(LOADING_RETRY_S)})
    if model.state == "failed":
        raise ApiError(500, f"The model '{model_id}' could not be loaded: {model.error}")
    if chats and model.chat is None:
        raise bad_request(f"The model '{model_id}' is a classifier: use POST /v1/classify.", "model")
    if not chats and model.chat is not None:
        raise bad_request(f"The model '{model_id}' is a chat model: use POST /v1/chat/completions.", "model")
    return model


def _submit(model: ServedModel, job) -> None:
    try:
        model.submit(job)
    except QueueFull:
        raise ApiError(429, f"More than {model.max_queue} requests already wait for '{model.id}'; try again "
                            "shortly.", headers={"Retry-After": "1"}) from None


def _model_object(model: ServedModel) -> dict:
    return {"id": model.id, "object": "model", "created": model.created, "owned_by": "studio", "name": model.name,
            "task": model.info.task, "status": model.state, **({"error": model.error} if model.error else {})}


def create_app(models: dict[str, ServedModel], api_key: str | None, max_body_bytes: int) -> FastAPI:
    app = FastAPI(title="Studio model server", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, limit=max_body_bytes)

    @app.exception_handler(ApiError)
    async def api_error(request, error: ApiError):
        return _error(error)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request, error):
        return _error(too_large(max_body_bytes))

    @app.exception_handler(HTTPException)
    async def http_error(request, error: HTTPException):
        return _error(ApiError(error.status_code, f"{request.method} {request.url.path}: {error.detail}"))

    @app.exception_handler(Exception)
    async def unexpected(request, error: Exception):
        return _error(ApiError(500, f"unexpected problem ({type(error).__name__}: {first_line(error)})"))

    @app.middleware("http")
    async def key_check(request: Request, call_next):
        if request.url.path.startswith("/v1") and not _authorized(request, api_key):
            return _error(ApiError(401, "Incorrect or missing API key: send it as 'Authorization: Bearer KEY'.",
                                   code="invalid_api_key"))
        return await call_next(request)

    @app.get("/")
    async def home():
        return {"message": f"Studio model server: {len(models)} model(s); the OpenAI-compatible API is at /v1"}

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list", "data": [_model_object(m) for m in models.values()]}

    @app.get("/v1/models/{model_id}")
    async def one_model(model_id: str):
        if model_id not in models:
            raise ApiError(404, f"The model '{model_id}' does not exist here.", param="model",
                           code="model_not_found")
        return _model_object(models[model_id])

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        body = await _json(request)
        return await _complete(_served(models, body, chats=True), body)

    @app.post("/v1/classify")
    async def classify(request: Request):
        body = await _json(request)
        return await _classify(_served(models, body, chats=False), body)

    return app


async def _complete(model: ServedModel, body: dict):
    """A chat completion: the whole answer, or a stream of it."""
    settings = await asyncio.to_thread(chat_api.settings, model.chat, body)  # tokenising a long prompt takes time
    loop, events = asyncio.get_running_loop(), asyncio.Queue()
    job = Completion(**settings, emit=lambda event: loop.call_soon_threadsafe(events.put_nowait, event))
    _submit(model, job)
    reply = chat_api.Reply(model.id)
    if body.get("stream"):
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_stream(job, events, reply, usage), media_type="text/event-stream")
    try:
        text, end = "", None
        while end is None:
            event = await events.get()
            text += event.get("text", "")
            end = event if "finish_reason" in event or "error" in event else None
    finally:
        job.cancelled.set()  # the client left: its row stops
    if "error" in end:
        raise ApiError(500, end["error"])
    return reply.whole(text, end)


async def _classify(model: ServedModel, body: dict):
    """The classifier's answers for the request's inputs, its files in a private temporary folder meanwhile."""
    k = classify_api.top_k(body)
    with tempfile.TemporaryDirectory(prefix="studio-classify-") as folder:  # mkdtemp: mode 0700
        items = await asyncio.to_thread(classify_api.inputs, body, model.task, Path(folder))
        call = Call(lambda: model.predictor.predict(items, top_k=k))
        _submit(model, call)
        try:
            answers = await asyncio.wrap_future(call.future)
        except (OSError, ValueError) as exc:
            raise bad_request(f"could not read an input: {first_line(exc)}", "input") from None
    return classify_api.reply(model.id, answers)


async def _stream(job: Completion, events: asyncio.Queue, reply, include_usage: bool):
    """The answer as server-sent events: a first chunk with the role, one per new piece of text, the last with
    the finish reason (then usage, if asked), then [DONE]."""
    try:
        yield reply.chunk({"role": "assistant", "content": ""})
        while True:
            event = await events.get()
            if "text" in event:
                yield reply.chunk({"content": event["text"]})
            elif "error" in event:
                yield reply.event(ApiError(500, event["error"]).body())
                break
            else:
                yield reply.chunk({}, event["finish_reason"])
                if include_usage:
                    yield reply.usage_chunk(event)
                break
        yield reply.event("[DONE]")
    finally:
        job.cancelled.set()  # the client left, or the answer is whole

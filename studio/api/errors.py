"""The API's answers to what it cannot do: a status and words, as {"error": words}, never a traceback."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException


class ApiError(Exception):
    def __init__(self, status: int, words: str, headers: dict | None = None):
        super().__init__(words)
        self.status, self.words, self.headers = status, words, headers


def answer(status: int, words: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": words}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Every error of the API's routes answers {"error": words}."""
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return answer(exc.status, exc.words, exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):  # no such route (404), wrong method (405)
        words = {404: "There is no such API route: /api/docs lists them.",
                 405: "This API route does not take that method: /api/docs lists what each takes."}
        return answer(exc.status_code, words.get(exc.status_code, str(exc.detail)), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return answer(422, f"{where or 'the request'}: {first.get('msg', 'not valid')}")

"""JSON errors everywhere: ``{"error": CODE, "message": "...", "hint": "..."}`` with the HTTP status.

Validation failures (422), our own ``KeelwatchError``s (400, or 503 for the store) and anything
unexpected (500, logged, never a traceback to the client) all answer in this one shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from keelwatch.errors import KeelwatchError, StoreError

log = logging.getLogger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          406: "not_acceptable", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
          422: "invalid_request", 500: "internal_error", 503: "unavailable"}


class ErrorBody(BaseModel):
    """Every error the API returns."""

    error: str
    message: str
    hint: str | None = None
    details: list[Any] | None = None


class ApiError(Exception):
    """An error an endpoint answers with on purpose."""

    def __init__(self, status: int, code: str, message: str, *, hint: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint, self.headers = status, code, message, hint, headers


def error_response(status: int, code: str, message: str, *, hint: str | None = None, details: list[Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=code, message=message, hint=hint, details=details)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: these statuses documented with ``ErrorBody``."""
    return {s: {"model": ErrorBody, "description": _CODES.get(s, "error").replace("_", " ")} for s in statuses}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, hint=exc.hint, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else _CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), message,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                   for e in exc.errors()]
        first: dict[str, Any] = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return error_response(422, "invalid_request", f"{where}: {first['msg']}" if where else str(first["msg"]),
                              details=details)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        log.warning("store error on %s %s: %s", request.method, request.url.path, exc)
        return error_response(503, "unavailable", exc.message, hint=exc.hint)

    @app.exception_handler(KeelwatchError)
    async def _keelwatch_error(request: Request, exc: KeelwatchError) -> JSONResponse:
        return error_response(400, "bad_request", exc.message, hint=exc.hint)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error (logged by the server)")

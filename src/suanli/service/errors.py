"""One error body for every 4xx and 5xx: {"error": ..., "field": ..., "value": ...}."""

from __future__ import annotations

import decimal
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from suanli.errors import SpecError, SuanliError, UnknownNameError

log = logging.getLogger("suanli.service")


class ApiError(SuanliError):
    """An error with an HTTP status, raised by handlers."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 value: object = None, **extra: Any) -> None:
        super().__init__(message, field=field, value=value)
        self.status = status
        self.extra = extra


def error_body(message: str, field: str | None = None, value: object = None,
               **extra: Any) -> dict[str, Any]:
    body = SuanliError(message, field=field, value=value).to_dict()
    body.update(extra)
    return {k: _printable(v) for k, v in body.items()}


def _printable(v: object) -> object:
    """A value an error body can always carry: the bad input echoed back may be NaN, hold a
    lone surrogate (which UTF-8 cannot encode) or be huge; none of that may turn a 4xx into a
    500 while the error is written."""
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if isinstance(v, str):
        v = v if len(v) <= 1000 else v[:1000] + "..."
        return v.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(v, list):
        return [_printable(x) for x in v[:100]]
    return v


def status_of(exc: SuanliError) -> int:
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    if isinstance(exc, SpecError | UnknownNameError):
        return 422
    return 400


def install(app: FastAPI) -> None:
    @app.exception_handler(SuanliError)
    async def _suanli(_req: Request, exc: SuanliError) -> JSONResponse:
        extra = getattr(exc, "extra", None) or {}
        return JSONResponse(error_body(exc.message, exc.field, exc.value, **extra),
                            status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        parts, field, value = [], None, None
        for err in errors:
            loc = [str(p) for p in err.get("loc", ())]
            if loc and loc[0] in ("body", "query", "path", "header"):
                loc = loc[1:] if len(loc) > 1 else loc
            path = ".".join(loc) or "<body>"
            if field is None:
                field, value = path, err.get("input")
            parts.append(f"{path}: {err.get('msg', 'invalid')}")
        return JSONResponse(error_body("; ".join(parts) or "invalid request", field, value),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail), None, None), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    @app.exception_handler(decimal.InvalidOperation)
    async def _out_of_range(_req: Request, exc: Exception) -> JSONResponse:
        # A last line: inputs are range-checked against the columns before they get here.
        log.warning("a value the database cannot hold reached it: %s", exc)
        return JSONResponse(error_body("a value is outside what the database can hold "
                                       f"({type(exc).__name__})", None, None), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}", None, None),
                            status_code=500)

"""Hostile input stops at the door: bodies counted while they stream, auth before any body is
read, and JSON/YAML values checked for what the database and the job spec cannot hold.

`RequestGuard` is a pure ASGI middleware in front of every route. For a path that needs a token
it authenticates from the headers first, so an anonymous request is answered 401 without a byte
of its body read. It refuses a Content-Length over the limit at once, and counts the bytes of a
streamed body as they arrive, answering 413 as soon as they pass the limit: a 200 MB body costs
the server no more memory than the limit. A JSON body is then parsed once here and checked
(`check_value`): nesting depth, NaN and infinities, NUL bytes and lone surrogates each get a 4xx
naming the field, for every endpoint, before a handler or the database sees them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import yaml
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from suanli.service.errors import ApiError, error_body

MAX_DEPTH = 64  # nesting levels of a JSON or YAML body; a job file needs fewer than 10
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
PRINCIPAL_KEY = "suanli.principal"  # where the guard leaves the caller in the ASGI scope
PARSED_JSON_KEY = "suanli.json"  # where it leaves a JSON body it parsed and checked

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyValueError(ApiError):
    """A body value the service cannot take; 422 naming its path."""

    def __init__(self, message: str, path: str, value: object = None) -> None:
        super().__init__(422, f"{path}: {message}", field=path, value=value)


def _path(parent: str, key: object) -> str:
    return f"{parent}.{key}" if parent else str(key)


def check_string(s: str, path: str) -> None:
    """No NUL (PostgreSQL text cannot hold it) and no lone surrogate (not encodable)."""
    bad = _BAD_CHARS.search(s)
    if bad is not None:
        what = "a NUL byte" if bad.group() == "\x00" else \
            f"a lone surrogate U+{ord(bad.group()):04X} (invalid Unicode)"
        raise BodyValueError(f"contains {what} at character {bad.start()}", path,
                             s.encode("utf-8", "backslashreplace").decode("ascii",
                                                                          "backslashreplace")[:80])


def check_value(data: Any, max_depth: int = MAX_DEPTH) -> None:
    """Walk a parsed JSON/YAML value without recursion; raise BodyValueError naming the first
    field that nests too deep, is not a finite number, or holds a NUL byte or lone surrogate."""
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        path, v, depth = stack.pop()
        if isinstance(v, str):
            check_string(v, path or "<body>")
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise BodyValueError("must be a finite number (NaN and infinities are refused)",
                                     path or "<body>", repr(v))
        elif isinstance(v, dict | list):
            if depth >= max_depth:
                raise BodyValueError(f"nested deeper than {max_depth} levels", path or "<body>")
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, child in items:
                if isinstance(k, str):
                    check_string(k, _path(path, k))
                stack.append((_path(path, k), child, depth + 1))


def _too_deep() -> BodyValueError:
    return BodyValueError(f"nested deeper than {MAX_DEPTH} levels", "<body>")


def load_json(body: bytes) -> Any:
    """json.loads, then `check_value`. Syntax errors are ValueError, as from json.loads; a
    body nested past the interpreter's recursion limit is a BodyValueError, not a crash."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise _too_deep() from None
    check_value(data)
    return data


class _GuardedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases (a few lines of them expand to gigabytes once
    the job is hashed) and nesting past MAX_DEPTH, as it composes: before recursion can hurt."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"YAML aliases are not accepted (*{event.anchor} at "
                                 f"{event.start_mark})")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _too_deep()
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str) -> Any:
    """yaml.safe_load without aliases, at most MAX_DEPTH deep, then `check_value`."""
    loader = _GuardedLoader(text)
    try:
        data = loader.get_single_data()
    except RecursionError:
        raise _too_deep() from None
    finally:
        loader.dispose()
    check_value(data)
    return data


def _is_json(headers: dict[bytes, bytes]) -> bool:
    ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    return ctype in (b"", b"application/json") or ctype.endswith(b"+json")


def _first_bad_param(scope: dict[str, Any]) -> ApiError | None:
    """A NUL byte in the path or a query parameter (decoded), named."""
    if "\x00" in scope.get("path", ""):
        return ApiError(422, "the URL path contains a NUL byte", field="<path>")
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" in query or "\x00" in query:
        for name, value in parse_qsl(query, keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return ApiError(422, f"query parameter {name!r} contains a NUL byte",
                                field=name.replace("\x00", "\\x00"))
    return None


class RequestGuard:
    """Pure ASGI middleware: auth from headers, then a bounded body, then checked JSON.

    `authenticate(authorization_header)` returns the caller (left in the scope under
    PRINCIPAL_KEY) or raises ApiError; `needs_token(path)` says which paths it guards;
    `auth_in_thread`: the lookup blocks (PostgreSQL: a round trip), so run it off the loop."""

    def __init__(self, app: Any, *, max_body_bytes: int,
                 authenticate: Callable[[str | None], Any],
                 needs_token: Callable[[str], bool], auth_in_thread: bool) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.authenticate = authenticate
        self.needs_token = needs_token
        self.auth_in_thread = auth_in_thread

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self._admit(scope)
            headers = dict(scope.get("headers") or ())
            body = await self._read_body(headers, receive)
            if body and _is_json(headers):
                try:
                    scope[PARSED_JSON_KEY] = load_json(body)  # routes need not parse it again
                except ValueError:
                    pass  # not JSON at all: the route answers that, in its own words
        except ApiError as exc:
            await self._refuse(exc, scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _admit(self, scope: dict[str, Any]) -> None:
        bad = _first_bad_param(scope)
        if bad is not None:
            raise bad
        if not self.needs_token(scope.get("path", "")):
            return
        header = None
        for k, v in scope.get("headers") or ():
            if k == b"authorization":
                header = v.decode("latin-1")
                break
        if self.auth_in_thread:
            who = await run_in_threadpool(self.authenticate, header)
        else:
            who = self.authenticate(header)
        scope[PRINCIPAL_KEY] = who

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                raise ApiError(400, "Content-Length is not a number", field="Content-Length",
                               value=declared.decode("latin-1")[:40]) from None
            if n > self.max_body_bytes:
                raise self._too_large(n)
            if n == 0:
                return b""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large(size, streamed=True)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self, n: int, streamed: bool = False) -> ApiError:
        said = f"more than {n - 1}" if streamed else str(n)
        return ApiError(413, f"the request body is {said} bytes; the limit is "
                             f"{self.max_body_bytes}", field="<body>", value=None,
                        limit_bytes=self.max_body_bytes)

    @staticmethod
    async def _refuse(exc: ApiError, scope: dict[str, Any], receive: Receive,
                      send: Send) -> None:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.status == 413:
            headers = {"Connection": "close"}  # the rest of the body is never read
        response = JSONResponse(error_body(exc.message, exc.field, exc.value, **exc.extra),
                                status_code=exc.status, headers=headers)
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the body already read, then the real channel (disconnect)."""
    sent = False

    async def _receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return _receive

"""Bearer tokens: who is calling. Tokens are looked up by their sha256 in the database.

Every request looks its token up in the database (one indexed read), so a token revoked through
any API replica is refused by every replica from the next request on; a process-local cache
could only be made safe by asking the database anyway. `RequestGuard` (service/limits.py) does
the lookup from the headers before a body is read and leaves the caller in the ASGI scope; the
`principal` dependency picks it up from there.
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from suanli.service.errors import ApiError
from suanli.service.limits import PRINCIPAL_KEY
from suanli.store import tenants, tokens
from suanli.store.db import Database
from suanli.store.tenants import Principal

TOKEN_MAX_CHARS = 200  # ours are 46; a longer header is refused before it is hashed


class Tokens:
    """Token lookups for one process. Nothing is remembered between requests, so a
    revocation needs no invalidation anywhere. The price,
    measured with benchmarks/bench_submit.py: one indexed read per request, about 0.3 ms of
    server CPU per submission on PostgreSQL (thread hop included) and within noise on SQLite."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def lookup(self, token: str) -> Principal | None:
        return tokens.principal_for_token_hash(self.db, tenants.hash_token(token))

    def authenticate(self, header: str | None) -> Principal:
        """The caller for an Authorization header value, or ApiError 401."""
        who = self.lookup(token_of(header))
        if who is None:
            raise ApiError(401, "invalid API token (unknown or revoked)", field="Authorization")
        return who


def needs_token(path: str) -> bool:
    """The API and /metrics need a token; /healthz and the API's own docs do not."""
    return path.startswith("/v1/") or path in ("/v1", "/metrics")


def token_of(header: str | None) -> str:
    if not header:
        raise ApiError(401, "missing API token: send 'Authorization: Bearer <token>'",
                       field="Authorization")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "malformed Authorization header: expected 'Bearer <token>'",
                       field="Authorization")
    if len(token) > TOKEN_MAX_CHARS or "\x00" in token:
        raise ApiError(401, "invalid API token", field="Authorization")
    return token


async def principal(request: Request) -> Principal:
    """FastAPI dependency: the calling tenant, or 401. Normally already found by the guard."""
    who = request.scope.get(PRINCIPAL_KEY)
    if isinstance(who, Principal):
        return who
    lookup: Tokens = request.app.state.svc.tokens
    return await run_in_threadpool(lookup.authenticate, request.headers.get("authorization"))


async def admin(request: Request) -> Principal:
    """FastAPI dependency: the admin, or 401/403."""
    who = await principal(request)
    if not who.is_admin:
        raise ApiError(403, "admin only: this needs the admin token", field="Authorization")
    return who

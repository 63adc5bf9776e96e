"""Bearer tokens: who is calling. Tokens are looked up by their sha256, cached in memory."""

from __future__ import annotations

import threading
import time

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from suanli.service.errors import ApiError
from suanli.store import tenants
from suanli.store.db import Database
from suanli.store.tenants import Principal

CACHE_TTL_S = 30.0


class TokenCache:
    """Valid tokens for a short while, so the hot path does not hit the database to auth."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[Principal, float]] = {}

    def lookup(self, token: str) -> Principal | None:
        key = tenants.hash_token(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self.db.read() as conn:
            principal = tenants.principal_for_token(conn, token)
        if principal is not None:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key] = (principal, now + CACHE_TTL_S)
        return principal

    def cached(self, token: str) -> Principal | None:
        hit = self._cache.get(tenants.hash_token(token))
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


def _token_of(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(401, "missing API token: send 'Authorization: Bearer <token>'",
                       field="Authorization")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "malformed Authorization header: expected 'Bearer <token>'",
                       field="Authorization")
    return token


async def principal(request: Request) -> Principal:
    """FastAPI dependency: the calling tenant, or 401."""
    token = _token_of(request)
    cache: TokenCache = request.app.state.svc.tokens
    who = cache.cached(token)
    if who is None:
        who = await run_in_threadpool(cache.lookup, token)
    if who is None:
        raise ApiError(401, "invalid API token", field="Authorization")
    return who


async def admin(request: Request) -> Principal:
    """FastAPI dependency: the admin, or 401/403."""
    who = await principal(request)
    if not who.is_admin:
        raise ApiError(403, "admin only: this needs the admin token", field="Authorization")
    return who

"""API tokens: list, create and revoke; the secret is shown once and only its sha256 is kept.

Revocation is one UPDATE of `revoked`; every API replica looks a token up in the database on
each request (`principal_for_token`), so a revoke made through any replica holds at once on all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from suanli.store.db import Database
from suanli.store.errors import NotFound
from suanli.store.models import ApiToken
from suanli.store.tenants import Principal, hash_token, issue_token

TOK = ApiToken.__table__
# Written out once: every request runs it, and SQLAlchemy's connection and expression layers
# cost ten times the indexed read itself (12 us against 140 us on SQLite; 97 against 330 on
# PostgreSQL, which also saves the BEGIN/COMMIT round trips): see store/fastpath.py.
_PRINCIPAL_SQL = ("SELECT t.id, t.name, t.is_admin FROM api_tokens k JOIN tenants t "
                  "ON t.id = k.tenant_id WHERE k.token_hash = {p} AND NOT k.revoked")


def principal_for_token_hash(db: Database, token_hash: str) -> Principal | None:
    """The tenant holding this unrevoked token (by its sha256), or None: one read on a pooled
    DBAPI connection, outside any transaction (SQLite connections here are in autocommit
    mode; a PostgreSQL one is put in it for the read)."""
    proxy = db.engine.raw_connection()
    try:
        dbapi = proxy.dbapi_connection
        if db.is_sqlite:
            row = _fetch(dbapi, _PRINCIPAL_SQL.format(p="?"), token_hash)
        else:
            dbapi.autocommit = True
            try:
                row = _fetch(dbapi, _PRINCIPAL_SQL.format(p="%s"), token_hash)
            finally:
                dbapi.autocommit = False
    finally:
        proxy.close()
    return Principal(row[0], row[1], bool(row[2])) if row is not None else None


def _fetch(dbapi: Any, sql: str, token_hash: str) -> Any:
    cur = dbapi.cursor()
    try:
        cur.execute(sql, (token_hash,))
        return cur.fetchone()
    finally:
        cur.close()


def list_tokens(conn: Connection, tenant_id: int) -> list[dict]:
    """A tenant's tokens, oldest first: id, prefix, created_at, revoked; never the hash."""
    rows = conn.execute(select(TOK.c.id, TOK.c.prefix, TOK.c.created_at, TOK.c.revoked)
                        .where(TOK.c.tenant_id == tenant_id).order_by(TOK.c.id)).mappings()
    return [{**r, "revoked": bool(r["revoked"])} for r in rows]


def create_token(conn: Connection, tenant_id: int) -> dict:
    """A new token for the tenant: its listing plus the secret `token`, shown this once."""
    secret = issue_token(conn, tenant_id)
    row = conn.execute(select(TOK.c.id, TOK.c.prefix, TOK.c.created_at, TOK.c.revoked)
                       .where(TOK.c.token_hash == hash_token(secret))).mappings().one()
    return {**row, "revoked": False, "token": secret}


def is_revoked(conn: Connection, token: str) -> bool:
    """Whether this secret names a token that was revoked (a revoked token is never revived)."""
    row = conn.execute(select(TOK.c.revoked).where(TOK.c.token_hash == hash_token(token))).first()
    return row is not None and bool(row.revoked)


def revoke_token(conn: Connection, tenant_id: int, token_id: int) -> dict:
    """Mark one of the tenant's tokens revoked (idempotent); NotFound if it is not theirs."""
    row = conn.execute(update(TOK).where(TOK.c.id == token_id, TOK.c.tenant_id == tenant_id)
                       .values(revoked=True)
                       .returning(TOK.c.id, TOK.c.prefix, TOK.c.created_at)).mappings().first()
    if row is None:
        raise NotFound(f"no token {token_id} for this tenant", field="token_id", value=token_id)
    return {**row, "revoked": True}


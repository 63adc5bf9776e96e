"""API tokens: list, create and revoke; the secret is shown once and only its sha256 is kept.

Revocation is one UPDATE of `revoked`; every API replica looks a token up in the database on
each request (`principal_for_token`), so a revoke made through any replica holds at once on all.
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from suanli.store.errors import NotFound
from suanli.store.models import ApiToken
from suanli.store.tenants import hash_token, issue_token

TOK = ApiToken.__table__


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


def revoke_token(conn: Connection, tenant_id: int, token_id: int) -> dict:
    """Mark one of the tenant's tokens revoked (idempotent); NotFound if it is not theirs."""
    row = conn.execute(update(TOK).where(TOK.c.id == token_id, TOK.c.tenant_id == tenant_id)
                       .values(revoked=True)
                       .returning(TOK.c.id, TOK.c.prefix, TOK.c.created_at)).mappings().first()
    if row is None:
        raise NotFound(f"no token {token_id} for this tenant", field="token_id", value=token_id)
    return {**row, "revoked": True}


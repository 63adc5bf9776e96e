"""Tenants, their API tokens (stored hashed), quotas and credits (a ledger of movements)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, delete, func, insert, select, update

from suanli.store.errors import Conflict, InsufficientCredits, NotFound, StoreError
from suanli.store.models import ApiToken, Job, LedgerEntry, Quota, Tenant
from suanli.store.types import money

TOKEN_PREFIX = "sl_"
T = Tenant.__table__
TOK = ApiToken.__table__
Q = Quota.__table__
L = LedgerEntry.__table__
J = Job.__table__


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a tenant, maybe the admin."""

    tenant_id: int
    name: str
    is_admin: bool


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_tenant(conn: Connection, name: str, *, is_admin: bool = False,
                  credits: Decimal | None = None, token: str | None = None,
                  note: str = "initial grant") -> tuple[int, str]:
    """Insert a tenant and its first token; returns (id, token). The token is not stored."""
    if conn.execute(select(T.c.id).where(T.c.name == name)).first() is not None:
        raise Conflict(f"tenant {name!r} exists", field="name", value=name)
    now = time.time()
    tenant_id = conn.execute(
        insert(T).values(name=name, is_admin=is_admin, balance=Decimal(0), reserved=Decimal(0),
                         created_at=now).returning(T.c.id)
    ).scalar_one()
    token = issue_token(conn, tenant_id, token)
    if credits:
        grant(conn, tenant_id, credits, note=note)
    return tenant_id, token


def issue_token(conn: Connection, tenant_id: int, token: str | None = None) -> str:
    token = token or new_token()
    conn.execute(insert(TOK).values(tenant_id=tenant_id, prefix=token[:10],
                                    token_hash=hash_token(token), created_at=time.time(),
                                    revoked=False))
    return token


def principal_for_token(conn: Connection, token: str) -> Principal | None:
    row = conn.execute(
        select(T.c.id, T.c.name, T.c.is_admin)
        .join(TOK, TOK.c.tenant_id == T.c.id)
        .where(TOK.c.token_hash == hash_token(token), TOK.c.revoked.is_(False))
    ).first()
    return Principal(row.id, row.name, bool(row.is_admin)) if row else None


def has_admin(conn: Connection) -> bool:
    return conn.execute(select(T.c.id).where(T.c.is_admin.is_(True)).limit(1)).first() is not None


def tenant_by_name(conn: Connection, name: str) -> dict:
    row = conn.execute(select(T).where(T.c.name == name)).mappings().first()
    if row is None:
        raise NotFound(f"no tenant {name!r}", field="tenant", value=name)
    return dict(row)


def list_tenants(conn: Connection) -> list[dict]:
    return [dict(r) for r in conn.execute(select(T).order_by(T.c.id)).mappings()]


def grant(conn: Connection, tenant_id: int, amount: Decimal, note: str = "") -> Decimal:
    """Add credits (a voucher); a negative amount claws back, never below zero."""
    amount = money(amount)
    if amount == 0:
        raise StoreError("a grant of 0 changes nothing", field="amount", value=str(amount))
    stmt = update(T).where(T.c.id == tenant_id)
    if amount < 0:
        stmt = stmt.where(T.c.balance >= -amount)
    row = conn.execute(stmt.values(balance=T.c.balance + amount).returning(T.c.balance)).first()
    if row is None:
        bal, res = balance_of(conn, tenant_id)
        raise InsufficientCredits(bal, res, -amount)
    _ledger(conn, tenant_id, None, "grant", amount, note)
    return row.balance


def reserve(conn: Connection, tenant_id: int, job_id: int, amount: Decimal) -> None:
    """Hold a job's estimated cost, atomically refusing to overdraw."""
    amount = money(amount)
    if amount > 0 and not _move_to_hold(conn, tenant_id, amount):
        bal, res = balance_of(conn, tenant_id)
        raise InsufficientCredits(bal, res, amount)
    _ledger(conn, tenant_id, job_id, "reserve", -amount, "estimated cost held")


def hold_more(conn: Connection, tenant_id: int, job_id: int, amount: Decimal,
              note: str) -> bool:
    """Move `amount` more of the available balance into a job's hold (a `reserve` row);
    False (nothing written) when the balance cannot cover it."""
    amount = money(amount)
    if not _move_to_hold(conn, tenant_id, amount):
        return False
    conn.execute(update(J).where(J.c.id == job_id).values(reserved=J.c.reserved + amount))
    _ledger(conn, tenant_id, job_id, "reserve", -amount, note)
    return True


def _move_to_hold(conn: Connection, tenant_id: int, amount: Decimal) -> bool:
    """Balance -> reserved, in one guarded UPDATE (it also locks the tenant's row on
    PostgreSQL until commit); False when the balance cannot cover `amount`."""
    row = conn.execute(
        update(T).where(T.c.id == tenant_id, T.c.balance >= amount)
        .values(balance=T.c.balance - amount, reserved=T.c.reserved + amount)
        .returning(T.c.id)
    ).first()
    return row is not None


def settle(conn: Connection, tenant_id: int, job_id: int, reserved: Decimal,
           charge: Decimal, note: str = "") -> None:
    """Release a job's hold (refund +reserved) and charge its actual cost (settle -charge)."""
    reserved, charge = money(reserved), money(charge)
    conn.execute(
        update(T).where(T.c.id == tenant_id)
        .values(balance=T.c.balance + reserved - charge, reserved=T.c.reserved - reserved)
    )
    _ledger(conn, tenant_id, job_id, "refund", reserved, "hold released")
    _ledger(conn, tenant_id, job_id, "settle", -charge, note)


def _ledger(conn: Connection, tenant_id: int, job_id: int | None, kind: str,
            amount: Decimal, note: str) -> None:
    conn.execute(insert(L).values(tenant_id=tenant_id, job_id=job_id, kind=kind, amount=amount,
                                  created_at=time.time(), note=note))


def balance_of(conn: Connection, tenant_id: int,
               for_update: bool = False) -> tuple[Decimal, Decimal]:
    """(available balance, reserved). `for_update`: lock the tenant's row until the
    transaction ends (PostgreSQL; SQLite's writer already holds the database), so decisions
    on a tenant's credit and quota are taken one at a time."""
    stmt = select(T.c.balance, T.c.reserved).where(T.c.id == tenant_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound("no such tenant", field="tenant", value=tenant_id)
    return row.balance, row.reserved


def ledger_sums(conn: Connection, tenant_id: int) -> dict[str, Decimal]:
    """Sum of amounts by kind (exact); balance = sum of all kinds."""
    rows = conn.execute(
        select(L.c.kind, func.sum(L.c.amount)).where(L.c.tenant_id == tenant_id)
        .group_by(L.c.kind)
    ).all()
    sums = {k: Decimal("0.00") for k in ("grant", "reserve", "refund", "settle")}
    for kind, total in rows:
        sums[kind] = money(total)  # func.sum keeps the Money type: exact on every database
    return sums


def ledger_entries(conn: Connection, tenant_id: int, limit: int = 1000) -> list[dict]:
    rows = conn.execute(
        select(L).where(L.c.tenant_id == tenant_id).order_by(L.c.id.desc()).limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


def quotas_of(conn: Connection, tenant_id: int) -> dict[str, int]:
    rows = conn.execute(select(Q.c.accelerator, Q.c.max_chips).where(Q.c.tenant_id == tenant_id))
    return {acc: n for acc, n in rows}


def set_quotas(conn: Connection, tenant_id: int, quotas: dict[str, int | None]) -> dict[str, int]:
    """Set chip limits per accelerator; None removes a limit."""
    for acc, limit in quotas.items():
        conn.execute(delete(Q).where(Q.c.tenant_id == tenant_id, Q.c.accelerator == acc))
        if limit is not None:
            conn.execute(insert(Q).values(tenant_id=tenant_id, accelerator=acc, max_chips=limit))
    return quotas_of(conn, tenant_id)

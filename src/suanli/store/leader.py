"""The scheduler's leader lease and its fencing token, in the database all replicas share.

One row (`leader`, id 1). A replica leads while it holds an unexpired lease; it renews it
about once a second. Another replica takes it over only once it has expired, by the
database's own clock (replicas on different machines need not agree on the time), and the
takeover adds one to `token`. Every write the scheduler makes checks, in its own
transaction, that the token is still its own (`fence`): on PostgreSQL with a share lock on
the row, so a takeover waits for a write in flight and every write after it fails. A leader
that stalls past its lease therefore cannot change anything when it wakes.

The network version (`meta.network_version`) is bumped in each admin edit's transaction, so
the leader sees edits made through any replica by polling one row.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Integer, String, cast, insert, select, text, update

from suanli.store.models import LeaderLease, Meta

L = LeaderLease.__table__
M = Meta.__table__


IDLE_IN_TXN_TIMEOUT = "3s"


def _short(conn: Connection) -> None:
    """A transaction that touches the lease row must not hold its lock through a stall: on
    PostgreSQL the server ends it after a few idle seconds (a frozen leader that held the
    row would otherwise keep every other replica from taking over until it wakes)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = "
                          f"'{IDLE_IN_TXN_TIMEOUT}'"))


def db_now(conn: Connection) -> float:
    """The database's clock in epoch seconds (SQLite: this process's clock)."""
    if conn.dialect.name == "postgresql":
        return float(conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar())
    return time.time()


def acquire(conn: Connection, holder: str, lease_s: float, *,
            force: bool = False) -> int | None:
    """Take the lease if it is free or expired (or `force`: this process is known to be the
    only one, e.g. it holds the SQLite file's lock); the new fencing token, or None."""
    _short(conn)
    now = db_now(conn)
    free = L.c.expires_at < now if not force else L.c.id == 1
    row = conn.execute(
        update(L).where(L.c.id == 1, free)
        .values(holder=holder, token=L.c.token + 1, expires_at=now + lease_s,
                acquired_at=now, renewed_at=now)
        .returning(L.c.token)).first()
    if row is None and conn.execute(select(L.c.id).where(L.c.id == 1)).first() is None:
        conn.execute(insert(L).values(id=1, holder="", token=0, expires_at=0.0,
                                      acquired_at=0.0, renewed_at=0.0))  # (migration's row)
        return acquire(conn, holder, lease_s, force=force)
    return int(row[0]) if row is not None else None


def renew(conn: Connection, holder: str, token: int, lease_s: float) -> bool:
    """Extend a lease still held and unexpired; False: it is lost (step down)."""
    _short(conn)
    now = db_now(conn)
    done = conn.execute(
        update(L).where(L.c.id == 1, L.c.token == token, L.c.holder == holder,
                        L.c.expires_at >= now)
        .values(expires_at=now + lease_s, renewed_at=now))
    return done.rowcount == 1


def release(conn: Connection, holder: str, token: int) -> None:
    """Give the lease up (graceful shutdown): the next replica may take it at once."""
    _short(conn)
    conn.execute(update(L).where(L.c.id == 1, L.c.token == token, L.c.holder == holder)
                 .values(expires_at=0.0))


def fence(conn: Connection, token: int) -> bool:
    """Whether `token` is still the current one; on PostgreSQL the row stays share-locked
    until this transaction ends, so no takeover commits in between."""
    stmt = select(L.c.token).where(L.c.id == 1, L.c.token == token)
    if conn.dialect.name == "postgresql":
        _short(conn)
        stmt = stmt.with_for_update(read=True)
    return conn.execute(stmt).first() is not None


def current(conn: Connection) -> dict[str, Any]:
    """Who leads: holder, token, expiry, and the ages of the lease (seconds, db clock)."""
    row = conn.execute(select(L)).mappings().first()
    now = db_now(conn)
    if row is None or not row["holder"]:
        return {"holder": None, "token": 0, "expired": True, "lease_age_s": None,
                "expires_in_s": None}
    return {"holder": row["holder"], "token": int(row["token"]),
            "expired": row["expires_at"] < now,
            "lease_age_s": round(now - row["renewed_at"], 3),
            "leader_for_s": round(now - row["acquired_at"], 3),
            "expires_in_s": round(row["expires_at"] - now, 3)}


def network_version(conn: Connection) -> int:
    value = conn.execute(select(M.c.value).where(M.c.key == "network_version")).scalar()
    return int(value or 0)


def bump_network_version(conn: Connection) -> None:
    """An admin edit changed centers or pools: one atomic increment, in the edit's
    transaction (two replicas editing at once each add their own)."""
    done = conn.execute(update(M).where(M.c.key == "network_version")
                        .values(value=cast(cast(M.c.value, Integer) + 1, String)))
    if done.rowcount == 0:
        conn.execute(insert(M).values(key="network_version", value="1"))

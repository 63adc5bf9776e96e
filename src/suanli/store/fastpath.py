"""The submission hot path in plain SQL on the DBAPI cursor, inside the caller's transaction.

Building SQLAlchemy expressions costs more than SQLite takes to run them, so the few
statements a submission runs are written out once here (the drivers cache the prepared
statements) and money is converted by hand exactly as the `Money` column type does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from suanli.store import billing
from suanli.store.errors import InsufficientCredits, QuotaExceeded
from suanli.store.jobs import ACTIVE_STATES, Admission
from suanli.store.models import TERMINAL_STATES
from suanli.store.types import money

_ACTIVE = ", ".join(f"'{s}'" for s in ACTIVE_STATES)
JOB_COLUMNS = (
    "id", "tenant_id", "name", "state", "spec", "idempotency_key", "request_hash",
    "submitted_at", "updated_at", "started_at", "finished_at", "center", "pool", "accelerator",
    "count", "est_accelerator", "est_count", "est_run_s", "estimate_cost", "reserved", "charged",
    "run_s", "running_since", "retries", "max_retries", "done_work", "reason", "handle",
    "log_path", "cancel_requested", "price_per_chip_hour", "spent",
)
_MONEY_COLUMNS = {"estimate_cost": 2, "reserved": 2, "charged": 2, "price_per_chip_hour": 4,
                  "spent": 6}

SQL = {
    "by_key": f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE tenant_id = ? AND "
              "idempotency_key = ?",
    "tenant": "SELECT balance, reserved FROM tenants WHERE id = ?",
    "quota": "SELECT max_chips FROM quotas WHERE tenant_id = ? AND accelerator = ?",
    "in_use": "SELECT COALESCE(SUM(COALESCE(count, est_count)), 0) FROM jobs WHERE "
              f"tenant_id = ? AND state IN ({_ACTIVE}) AND "
              "COALESCE(accelerator, est_accelerator) = ?",
    "insert_job": "INSERT INTO jobs (tenant_id, name, state, spec, idempotency_key, "
                  "request_hash, submitted_at, updated_at, est_accelerator, est_count, "
                  "est_run_s, estimate_cost, reserved, run_s, retries, max_retries, done_work, "
                  "reason, cancel_requested) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, "
                  "?, ?, 0, 0, ?, 0, ?, ?) RETURNING id",
    "reserve": "UPDATE tenants SET balance = balance - ?, reserved = reserved + ? "
               "WHERE id = ? AND balance >= ? RETURNING id",
    "ledger": "INSERT INTO ledger (tenant_id, job_id, kind, amount, created_at, note) "
              "VALUES (?, ?, 'reserve', ?, ?, 'estimated cost held')",
    "event": "INSERT INTO job_events (job_id, at, old_state, new_state, reason) "
             "VALUES (?, ?, NULL, 'pending', ?)",
    "run_clock": "SELECT running_since, run_s, started_at, spent, price_per_chip_hour, count, "
                 "center, pool FROM jobs WHERE id = ?",
    "transition_event": "INSERT INTO job_events (job_id, at, old_state, new_state, reason, "
                        "placement) VALUES (?, ?, ?, ?, ?, ?)",
}
_PG_SQL = {k: v.replace("?", "%s") for k, v in SQL.items()}



class FastPath:
    """Prepared SQL for one dialect; money as integer fen on SQLite, NUMERIC elsewhere."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.sql = SQL if self.sqlite else _PG_SQL

    def _m(self, d: Decimal, scale: int = 2) -> Any:
        return int(money(d, scale).scaleb(scale)) if self.sqlite else d

    def _from_m(self, v: Any, scale: int = 2) -> Decimal | None:
        if v is None:
            return None
        if self.sqlite:
            return Decimal(int(v)).scaleb(-scale).quantize(Decimal(1).scaleb(-scale))
        return money(v, scale)

    @staticmethod
    def _cursor(conn: Connection) -> Any:
        return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def find_by_key(self, conn: Connection, tenant_id: int, key: str) -> dict | None:
        cur = self._cursor(conn)
        cur.execute(self.sql["by_key"], (tenant_id, key))
        row = cur.fetchone()
        if row is None:
            return None
        job = dict(zip(JOB_COLUMNS, row, strict=True))
        for col, scale in _MONEY_COLUMNS.items():
            job[col] = self._from_m(job[col], scale)
        job["cancel_requested"] = bool(job["cancel_requested"])
        return job

    def admit(self, conn: Connection, tenant_id: int, adm: Admission,
              key: str | None) -> dict[str, Any]:
        """Credit hold (which locks the tenant's row), quota check, job insert, ledger row and
        first event; the new job.

        PostgreSQL: the hold's UPDATE holds the tenant's row lock until commit, so two
        concurrent submissions of one tenant never both count the same free quota or credit.
        SQLite: BEGIN IMMEDIATE already serialises every writer of the database."""
        cur = self._cursor(conn)
        cost = money(adm.estimate_cost)
        hold = money(adm.hold) if adm.hold is not None else cost
        m = self._m(hold)
        # Take the hold first: the UPDATE checks the balance and locks the tenant's row (on
        # PostgreSQL) until commit, so this tenant's admissions count quota one at a time.
        cur.execute(self.sql["reserve"], (m, m, tenant_id, m))
        if cur.fetchone() is None:
            cur.execute(self.sql["tenant"], (tenant_id,))
            bal, res = (self._from_m(v) for v in cur.fetchone())
            raise InsufficientCredits(bal, res, hold)
        if adm.est_accelerator is not None:
            cur.execute(self.sql["quota"], (tenant_id, adm.est_accelerator))
            q = cur.fetchone()
            if q is not None:
                cur.execute(self.sql["in_use"], (tenant_id, adm.est_accelerator))
                in_use = int(cur.fetchone()[0])
                if in_use + adm.est_count > q[0]:
                    raise QuotaExceeded(adm.est_accelerator, int(q[0]), in_use, adm.est_count)
        now = time.time()
        cur.execute(self.sql["insert_job"], (
            tenant_id, adm.name, adm.spec_json, key, adm.request_hash, now, now,
            adm.est_accelerator, adm.est_count, adm.est_run_s, self._m(cost), m,
            adm.max_retries, adm.reason, False))
        job_id = int(cur.fetchone()[0])
        cur.execute(self.sql["ledger"], (tenant_id, job_id, self._m(-hold), now))
        cur.execute(self.sql["event"], (job_id, now, adm.reason))
        return self._new_job(job_id, tenant_id, adm, key, cost, hold, now)

    def record_transition(self, conn: Connection, job_id: int, old: str | None, new: str,
                          reason: str, placement: Mapping[str, Any] | None, at: float,
                          extra: Mapping[str, Any] | None = None) -> None:
        """`store.jobs.record_transition` for a state that is not terminal and not a
        placement's re-pricing (no money moves): the same columns written, in plain SQL."""
        if new in TERMINAL_STATES:
            raise ValueError(f"{new!r} is terminal: use store.jobs.record_transition")
        cur = self._cursor(conn)
        cur.execute(self.sql["run_clock"], (job_id,))
        running_since, run_s, started_at, spent, price, count, center, pool = cur.fetchone()
        price = self._from_m(price, 4)
        if price is None and running_since is not None:  # placed before prices were stored
            price = billing.stored_price(conn, {"center": center, "pool": pool})
        clock = billing.RunClock(running_since, run_s or 0.0, started_at,
                                 self._from_m(spent, 6) or Decimal(0), price, count)
        values: dict[str, Any] = {**(extra or {}), "state": new, "updated_at": at,
                                  "reason": reason}
        values.update(billing.clock_values(clock, new, at))
        if "spent" in values:
            values["spent"] = self._m(values["spent"], 6)
        if placement:
            for k in ("center", "pool", "accelerator", "count"):
                if placement.get(k) is not None:
                    values[k] = placement[k]
        mark = "?" if self.sqlite else "%s"
        cols = ", ".join(f"{k} = {mark}" for k in values)  # column names from this code only
        cur.execute(f"UPDATE jobs SET {cols} WHERE id = {mark}", (*values.values(), job_id))
        cur.execute(self.sql["transition_event"], (
            job_id, at, old, new, reason, json.dumps(dict(placement)) if placement else None))

    @staticmethod
    def _new_job(job_id: int, tenant_id: int, adm: Admission, key: str | None, cost: Decimal,
                 hold: Decimal, now: float) -> dict[str, Any]:
        return {
            "id": job_id, "tenant_id": tenant_id, "name": adm.name, "state": "pending",
            "spec": adm.spec_json, "idempotency_key": key, "request_hash": adm.request_hash,
            "submitted_at": now, "updated_at": now, "started_at": None, "finished_at": None,
            "center": None, "pool": None, "accelerator": None, "count": None,
            "est_accelerator": adm.est_accelerator, "est_count": adm.est_count,
            "est_run_s": adm.est_run_s, "estimate_cost": cost, "reserved": hold,
            "charged": None, "run_s": 0.0, "running_since": None, "retries": 0,
            "max_retries": adm.max_retries, "done_work": 0.0, "reason": adm.reason,
            "handle": None, "log_path": None, "cancel_requested": False,
            "price_per_chip_hour": None, "spent": Decimal("0.000000"),
        }

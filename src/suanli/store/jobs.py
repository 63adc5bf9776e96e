"""Jobs and their events: admission (with the credit hold) and state changes, each one
transaction, so the database always holds the state before anyone acts on it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from suanli.store import billing, tenants
from suanli.store.errors import NotFound, QuotaExceeded
from suanli.store.models import TERMINAL_STATES, Job, JobEvent
from suanli.store.types import money

J = Job.__table__
E = JobEvent.__table__
ACTIVE_STATES = ("pending", "queued", "staging", "starting", "running", "checkpointing",
                 "preempted")


@dataclass(frozen=True, slots=True)
class Admission:
    """What the service decided about a job before inserting it."""

    name: str
    spec_json: str
    request_hash: str
    estimate_cost: Decimal
    est_accelerator: str | None
    est_count: int
    est_run_s: float | None
    max_retries: int
    reason: str = "submitted"
    hold: Decimal | None = None  # held at admission (billing.admission_hold); None: the estimate


def find_by_key(conn: Connection, tenant_id: int, key: str) -> dict | None:
    row = conn.execute(
        select(J).where(J.c.tenant_id == tenant_id, J.c.idempotency_key == key)
    ).mappings().first()
    return dict(row) if row else None


def check_quota(conn: Connection, tenant_id: int, accelerator: str | None, count: int) -> None:
    """Refuse a job whose chips, added to the tenant's active jobs on that chip, pass the limit.

    The tenant's row is locked first, so concurrent admissions count one after another."""
    tenants.balance_of(conn, tenant_id, for_update=True)  # one admission per tenant at a time
    if accelerator is None:
        return
    quotas = tenants.quotas_of(conn, tenant_id)
    limit = quotas.get(accelerator)
    if limit is None:
        return
    acc = func.coalesce(J.c.accelerator, J.c.est_accelerator)
    n = func.coalesce(J.c.count, J.c.est_count)
    in_use = conn.execute(
        select(func.coalesce(func.sum(n), 0)).where(
            J.c.tenant_id == tenant_id, J.c.state.in_(ACTIVE_STATES), acc == accelerator
        )
    ).scalar_one()
    if in_use + count > limit:
        raise QuotaExceeded(accelerator, limit, int(in_use), count)


def insert_job(conn: Connection, tenant_id: int, adm: Admission, key: str | None) -> int:
    """Insert a pending job, its first event and its credit hold (one transaction: the caller's)."""
    now = time.time()
    cost = money(adm.estimate_cost)
    hold = money(adm.hold) if adm.hold is not None else cost
    tenants.balance_of(conn, tenant_id, for_update=True)
    job_id = conn.execute(
        insert(J).values(
            tenant_id=tenant_id, name=adm.name, state="pending", spec=adm.spec_json,
            idempotency_key=key, request_hash=adm.request_hash, submitted_at=now, updated_at=now,
            est_accelerator=adm.est_accelerator, est_count=adm.est_count, est_run_s=adm.est_run_s,
            estimate_cost=cost, reserved=hold, run_s=0.0, retries=0,
            max_retries=adm.max_retries, done_work=0.0, reason=adm.reason,
            cancel_requested=False,
        ).returning(J.c.id)
    ).scalar_one()
    tenants.reserve(conn, tenant_id, job_id, hold)
    conn.execute(insert(E).values(job_id=job_id, at=now, old_state=None, new_state="pending",
                                  reason=adm.reason))
    return job_id


def get_job(conn: Connection, job_id: int, tenant_id: int | None = None) -> dict:
    """A job by id; a job of another tenant is reported as not existing."""
    stmt = select(J).where(J.c.id == job_id)
    if tenant_id is not None:
        stmt = stmt.where(J.c.tenant_id == tenant_id)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFound(f"no job {job_id}", field="job_id", value=job_id)
    return dict(row)


def list_jobs(conn: Connection, tenant_id: int | None, states: Iterable[str] = (),
              limit: int = 100, before_id: int | None = None) -> list[dict]:
    stmt = select(J).order_by(J.c.id.desc()).limit(limit)
    if tenant_id is not None:
        stmt = stmt.where(J.c.tenant_id == tenant_id)
    states = list(states)
    if states:
        stmt = stmt.where(J.c.state.in_(states))
    if before_id is not None:
        stmt = stmt.where(J.c.id < before_id)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def active_jobs(conn: Connection) -> list[dict]:
    stmt = select(J).where(J.c.state.in_(ACTIVE_STATES)).order_by(J.c.id)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def events(conn: Connection, job_id: int) -> list[dict]:
    rows = conn.execute(select(E).where(E.c.job_id == job_id).order_by(E.c.id)).mappings()
    out = []
    for r in rows:
        d = dict(r)
        d["placement"] = json.loads(d["placement"]) if d["placement"] else None
        out.append(d)
    return out


def counts_by_state(conn: Connection, tenant_id: int | None = None) -> dict[str, int]:
    stmt = select(J.c.state, func.count()).group_by(J.c.state)
    if tenant_id is not None:
        stmt = stmt.where(J.c.tenant_id == tenant_id)
    return {s: n for s, n in conn.execute(stmt)}


def record_transition(conn: Connection, job_id: int, old: str | None, new: str, reason: str,
                      placement: Mapping[str, Any] | None, at: float | None = None,
                      extra: Mapping[str, Any] | None = None,
                      hold: PlacementHold | None = None) -> dict:
    """Write one state change; on a terminal state settle the job's credits. Returns the job.

    `extra`: further job columns (retries, done_work, handle) set in the same UPDATE.
    `hold`: the job is being placed: its hold is re-priced at the placement's price first
    (raises billing.PlacementRefused, with nothing written, when the tenant cannot cover it).
    A job already settled is left as it is (its hold is released exactly once)."""
    now = at if at is not None else time.time()
    job = get_job(conn, job_id)
    if job["charged"] is not None:
        return job
    values: dict[str, Any] = {**(extra or {}), "state": new, "updated_at": now,
                              "reason": reason}
    values.update(billing.clock_values(_run_clock(conn, job), new, now))
    if placement:
        for k in ("center", "pool", "accelerator", "count"):
            if placement.get(k) is not None:
                values[k] = placement[k]
        parts = placement.get("parts")
        values["placement_parts"] = json.dumps(parts) if parts else None
    if hold is not None:
        # The option's cost already counts the egress; a hold priced from the run alone adds it.
        held = job if hold.option_cost is not None or hold.egress <= 0 else {
            **job, "spent": Decimal(job["spent"] or 0) + hold.egress}
        values["reserved"] = billing.hold_at_placement(
            conn, held, hold.price_per_chip_hour, hold.chips, hold.remaining_s, hold.where,
            option_cost=hold.option_cost)
        values["price_per_chip_hour"] = hold.price_per_chip_hour
        if hold.egress > 0:
            values["spent"] = Decimal(job["spent"] or 0) + hold.egress
    if new in TERMINAL_STATES:
        values["finished_at"] = now
        if not billing.settle_once(conn, job, values):
            return get_job(conn, job_id)
    else:
        conn.execute(update(J).where(J.c.id == job_id).values(**values))
    conn.execute(insert(E).values(
        job_id=job_id, at=now, old_state=job["state"] if old is not None else None,
        new_state=new, reason=reason,
        placement=json.dumps(dict(placement)) if placement else None,
    ))
    job.update(values)
    return job


@dataclass(frozen=True, slots=True)
class PlacementHold:
    """Where a job is being placed, for re-pricing its hold before it starts."""

    price_per_chip_hour: Decimal
    chips: int
    remaining_s: float | None  # the engine's estimate of its run there
    where: str  # the pool, for the ledger note and the refusal
    option_cost: Decimal | None = None  # the broker's option (run + egress), as estimated
    egress: Decimal = Decimal(0)  # moving its dataset here: charged when it is placed


def _run_clock(conn: Connection, job: dict[str, Any]) -> billing.RunClock:
    price = job["price_per_chip_hour"]
    if price is None and job["running_since"] is not None:
        price = billing.stored_price(conn, job)
    return billing.RunClock(job["running_since"], job["run_s"] or 0.0, job["started_at"],
                            job["spent"], price, job["count"])


def update_job(conn: Connection, job_id: int, **values: Any) -> None:
    conn.execute(update(J).where(J.c.id == job_id).values(**values))

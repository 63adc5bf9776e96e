"""Compute vouchers (算力券) as cities issue them: an issuer pays a share of a job's price, at
eligible centers or regions, up to a cap, for jobs that start before the voucher expires.

A voucher's cap is a balance of its own: `vouchers.remaining` always equals the sum of its
rows in `voucher_ledger` (`issue` +cap, `pay` -what it paid, `revoke` -what was left), and
never goes below zero (a guarded UPDATE and a CHECK constraint).

Order of payment, at settlement (`billing.settle_once`), for a job's charge C (to the fen):
1. the tenant's eligible vouchers, soonest expiry first (then the larger share, then the
   older voucher), each paying its share of C rounded down to the fen, limited by its cap
   left and by what of C is still unpaid;
2. the tenant's own credits pay the rest (the job's hold covers all of C, so they always can).

A voucher is eligible for a job when it is not revoked, belongs to the job's tenant, lists the
job's center or the center's region (or lists neither: anywhere), and the job began running
before the voucher expired. A job that straddles the expiry (started before it, ends after)
is covered for its whole charge: a voucher honours the work begun while it was valid. A job's
charge is settled once, so no voucher pays for it twice (one `pay` row per voucher and job,
a unique constraint).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, select, update

from suanli.store.errors import Conflict, NotFound, StoreError
from suanli.store.models import CenterRow, Voucher, VoucherEntry
from suanli.store.types import money

if TYPE_CHECKING:
    from suanli.plan.vouchers import VoucherTerms
    from suanli.store.db import Database

V = Voucher.__table__
VL = VoucherEntry.__table__
C = CenterRow.__table__
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Payment:
    """What one voucher paid of one job's charge."""

    voucher_id: int
    issuer: str
    amount: Decimal


def _names(value: str) -> tuple[str, ...]:
    return tuple(n for n in value.split(",") if n)


def view(row: Any) -> dict[str, Any]:
    """A voucher as the API shows it (money as Decimals; the route makes them strings)."""
    r = dict(row)
    return {"id": r["id"], "tenant_id": r["tenant_id"], "issuer": r["issuer"],
            "share": r["share"], "centers": list(_names(r["centers"])),
            "regions": list(_names(r["regions"])), "cap": r["cap"], "remaining": r["remaining"],
            "expires_at": r["expires_at"], "issued_at": r["issued_at"],
            "revoked_at": r["revoked_at"], "note": r["note"]}


def issue(conn: Connection, tenant_id: int, *, issuer: str, share: Decimal, cap: Decimal,
          expires_at: float, centers: tuple[str, ...] = (), regions: tuple[str, ...] = (),
          note: str = "", at: float | None = None) -> dict[str, Any]:
    """Issue a voucher to a tenant: its cap enters its own ledger as an `issue` row."""
    now = time.time() if at is None else at
    share, cap = money(share, 4), money(cap)
    if not Decimal(0) < share <= Decimal(1):
        raise StoreError(f"share: must be in (0, 1] (got {share})", field="share",
                         value=str(share))
    if cap <= 0:
        raise StoreError(f"cap: must be positive (got {cap})", field="cap", value=str(cap))
    if not expires_at > now:
        raise StoreError(f"expires_at: must be in the future (got {expires_at})",
                         field="expires_at", value=expires_at)
    for field, names in (("centers", centers), ("regions", regions)):
        bad = [n for n in names if not n or "," in n]
        if bad:
            raise StoreError(f"{field}: bad name {bad[0]!r}", field=field, value=bad[0])
    vid = conn.execute(insert(V).values(
        tenant_id=tenant_id, issuer=issuer, share=share, centers=",".join(centers),
        regions=",".join(regions), cap=cap, remaining=cap, expires_at=float(expires_at),
        issued_at=now, revoked_at=None, note=note).returning(V.c.id)).scalar_one()
    _entry(conn, vid, tenant_id, None, "issue", cap, f"issued by {issuer}", now)
    return get(conn, vid)


def get(conn: Connection, voucher_id: int) -> dict[str, Any]:
    row = conn.execute(select(V).where(V.c.id == voucher_id)).mappings().first()
    if row is None:
        raise NotFound(f"no voucher {voucher_id}", field="voucher", value=voucher_id)
    return view(row)


def list_vouchers(conn: Connection, tenant_id: int | None = None) -> list[dict[str, Any]]:
    """Vouchers (of one tenant, or all), each with what it has paid so far."""
    stmt = select(V).order_by(V.c.id)
    if tenant_id is not None:
        stmt = stmt.where(V.c.tenant_id == tenant_id)
    out = [view(r) for r in conn.execute(stmt).mappings()]
    paid = paid_by_voucher(conn, tenant_id)
    for v in out:
        v["paid"] = paid.get(v["id"], Decimal("0.00"))
    return out


def revoke(conn: Connection, voucher_id: int, at: float | None = None) -> dict[str, Any]:
    """Revoke a voucher: it pays for no job settled from now on; what was left of its cap
    leaves its ledger as a `revoke` row (what it already paid stays paid)."""
    now = time.time() if at is None else at
    row = conn.execute(select(V).where(V.c.id == voucher_id).with_for_update()).mappings().first()
    if row is None:
        raise NotFound(f"no voucher {voucher_id}", field="voucher", value=voucher_id)
    if row["revoked_at"] is not None:
        raise Conflict(f"voucher {voucher_id} is already revoked", field="voucher",
                       value=voucher_id)
    left = row["remaining"]
    conn.execute(update(V).where(V.c.id == voucher_id)
                 .values(revoked_at=now, remaining=V.c.remaining - left))
    _entry(conn, voucher_id, row["tenant_id"], None, "revoke", -left, "revoked", now)
    return get(conn, voucher_id)


def active(conn: Connection, tenant_id: int, at: float | None = None) -> list[dict[str, Any]]:
    """A tenant's vouchers that can still pay: not revoked, not expired, cap left."""
    now = time.time() if at is None else at
    rows = conn.execute(select(V).where(
        V.c.tenant_id == tenant_id, V.c.revoked_at.is_(None), V.c.expires_at > now,
        V.c.remaining > 0).order_by(V.c.id)).mappings()
    return [view(r) for r in rows]


def eligible(voucher: dict[str, Any], center: str | None, region: str | None,
             started_at: float) -> bool:
    """May this voucher pay for a job run at `center` (in `region`) begun at `started_at`?"""
    if voucher["revoked_at"] is not None or not started_at < voucher["expires_at"]:
        return False
    if not voucher["centers"] and not voucher["regions"]:
        return True
    return center in voucher["centers"] or (region is not None
                                            and region in voucher["regions"])


def payment_order(vouchers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Soonest expiry first, then the larger share, then the older voucher."""
    return sorted(vouchers, key=lambda v: (v["expires_at"], -v["share"], v["id"]))


def split(charge: Decimal, vouchers: list[dict[str, Any]]) -> list[tuple[int, Decimal]]:
    """(voucher id, amount) each eligible voucher pays of `charge`, in the order of payment;
    the tenant pays `charge` less their sum (never negative)."""
    left = money(charge)
    out: list[tuple[int, Decimal]] = []
    for v in payment_order(vouchers):
        part = (Decimal(v["share"]) * money(charge)).quantize(CENT, rounding=ROUND_FLOOR)
        part = min(part, Decimal(v["remaining"]), left)
        if part > 0:
            out.append((v["id"], part))
            left -= part
    return out


def pay_for_job(conn: Connection, job: dict[str, Any], charge: Decimal,
                at: float) -> list[Payment]:
    """Charge a settled job's eligible vouchers their part of `charge` (see the module doc);
    returns what each paid. Call once per job, inside its settlement's transaction."""
    if charge <= 0:
        return []
    center = job.get("center")
    region = (conn.execute(select(C.c.region).where(C.c.id == center)).scalar_one_or_none()
              if center else None)
    started = job.get("started_at")
    started_at = float(started) if started is not None else at
    rows = conn.execute(select(V).where(
        V.c.tenant_id == job["tenant_id"], V.c.revoked_at.is_(None), V.c.remaining > 0)
        .order_by(V.c.id).with_for_update()).mappings()
    candidates = [v for v in (view(r) for r in rows) if eligible(v, center, region, started_at)]
    issuer = {v["id"]: v["issuer"] for v in candidates}
    paid: list[Payment] = []
    for vid, amount in split(charge, candidates):
        done = conn.execute(update(V).where(V.c.id == vid, V.c.remaining >= amount)
                            .values(remaining=V.c.remaining - amount))
        if done.rowcount == 0:  # spent meanwhile (cannot happen under the row lock)
            continue
        _entry(conn, vid, job["tenant_id"], job["id"], "pay", -amount,
               f"{issuer[vid]} paid its share of job {job['id']}'s charge {charge}", at)
        paid.append(Payment(vid, issuer[vid], amount))
    return paid


def _entry(conn: Connection, voucher_id: int, tenant_id: int, job_id: int | None, kind: str,
           amount: Decimal, note: str, at: float) -> None:
    conn.execute(insert(VL).values(voucher_id=voucher_id, tenant_id=tenant_id, job_id=job_id,
                                   kind=kind, amount=amount, created_at=at, note=note))


def ledger_sum(conn: Connection, voucher_id: int) -> Decimal:
    """The sum of a voucher's ledger rows (equal to its `remaining`)."""
    total = conn.execute(select(func.sum(VL.c.amount))
                         .where(VL.c.voucher_id == voucher_id)).scalar_one()
    return money(total or 0)


def paid_by_voucher(conn: Connection, tenant_id: int | None = None) -> dict[int, Decimal]:
    """What each voucher has paid of jobs' charges."""
    stmt = (select(VL.c.voucher_id, func.sum(VL.c.amount)).where(VL.c.kind == "pay")
            .group_by(VL.c.voucher_id))
    if tenant_id is not None:
        stmt = stmt.where(VL.c.tenant_id == tenant_id)
    return {vid: -money(total) for vid, total in conn.execute(stmt)}


def paid_for_job(conn: Connection, job_id: int) -> Decimal:
    total = conn.execute(select(func.sum(VL.c.amount)).where(
        VL.c.job_id == job_id, VL.c.kind == "pay")).scalar_one()
    return -money(total or 0)


def active_terms(db: Database, tenant_id: int, at: float | None = None
                 ) -> tuple[VoucherTerms, ...]:
    """What the planner needs of a tenant's vouchers that can pay now (`plan.vouchers`)."""
    from suanli.plan.vouchers import terms_of  # the planner is a sibling layer: loaded late

    with db.read() as conn:
        return terms_of(active(conn, int(tenant_id), at))

"""Billing rules, written once: the run clock, holds priced on a placement, overrun checks and
the final charge.

Money flows through the ledger only (see `store.tenants`): a job's hold (`jobs.reserved`) is
taken from the tenant's available balance at admission, raised to the price of the pool it is
placed on before it starts (`hold_at_placement`), extended while it runs when its spend nears
the hold (`enforce_holds`), and released exactly once when it ends, less its charge
(`final_charge`). The runner stops a job whose hold cannot be extended before its spend passes
the hold, so the charge never exceeds the hold and a balance never goes below zero.

Spend accrues per run segment at the price of the segment's placement (`jobs.spent`, to the
micro-yuan); a segment is the time on chips (`starting`, `running`, `checkpointing`).
Charges round up to the fen and are never zero for a job that ran on a priced pool. At
settlement the tenant's eligible vouchers pay their share of the charge and the tenant's
credits the rest (`store.vouchers` gives the order); holds are taken on the full price, so the
tenant can always pay whatever the vouchers do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import Connection, select, update

from suanli.store import tenants, vouchers
from suanli.store.errors import InsufficientCredits
from suanli.store.models import Job, PoolRow, Tenant

J = Job.__table__
T = Tenant.__table__
P = PoolRow.__table__

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")
MIN_HOLD_S = 10.0  # the smallest hold: ten seconds of the placement (many overrun checks)
CHECK_S = 1.0  # how often the runner compares each running job's spend with its hold
LOOKAHEAD_S = 3.0  # a hold must cover this much more running, or it is extended now
EXTEND_FRACTION = Decimal("0.5")  # an extension adds half the hold (at least MIN_HOLD_S)
CURRENCY = "CNY"
ON_CHIPS = ("starting", "running", "checkpointing")  # billed: the job holds its chips


def seconds(run_s: float) -> Decimal:
    """Measured seconds as an exact Decimal (the float's shortest repr)."""
    return Decimal(repr(float(run_s)))


def spend(price_per_chip_hour: Decimal | None, chips: int | None, run_s: float) -> Decimal:
    """chips x run seconds x price, to the micro-yuan, rounded up (never under the truth)."""
    if not price_per_chip_hour or not chips or run_s <= 0:
        return Decimal("0.000000")
    exact = Decimal(chips) * seconds(run_s) * Decimal(price_per_chip_hour) / Decimal(3600)
    return exact.quantize(MICRO, rounding=ROUND_CEILING)


def ceil_cent(amount: Decimal) -> Decimal:
    """Round in the platform's favour, to the fen."""
    return Decimal(amount).quantize(CENT, rounding=ROUND_CEILING)


def hold_for(price_per_chip_hour: Decimal | None, chips: int | None,
             run_s: float | None, spent: Decimal = Decimal(0)) -> Decimal:
    """What a job that has spent `spent` must hold to run `run_s` more seconds (at least
    MIN_HOLD_S) at this price.

    The estimate is taken to the millisecond first, so a float's last bit never costs a fen."""
    run = max(float(run_s or 0.0), MIN_HOLD_S)
    run = float(Decimal(repr(run)).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN))
    return ceil_cent(Decimal(spent) + spend(price_per_chip_hour, chips, run))


def admission_hold(estimate_cost: Decimal, price_per_chip_hour: Decimal | None,
                   chips: int) -> Decimal:
    """The hold taken at admission: the estimate, and never less than the minimum hold."""
    return max(ceil_cent(estimate_cost), hold_for(price_per_chip_hour, chips, 0.0))


def final_charge(spent: Decimal, run_s: float, reserved: Decimal) -> Decimal:
    """The charge for a job's spend: up to the fen, at least 0.01 if it ran on a priced pool,
    and never more than it held (the runner stops a job before that; this is the backstop)."""
    if spent <= 0:
        return Decimal("0.00")
    if run_s <= 0:  # it never ran: what it spent is the egress of staging its dataset
        return min(ceil_cent(spent), Decimal(reserved))
    return min(max(ceil_cent(spent), CENT), Decimal(reserved))


@dataclass(frozen=True, slots=True)
class RunClock:
    """The columns the run clock reads: when the current run began and what came before."""

    running_since: float | None
    run_s: float
    started_at: float | None
    spent: Decimal
    price_per_chip_hour: Decimal | None
    count: int | None


def clock_values(clock: RunClock, new: str, at: float) -> dict[str, Any]:
    """The job columns a state change sets: a run segment ends (its seconds and its spend at
    the segment's price are added) when the job leaves its chips, and one begins when it is
    placed on them (`starting`: restoring a checkpoint holds the chips too, as the engine
    counts it; and a restart that finds the job still `starting` keeps billing it)."""
    values: dict[str, Any] = {}
    if clock.running_since is not None and new not in ON_CHIPS:
        seg = max(0.0, at - clock.running_since)
        values["run_s"] = (clock.run_s or 0.0) + seg
        values["running_since"] = None
        values["spent"] = Decimal(clock.spent or 0) + spend(clock.price_per_chip_hour,
                                                            clock.count, seg)
    if new in ON_CHIPS and clock.running_since is None:
        values["running_since"] = at
    if new == "running" and clock.started_at is None:
        values["started_at"] = at
    return values


def spend_at(job: dict[str, Any], at: float) -> Decimal:
    """A job's spend so far, including its current run segment up to `at`."""
    spent = Decimal(job["spent"] or 0)
    if job["running_since"] is not None:
        spent += spend(job["price_per_chip_hour"], job["count"],
                       max(0.0, at - job["running_since"]))
    return spent


def stored_price(conn: Connection, job: dict[str, Any]) -> Decimal | None:
    """The price a job runs at: stored at placement; for a row placed before prices were
    stored, its pool's on-demand price."""
    if job.get("price_per_chip_hour") is not None:
        return job["price_per_chip_hour"]
    if not job.get("center"):
        return None
    return conn.execute(select(P.c.price_per_chip_hour).where(
        P.c.center_id == job["center"], P.c.id == job["pool"])).scalar_one_or_none()


def hold_at_placement(conn: Connection, job: dict[str, Any], price_per_chip_hour: Decimal,
                      chips: int, remaining_s: float | None, where: str,
                      option_cost: Decimal | None = None) -> Decimal:
    """Raise a job's hold to what it has spent plus what its remaining run costs where it is
    placed; returns the hold. `option_cost`: the broker's option for this placement, priced
    as an admission estimate is (so a job placed as planned holds exactly its estimate).

    Raises PlacementRefused (nothing written) when the tenant's available balance cannot
    cover the difference: the job must not start."""
    spent = Decimal(job["spent"] or 0)
    if option_cost is not None:
        hold = max(ceil_cent(spent + option_cost), hold_for(price_per_chip_hour, chips, 0.0))
    else:
        hold = hold_for(price_per_chip_hour, chips, remaining_s, spent)
    reserved = Decimal(job["reserved"])
    if hold <= reserved:
        return reserved
    delta = hold - reserved
    note = (f"hold re-priced on {where}: {chips} chips x {price_per_chip_hour}/chip-hour "
            f"x {max(remaining_s or 0.0, MIN_HOLD_S):.0f} s = {hold}")
    if not tenants.hold_more(conn, job["tenant_id"], job["id"], delta, note):
        bal, res = tenants.balance_of(conn, job["tenant_id"])
        raise PlacementRefused(bal, res, delta, hold=hold, held=reserved, where=where)
    return hold


class PlacementRefused(InsufficientCredits):
    """The tenant cannot cover a job's hold re-priced on the pool it was placed on."""

    def __init__(self, balance: Decimal, reserved: Decimal, required: Decimal, *,
                 hold: Decimal, held: Decimal, where: str) -> None:
        super().__init__(balance, reserved, required)
        self.hold, self.held, self.where, self.available = hold, held, where, balance

    @property
    def reason(self) -> str:
        return (f"insufficient credits at placement on {self.where}: its run there needs a "
                f"hold of {self.hold} {CURRENCY}, {self.held} is held, the other "
                f"{self.hold - self.held} is more than the available balance {self.available}")


@dataclass(frozen=True, slots=True)
class Exhausted:
    """A running job whose hold cannot be extended: stop it, with this reason."""

    job_id: int
    reason: str


def running_jobs(conn: Connection) -> list[dict[str, Any]]:
    """The jobs on chips, with what their spend and hold are computed from."""
    cols = (J.c.id, J.c.tenant_id, J.c.count, J.c.price_per_chip_hour, J.c.spent, J.c.reserved,
            J.c.running_since, J.c.center, J.c.pool)
    jobs = [dict(r) for r in conn.execute(select(*cols).where(J.c.state.in_(ON_CHIPS)))
            .mappings()]
    for job in jobs:
        if job["price_per_chip_hour"] is None:  # placed before prices were stored
            job["price_per_chip_hour"] = stored_price(conn, job)
    return jobs


def short_of_hold(jobs: list[dict[str, Any]], at: float,
                  lookahead_s: float = LOOKAHEAD_S) -> list[dict[str, Any]]:
    """The running jobs whose spend will pass their hold within `lookahead_s`."""
    return [j for j in jobs if j["price_per_chip_hour"] is not None
            and spend_at(j, at + lookahead_s) > Decimal(j["reserved"])]


def enforce_holds(conn: Connection, jobs: list[dict[str, Any]], at: float,
                  lookahead_s: float = LOOKAHEAD_S) -> list[Exhausted]:
    """Extend from the balance the hold of each job short of it (by half its hold, at least
    MIN_HOLD_S of its placement, up to what is available); the jobs still short must stop."""
    stops: list[Exhausted] = []
    for job in short_of_hold(jobs, at, lookahead_s):
        reserved = Decimal(job["reserved"])
        need = ceil_cent(spend_at(job, at + lookahead_s)) - reserved
        want = max(need, ceil_cent(reserved * EXTEND_FRACTION),
                   hold_for(job["price_per_chip_hour"], job["count"], MIN_HOLD_S))
        balance, _ = tenants.balance_of(conn, job["tenant_id"], for_update=True)
        take = min(want, balance)
        if take > 0 and tenants.hold_more(conn, job["tenant_id"], job["id"], take,
                                          "hold extended: the job runs past its hold"):
            reserved += take
            balance -= take
        if take < need:
            spent = ceil_cent(spend_at(job, at))
            stops.append(Exhausted(int(job["id"]), (
                f"credits exhausted: spent {spent} of hold {reserved} {CURRENCY}, balance "
                f"{balance}; stopped before the spend passes the hold")))
    return stops


def settle_once(conn: Connection, job: dict[str, Any], values: dict[str, Any]) -> bool:
    """Write a job's terminal columns and release its hold less its charge, exactly once
    (the tenant's eligible vouchers pay their part of the charge first, `store.vouchers`):
    the UPDATE only matches a job not yet charged (a second settle, from a replay or another
    process, changes nothing and returns False)."""
    spent = values.get("spent", job.get("spent") or Decimal(0))
    run_s = float(values.get("run_s", job["run_s"]) or 0.0)
    charge = final_charge(Decimal(spent), run_s, Decimal(job["reserved"]))
    values["charged"] = charge
    done = conn.execute(update(J).where(J.c.id == job["id"], J.c.charged.is_(None))
                        .values(**values))
    if done.rowcount == 0:
        return False
    count = job.get("count") or 0
    at = float(values.get("finished_at") or values.get("updated_at") or 0.0)
    paid = vouchers.pay_for_job(conn, {**job, **values}, charge, at)
    by_vouchers = sum((p.amount for p in paid), Decimal("0.00"))
    note = f"{count} chips x {run_s:.3f} s: spend {spent}, charged {charge}"
    if paid:
        note += "; vouchers paid " + ", ".join(f"{p.amount} ({p.issuer})" for p in paid)
    tenants.settle(conn, job["tenant_id"], job["id"], job["reserved"], charge - by_vouchers,
                   note=note)
    return True

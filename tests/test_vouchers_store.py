"""Vouchers at the store: a voucher pays its share of a job's charge at eligible centers
before it expires, up to its cap, and the tenant's credits pay the rest; money stays exact
and conserved on SQLite and PostgreSQL (balances equal their ledgers, nothing paid twice)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from suanli.store import billing, tenants, vouchers
from suanli.store import jobs as store_jobs
from suanli.store.db import connect
from suanli.store.errors import Conflict, StoreError
from suanli.store.fastpath import FastPath
from suanli.store.jobs import Admission, PlacementHold
from suanli.store.models import CenterRow, Voucher

A800 = Decimal("36.00")  # CNY per chip-hour: one chip for 100 s costs exactly 1.00
T0 = 1_000_000.0
V = Voucher.__table__


@pytest.fixture
def db(db_url):
    database = connect(db_url)
    with database.write() as conn:
        conn.execute(insert(CenterRow.__table__).values(
            id="alpha", name="Alpha", region="north", lat=0.0, lon=0.0,
            electricity_price_per_kwh=0.5))
    yield database
    database.dispose()


def _tenant(db, credits: str = "100.00") -> int:
    with db.write() as conn:
        tid, _ = tenants.create_tenant(conn, f"t-{uuid.uuid4().hex[:8]}",
                                       credits=Decimal(credits))
    return tid


def _issue(db, tid: int, share: str = "0.30", cap: str = "50.00", expires_at: float = T0 + 500,
           **kw) -> dict:
    with db.write() as conn:
        return vouchers.issue(conn, tid, issuer=kw.pop("issuer", "Wuhu"), share=Decimal(share),
                              cap=Decimal(cap), expires_at=expires_at, at=T0 - 10, **kw)


def _run_job(db, tid: int, run_s: float = 100.0, start: float = T0) -> dict:
    """A one-chip job at alpha (region north) that runs `run_s` seconds from `start`."""
    adm = Admission(name="j", spec_json="{}", request_hash="h", estimate_cost=Decimal("0"),
                    est_accelerator="A800", est_count=1, est_run_s=run_s, max_retries=0,
                    hold=billing.admission_hold(Decimal("0"), A800, 1))
    placement = {"center": "alpha", "pool": "a800", "accelerator": "A800", "count": 1}
    with db.write() as conn:
        job = FastPath(db.dialect).admit(conn, tid, adm, None)
        jid = job["id"]
        store_jobs.record_transition(conn, jid, "pending", "queued", "arrived", None, at=start)
        store_jobs.record_transition(conn, jid, "queued", "starting", "placed", placement,
                                     at=start, hold=PlacementHold(A800, 1, run_s, "alpha/a800"))
        store_jobs.record_transition(conn, jid, "starting", "running", "running", None,
                                     at=start)
    with db.write() as conn:
        return store_jobs.record_transition(conn, jid, "running", "succeeded", "done", None,
                                            at=start + run_s)


def _check_invariants(db, tid: int) -> None:
    with db.read() as conn:
        balance, reserved = tenants.balance_of(conn, tid)
        assert balance >= 0 and reserved >= 0
        assert sum(tenants.ledger_sums(conn, tid).values()) == balance + reserved
        for v in vouchers.list_vouchers(conn, tid):
            assert v["remaining"] >= 0
            assert vouchers.ledger_sum(conn, v["id"]) == v["remaining"]
            assert v["cap"] - v["remaining"] >= v["paid"]


def test_a_voucher_pays_its_share_and_the_tenant_the_rest(db):
    tid = _tenant(db)
    v = _issue(db, tid, share="0.30", centers=("alpha",))
    job = _run_job(db, tid)
    assert job["charged"] == Decimal("1.00")
    with db.read() as conn:
        balance, reserved = tenants.balance_of(conn, tid)
        assert vouchers.paid_for_job(conn, job["id"]) == Decimal("0.30")
        assert vouchers.get(conn, v["id"])["remaining"] == Decimal("49.70")
    assert (balance, reserved) == (Decimal("99.30"), Decimal("0.00"))
    _check_invariants(db, tid)


def test_a_voucher_for_another_region_or_center_pays_nothing(db):
    tid = _tenant(db)
    _issue(db, tid, centers=("wuhu",))
    _issue(db, tid, regions=("south",))
    job = _run_job(db, tid)
    with db.read() as conn:
        assert vouchers.paid_for_job(conn, job["id"]) == Decimal("0.00")
        assert tenants.balance_of(conn, tid)[0] == Decimal("99.00")


def test_a_voucher_for_the_centers_region_pays(db):
    tid = _tenant(db)
    _issue(db, tid, share="0.5", regions=("north",))
    job = _run_job(db, tid)
    with db.read() as conn:
        assert vouchers.paid_for_job(conn, job["id"]) == Decimal("0.50")


def test_a_voucher_pays_no_more_than_its_cap_left(db):
    tid = _tenant(db)
    v = _issue(db, tid, share="1", cap="0.40")
    _run_job(db, tid)
    second = _run_job(db, tid, start=T0 + 200)
    with db.read() as conn:
        assert vouchers.get(conn, v["id"])["remaining"] == Decimal("0.00")
        assert vouchers.paid_for_job(conn, second["id"]) == Decimal("0.00")
        assert tenants.balance_of(conn, tid)[0] == Decimal("98.40")
    _check_invariants(db, tid)


def test_a_job_that_straddles_the_expiry_is_covered_and_one_begun_after_it_is_not(db):
    tid = _tenant(db)
    _issue(db, tid, share="0.5", expires_at=T0 + 50)
    straddles = _run_job(db, tid, start=T0)  # ends at T0 + 100, after the expiry
    after = _run_job(db, tid, start=T0 + 60)
    with db.read() as conn:
        assert vouchers.paid_for_job(conn, straddles["id"]) == Decimal("0.50")
        assert vouchers.paid_for_job(conn, after["id"]) == Decimal("0.00")


def test_vouchers_pay_soonest_expiry_first_and_never_more_than_the_charge(db):
    tid = _tenant(db)
    late = _issue(db, tid, share="0.8", expires_at=T0 + 900, issuer="Hefei")
    soon = _issue(db, tid, share="0.6", expires_at=T0 + 400, issuer="Wuhu")
    job = _run_job(db, tid)
    with db.read() as conn:
        paid = {v["id"]: v["paid"] for v in vouchers.list_vouchers(conn, tid)}
        assert paid == {soon["id"]: Decimal("0.60"), late["id"]: Decimal("0.40")}
        assert tenants.balance_of(conn, tid)[0] == Decimal("100.00")
        assert vouchers.paid_for_job(conn, job["id"]) == job["charged"]
    _check_invariants(db, tid)


def test_a_revoked_voucher_pays_nothing_and_keeps_what_it_paid(db):
    tid = _tenant(db)
    v = _issue(db, tid, share="0.5")
    _run_job(db, tid)
    with db.write() as conn:
        revoked = vouchers.revoke(conn, v["id"], at=T0 + 150)
        with pytest.raises(Conflict):
            vouchers.revoke(conn, v["id"])
    second = _run_job(db, tid, start=T0 + 200)
    with db.read() as conn:
        assert vouchers.paid_for_job(conn, second["id"]) == Decimal("0.00")
        assert vouchers.list_vouchers(conn, tid)[0]["paid"] == Decimal("0.50")
    assert revoked["remaining"] == Decimal("0.00") and revoked["revoked_at"] == T0 + 150
    _check_invariants(db, tid)


def test_a_second_settlement_pays_no_voucher_twice(db):
    tid = _tenant(db)
    v = _issue(db, tid, share="0.5")
    job = _run_job(db, tid)
    with db.write() as conn:
        again = dict(job, charged=None)
        assert not billing.settle_once(conn, again, {"state": "succeeded", "finished_at": T0})
    with db.read() as conn:
        assert vouchers.get(conn, v["id"])["remaining"] == Decimal("49.50")
    _check_invariants(db, tid)


@pytest.mark.parametrize(("field", "kw"), [
    ("share", {"share": Decimal("0")}), ("share", {"share": Decimal("1.5")}),
    ("cap", {"cap": Decimal("0")}), ("expires_at", {"expires_at": T0 - 20}),
    ("centers", {"centers": ("a,b",)})])
def test_a_bad_voucher_is_refused_naming_its_field(db, field, kw):
    tid = _tenant(db)
    args = {"issuer": "Wuhu", "share": Decimal("0.3"), "cap": Decimal("10"),
            "expires_at": T0 + 100, **kw}
    with db.write() as conn, pytest.raises(StoreError) as err:
        vouchers.issue(conn, tid, at=T0, **args)
    assert err.value.field == field
    with db.read() as conn:
        assert conn.execute(select(V.c.id)).first() is None


_voucher = st.fixed_dictionaries({
    "id": st.integers(1, 10**6), "share": st.decimals("0.0001", "1", places=4),
    "remaining": st.decimals("0", "1000", places=2),
    "expires_at": st.floats(0, 1e9, allow_nan=False)})


@settings(max_examples=300, deadline=None)
@given(charge=st.decimals("0", "10000", places=2), vs=st.lists(_voucher, max_size=5,
                                                                unique_by=lambda v: v["id"]))
def test_a_split_never_pays_more_than_the_charge_or_a_cap(charge, vs):
    parts = vouchers.split(charge, vs)
    remaining = {v["id"]: v["remaining"] for v in vs}
    assert sum((a for _, a in parts), Decimal(0)) <= charge
    assert all(Decimal(0) < a <= remaining[vid] for vid, a in parts)
    assert len({vid for vid, _ in parts}) == len(parts)
    share = {v["id"]: v["share"] for v in vs}
    assert all(a <= share[vid] * charge for vid, a in parts)


_step = st.one_of(
    st.tuples(st.just("job"), st.floats(1.0, 400.0), st.floats(0.0, 600.0)),
    st.tuples(st.just("revoke"), st.integers(0, 3), st.just(0.0)))
_issued = st.lists(st.tuples(st.sampled_from(["0.1", "0.3", "0.5", "1"]),
                             st.sampled_from(["0.05", "0.50", "3.00", "50.00"]),
                             st.floats(1.0, 600.0),
                             st.sampled_from([(), ("alpha",), ("elsewhere",)])),
                   min_size=1, max_size=4)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(issued=_issued, steps=st.lists(_step, min_size=1, max_size=6))
def test_random_vouchers_and_jobs_keep_every_balance_equal_to_its_ledger(db, issued, steps):
    tid = _tenant(db, "1000.00")
    ids = [_issue(db, tid, share=s, cap=c, expires_at=T0 + e, centers=where)["id"]
           for s, c, e, where in issued]
    charged = Decimal("0.00")
    for kind, a, b in steps:
        if kind == "job":
            charged += _run_job(db, tid, run_s=a, start=T0 + b)["charged"]
        else:
            with db.write() as conn:
                if vouchers.get(conn, ids[a % len(ids)])["revoked_at"] is None:
                    vouchers.revoke(conn, ids[a % len(ids)], at=T0)
        _check_invariants(db, tid)
    with db.read() as conn:
        balance, _ = tenants.balance_of(conn, tid)
        paid = sum(vouchers.paid_by_voucher(conn, tid).values(), Decimal("0.00"))
    assert Decimal("1000.00") - balance + paid == charged  # every fen charged is paid once

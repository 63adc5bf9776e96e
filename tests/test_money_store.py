"""Money that cannot leak, at the store: holds priced on the placement, spend checked against
the hold, charges rounded up and never zero, each hold released once; and a Hypothesis state
machine that drives random job lives through the store on SQLite and PostgreSQL and checks the
ledger after every step."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from suanli.store import billing, tenants
from suanli.store import jobs as store_jobs
from suanli.store.db import connect
from suanli.store.errors import InsufficientCredits
from suanli.store.fastpath import FastPath
from suanli.store.jobs import ACTIVE_STATES, Admission, PlacementHold
from suanli.store.models import TERMINAL_STATES, Job, LedgerEntry

J = Job.__table__
L = LedgerEntry.__table__
A800 = Decimal("33.33")  # CNY per chip-hour
T0 = 1_000_000.0


@pytest.fixture
def db(db_url):
    database = connect(db_url)
    yield database
    database.dispose()


def _admission(cost: str = "0.00", price: Decimal = A800, chips: int = 1,
               run_s: float = 1.0) -> Admission:
    return Admission(name="j", spec_json="{}", request_hash="h", estimate_cost=Decimal(cost),
                     est_accelerator="A800", est_count=chips, est_run_s=run_s, max_retries=0,
                     hold=billing.admission_hold(Decimal(cost), price, chips))


def _tenant(db, credits: str) -> int:
    with db.write() as conn:
        tid, _ = tenants.create_tenant(conn, f"t-{uuid.uuid4().hex[:8]}",
                                       credits=Decimal(credits) if Decimal(credits) else None)
    return tid


def _submit(db, tid: int, adm: Admission) -> dict:
    with db.write() as conn:
        return FastPath(db.dialect).admit(conn, tid, adm, None)


def _place(db, job_id: int, at: float, price: Decimal = A800, chips: int = 1,
           remaining_s: float | None = 1.0) -> dict:
    placement = {"center": "alpha", "pool": "a800", "accelerator": "A800", "count": chips}
    with db.write() as conn:
        store_jobs.record_transition(conn, job_id, "pending", "queued", "arrived", None, at=at)
        store_jobs.record_transition(conn, job_id, "queued", "starting", "placed", placement,
                                     at=at, hold=PlacementHold(price, chips, remaining_s,
                                                               "alpha/a800"))
        return store_jobs.record_transition(conn, job_id, "starting", "running", "running",
                                            None, at=at)


def _end(db, job_id: int, state: str, at: float, reason: str = "") -> dict:
    with db.write() as conn:
        return store_jobs.record_transition(conn, job_id, "running", state, reason, None, at=at)


def test_charges_round_up_to_the_fen_and_are_never_zero_for_a_job_that_ran():
    assert billing.final_charge(Decimal("0.000001"), 0.001, Decimal("1.00")) == Decimal("0.01")
    assert billing.final_charge(Decimal("0.010001"), 2.0, Decimal("1.00")) == Decimal("0.02")
    assert billing.final_charge(Decimal("0"), 0.0, Decimal("1.00")) == Decimal("0.00")
    # Never more than held: the backstop when a stalled check let a job outrun its hold.
    assert billing.final_charge(Decimal("5.5"), 100.0, Decimal("0.30")) == Decimal("0.30")
    # 1 A800 for 1 ms costs 0.00000926 CNY: rounded up, not to zero.
    assert billing.spend(A800, 1, 0.001) == Decimal("0.000010")


def test_a_job_estimated_at_zero_still_holds_the_minimum(db):
    tid = _tenant(db, "1.00")
    job = _submit(db, tid, _admission(cost="0.00"))
    minimum = billing.hold_for(A800, 1, 0.0)  # 10 s of 1 A800 at 33.33/h = 0.0926 -> 0.10
    assert minimum == Decimal("0.10") and job["reserved"] == minimum
    with db.read() as conn:
        assert tenants.balance_of(conn, tid) == (Decimal("0.90"), Decimal("0.10"))


def test_admission_refuses_a_tenant_that_cannot_cover_the_hold_with_the_numbers(db):
    tid = _tenant(db, "0.05")
    with pytest.raises(InsufficientCredits) as err:
        _submit(db, tid, _admission(cost="0.00"))
    assert err.value.status == 402
    assert (err.value.extra["available"], err.value.extra["needed"]) == ("0.05", "0.10")
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(J)).scalar_one() == 0


def test_a_dearer_placement_raises_the_hold_and_is_charged_at_its_own_price(db):
    tid = _tenant(db, "10.00")
    # Priced at admission on a 3.60/h pool for 100 s: 0.10 held.
    job = _submit(db, tid, _admission(cost="0.10", price=Decimal("3.60"), run_s=100.0))
    assert job["reserved"] == Decimal("0.10")
    running = _place(db, job["id"], T0, price=A800, remaining_s=100.0)
    assert running["reserved"] == Decimal("0.93")  # 100 s of A800: 0.9258 -> 0.93
    done = _end(db, job["id"], "succeeded", T0 + 50.0)
    assert done["charged"] == Decimal("0.47")  # 50 s x 33.33 / 3600 = 0.46292 -> 0.47
    with db.read() as conn:
        assert tenants.balance_of(conn, tid) == (Decimal("9.53"), Decimal("0.00"))


def test_a_placement_the_tenant_cannot_pay_for_writes_nothing(db):
    tid = _tenant(db, "0.20")
    job = _submit(db, tid, _admission(cost="0.10", price=Decimal("3.60"), run_s=100.0))
    with pytest.raises(billing.PlacementRefused) as err:
        _place(db, job["id"], T0, price=A800, remaining_s=100.0)
    refusal = err.value
    assert (refusal.hold, refusal.held, refusal.available) == (
        Decimal("0.93"), Decimal("0.10"), Decimal("0.10"))
    assert "needs a hold of 0.93 CNY" in refusal.reason and "alpha/a800" in refusal.reason
    with db.read() as conn:
        stored = store_jobs.get_job(conn, job["id"])
        assert stored["state"] == "pending" and stored["reserved"] == Decimal("0.10")
        assert tenants.balance_of(conn, tid) == (Decimal("0.10"), Decimal("0.10"))


def test_an_overrunning_job_is_extended_then_stopped_before_it_spends_more_than_held(db):
    tid = _tenant(db, "0.25")
    job = _submit(db, tid, _admission(cost="0.00"))
    _place(db, job["id"], T0)  # holds 0.10: 10 s of A800
    now, stops = T0, []
    while not stops:
        now += billing.CHECK_S
        with db.write() as conn:
            stops = billing.enforce_holds(conn, billing.running_jobs(conn), now)
    assert [s.job_id for s in stops] == [job["id"]]
    assert stops[0].reason.startswith("credits exhausted: spent ")
    assert "of hold 0.25 CNY, balance 0.00" in stops[0].reason
    done = _end(db, job["id"], "cancelled", now, stops[0].reason)
    assert done["state"] == "cancelled" and done["reason"] == stops[0].reason
    assert billing.ceil_cent(done["spent"]) == done["charged"] <= done["reserved"]
    with db.read() as conn:
        balance, reserved = tenants.balance_of(conn, tid)
        kinds = [e["kind"] for e in tenants.ledger_entries(conn, tid)]
    assert reserved == 0 and balance == Decimal("0.25") - done["charged"] >= 0
    assert kinds.count("reserve") >= 2  # the admission hold and at least one extension


def test_a_job_is_settled_once_however_often_its_end_is_written(db):
    tid = _tenant(db, "1.00")
    job = _submit(db, tid, _admission(cost="0.00"))
    _place(db, job["id"], T0)
    first = _end(db, job["id"], "succeeded", T0 + 5.0)
    again = _end(db, job["id"], "failed", T0 + 9.0)  # a replay, or another process
    assert again["state"] == "succeeded" and again["charged"] == first["charged"]
    with db.read() as conn:
        sums = tenants.ledger_sums(conn, tid)
        assert sums["refund"] == Decimal("0.10")
        assert sum(sums.values()) == tenants.balance_of(conn, tid)[0]
    # The database itself refuses a second refund row for one job.
    with pytest.raises(IntegrityError), db.write() as conn:
        tenants.settle(conn, tid, job["id"], Decimal("0.10"), Decimal("0.00"))


# --------------------------------------------------------------------------- state machine

PRICES = st.sampled_from([Decimal("0.36"), Decimal("3.60"), A800, Decimal("120.00")])


class MoneyMachine(RuleBasedStateMachine):
    """Random job lives of one tenant through the store, the way the runner drives it: the
    overrun check runs at least every billing.LOOKAHEAD_S of clock unless a `stall` step
    (a frozen scheduler) jumps past it, which only the cap on the charge then covers."""

    db = None  # set by the test

    @initialize(credits=st.sampled_from(["0.05", "0.30", "2.00", "50.00"]))
    def tenant(self, credits: str) -> None:
        self.fast = FastPath(self.db.dialect)
        self.tid = _tenant(self.db, credits)
        self.now = T0
        self.jobs: list[int] = []
        self.stalled: set[int] = set()  # ran through a stall: may be capped at the hold

    def _jobs_in(self, *states: str) -> list[dict]:
        with self.db.read() as conn:
            rows = conn.execute(select(J).where(J.c.tenant_id == self.tid,
                                                J.c.state.in_(states))).mappings()
            return [dict(r) for r in rows]

    @rule(cost=st.sampled_from(["0.00", "0.01", "0.40", "3.00"]), price=PRICES,
          chips=st.integers(1, 4), run_s=st.sampled_from([0.0, 5.0, 60.0]),
          voucher=st.sampled_from([None, "0.01", "0.50", "5.00"]))
    def submit(self, cost: str, price: Decimal, chips: int, run_s: float,
               voucher: str | None) -> None:
        if voucher is not None:
            with self.db.write() as conn:
                tenants.grant(conn, self.tid, Decimal(voucher), note="voucher")
        adm = _admission(cost, price, chips, run_s)
        with self.db.read() as conn:
            available, _ = tenants.balance_of(conn, self.tid)
        try:
            with self.db.write() as conn:
                job = self.fast.admit(conn, self.tid, adm, None)
        except InsufficientCredits as exc:
            assert available < adm.hold and exc.extra["needed"] == str(adm.hold)
            return
        assert job["reserved"] == adm.hold > 0
        self.jobs.append(job["id"])

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), price=PRICES, chips=st.integers(1, 4),
          remaining_s=st.sampled_from([None, 0.0, 2.0, 30.0, 600.0]))
    def place(self, data, price: Decimal, chips: int, remaining_s: float | None) -> None:
        waiting = self._jobs_in("pending", "queued", "preempted")
        if not waiting:
            return
        job = data.draw(st.sampled_from(waiting))
        placement = {"center": "c", "pool": "p", "accelerator": "A800", "count": chips}
        with self.db.write() as conn:
            if job["state"] == "pending":
                self.fast.record_transition(conn, job["id"], "pending", "queued", "arrived",
                                            None, self.now)
        try:
            with self.db.write() as conn:
                store_jobs.record_transition(
                    conn, job["id"], "queued", "starting", "placed", placement, at=self.now,
                    hold=PlacementHold(price, chips, remaining_s, "c/p"))
                self.fast.record_transition(conn, job["id"], "starting", "running", "running",
                                            None, self.now)
        except billing.PlacementRefused as exc:
            assert exc.available < exc.hold - exc.held
            with self.db.write() as conn:  # the runner cancels it: it must not start
                store_jobs.record_transition(conn, job["id"], "queued", "cancelled",
                                             exc.reason, None, at=self.now)
            return
        with self.db.read() as conn:
            held = store_jobs.get_job(conn, job["id"])["reserved"]
        assert held >= billing.hold_for(price, chips, remaining_s, job["spent"]) > 0

    @rule(dt=st.floats(0.01, billing.LOOKAHEAD_S), checks=st.integers(1, 40))
    def run(self, dt: float, checks: int) -> None:
        """The clock moves on `checks` times by `dt`; the runner's overrun check runs each time."""
        for _ in range(checks):
            self.now += dt
            self._check_holds()

    @precondition(lambda self: self.jobs)
    @rule(dt=st.floats(5.0, 300.0))
    def stall(self, dt: float) -> None:
        """The scheduler freezes for `dt`: no check until it wakes."""
        self.stalled |= {j["id"] for j in self._jobs_in("running")}
        self.now += dt
        self._check_holds()

    def _check_holds(self) -> None:
        with self.db.write() as conn:
            mine = [j for j in billing.running_jobs(conn) if j["tenant_id"] == self.tid]
            stops = billing.enforce_holds(conn, mine, self.now)
            for stop in stops:
                job = store_jobs.record_transition(conn, stop.job_id, "running", "cancelled",
                                                   stop.reason, None, at=self.now)
                if stop.job_id not in self.stalled:
                    assert job["charged"] == billing.ceil_cent(job["spent"]) <= job["reserved"]

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), end=st.sampled_from(["succeeded", "failed", "cancelled"]))
    def end(self, data, end: str) -> None:
        active = self._jobs_in(*ACTIVE_STATES)
        if not active:
            return
        job = data.draw(st.sampled_from(active))
        if end == "succeeded" and job["state"] != "running":
            end = "cancelled"
        with self.db.write() as conn:
            store_jobs.record_transition(conn, job["id"], job["state"], end, end, None,
                                         at=self.now)

    @precondition(lambda self: self.jobs)
    @rule(data=st.data())
    def preempt(self, data) -> None:
        running = self._jobs_in("running")
        if not running:
            return
        job = data.draw(st.sampled_from(running))
        with self.db.write() as conn:
            self.fast.record_transition(conn, job["id"], "running", "checkpointing",
                                        "preempted", None, self.now)
            self.fast.record_transition(conn, job["id"], "checkpointing", "preempted",
                                        "checkpointed", None, self.now)

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), end=st.sampled_from(["failed", "cancelled"]))
    def replay_end(self, data, end: str) -> None:
        """A restarted runner or a second process writes a finished job's end again."""
        done = self._jobs_in(*TERMINAL_STATES)
        if not done:
            return
        job = data.draw(st.sampled_from(done))
        with self.db.write() as conn:
            again = store_jobs.record_transition(conn, job["id"], "running", end, "replay",
                                                 None, at=self.now)
        assert (again["state"], again["charged"]) == (job["state"], job["charged"])

    @invariant()
    def the_ledger_holds(self) -> None:
        with self.db.read() as conn:
            balance, reserved = tenants.balance_of(conn, self.tid)
            ledger = conn.execute(select(func.coalesce(func.sum(L.c.amount), 0))
                                  .where(L.c.tenant_id == self.tid)).scalar_one()
            jobs = [dict(r) for r in conn.execute(
                select(J).where(J.c.tenant_id == self.tid)).mappings()]
            refunds = dict(conn.execute(
                select(L.c.job_id, func.count()).where(L.c.tenant_id == self.tid,
                                                       L.c.kind == "refund")
                .group_by(L.c.job_id)).all())
        assert balance >= 0
        assert Decimal(ledger) == balance
        assert reserved == sum((j["reserved"] for j in jobs if j["state"] in ACTIVE_STATES),
                               Decimal("0.00"))
        for j in jobs:
            if j["state"] in TERMINAL_STATES:
                assert refunds.get(j["id"]) == 1 and j["charged"] is not None
                assert j["charged"] <= j["reserved"]
                if j["run_s"] > 0 and j["spent"] > 0:
                    assert j["charged"] >= Decimal("0.01")
                if j["id"] not in self.stalled:
                    assert j["charged"] == billing.final_charge(j["spent"], j["run_s"],
                                                                Decimal("1e9"))
            else:
                assert j["id"] not in refunds and j["charged"] is None


def test_random_job_lives_never_leak_money(db):
    MoneyMachine.db = db
    run_state_machine_as_test(MoneyMachine, settings=settings(
        max_examples=40, stateful_step_count=30, deadline=None,
        suppress_health_check=list(HealthCheck)))

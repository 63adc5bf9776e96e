"""The scheduler lease and its fencing token, on both databases: one holder at a time, a
takeover only after expiry, and a former leader's writes refused."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import sqlalchemy as sa

from suanli.jobs.spec import JobSpec
from suanli.network import load_network
from suanli.service.leadership import Lease, LostLeadership
from suanli.service.runner import Runner
from suanli.store import jobs as store_jobs
from suanli.store import leader as store_leader
from suanli.store import tenants
from suanli.store.db import connect
from suanli.store.fastpath import FastPath
from suanli.store.jobs import Admission


@pytest.fixture
def db(db_url):
    database = connect(db_url)
    yield database
    database.dispose()


def _expire(db) -> None:
    with db.write() as conn:
        conn.execute(sa.text("UPDATE leader SET expires_at = 0 WHERE id = 1"))


def test_an_unexpired_lease_is_not_taken_and_an_expired_one_is_with_a_new_token(db):
    with db.write() as conn:
        first = store_leader.acquire(conn, "a", 30.0)
        assert first is not None
        assert store_leader.acquire(conn, "b", 30.0) is None
        assert store_leader.renew(conn, "a", first, 30.0)
    _expire(db)
    with db.write() as conn:
        second = store_leader.acquire(conn, "b", 30.0)
        assert second == first + 1
        assert not store_leader.renew(conn, "a", first, 30.0)  # the old holder lost it
        assert not store_leader.fence(conn, first)
        assert store_leader.fence(conn, second)
        info = store_leader.current(conn)
    assert info["holder"] == "b" and info["token"] == second and not info["expired"]


def test_a_released_lease_is_taken_at_once(db):
    a, b = Lease(db, "a", lease_s=30.0), Lease(db, "b", lease_s=30.0)
    assert a.try_acquire() and not b.try_acquire()
    a.release()
    assert not a.leading
    assert b.try_acquire() and b.token == 2
    b.release()


def test_a_lease_not_renewed_in_time_is_no_longer_valid_locally(db):
    lease = Lease(db, "a", lease_s=1.0, renew_s=60.0, margin_s=0.2)  # never renews
    assert lease.try_acquire()
    assert lease.valid() and lease.check() == lease.token
    time.sleep(0.9)
    assert not lease.valid()
    with pytest.raises(LostLeadership):
        lease.check()
    lease.step_down()


def test_each_admin_edit_bumps_the_network_version_once(db):
    with db.read() as conn:
        before = store_leader.network_version(conn)
    for _ in range(3):
        with db.write() as conn:
            store_leader.bump_network_version(conn)
    with db.read() as conn:
        assert store_leader.network_version(conn) == before + 3


def _admit(db, tid: int, name: str) -> dict:
    spec = JobSpec.model_validate({"kind": "generic", "name": name, "run": "sleep 30",
                                   "work": {"reference_accelerator": "L20", "duration_s": 5},
                                   "resources": {"accelerators": ["L20"]}})
    adm = Admission(name=name, spec_json=spec.model_dump_json(exclude_defaults=True),
                    request_hash=name, estimate_cost=Decimal("0.10"), est_accelerator="L20",
                    est_count=1, est_run_s=5.0, max_retries=0)
    with db.write() as conn:
        return FastPath(db.dialect).admit(conn, tid, adm, name)


def test_a_leader_whose_lease_was_taken_over_writes_nothing_and_starts_nothing(db, tmp_path):
    """Its local clock still says it leads (it stalled just before the takeover), but the
    fencing token in the database refuses its writes, so the backend is never told."""
    with db.write() as conn:
        tid, _ = tenants.create_tenant(conn, "lab", credits=Decimal("1000"))
    lease = Lease(db, "old", lease_s=30.0, renew_s=60.0)
    runner = Runner(db, load_network("east-west"), backend="local", data_dir=tmp_path / "runs",
                    round_s=0.01, lease=lease)
    runner.start()
    runner._stop.set()  # drive it by hand: no loop
    runner._thread.join(timeout=10)
    assert runner.is_leader
    row = _admit(db, tid, "j")
    _expire(db)
    with db.write() as conn:
        assert store_leader.acquire(conn, "new", 30.0) == lease.token + 1
    runner.submit(row["id"], row)
    with pytest.raises(LostLeadership):
        for _ in range(20):
            runner.tick()
            time.sleep(0.02)
    assert runner.backend.running() == []
    with db.read() as conn:
        assert store_jobs.get_job(conn, row["id"])["state"] == "pending"
        assert [e["new_state"] for e in store_jobs.events(conn, row["id"])] == ["pending"]
    runner._step_down("test")
    runner.stop()
    with db.read() as conn:
        assert store_leader.current(conn)["holder"] == "new"  # stop released nothing of theirs


def test_the_only_process_on_a_database_takes_a_crashed_holders_lease_at_once(db):
    crashed = Lease(db, "crashed", lease_s=30.0)
    assert crashed.try_acquire()
    crashed.step_down()  # it died: the lease stays held for 30 s
    assert not Lease(db, "replica", lease_s=30.0).try_acquire()
    alone = Lease(db, "restarted", lease_s=30.0, exclusive=True)  # e.g. holds the SQLite lock
    assert alone.try_acquire() and alone.token == 2
    alone.release()

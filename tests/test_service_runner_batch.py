"""The runner holds one tick's transitions and writes them in one transaction, but never
lets the backend act on a state the database does not have yet."""

from __future__ import annotations

import time
from decimal import Decimal

from suanli.jobs.spec import JobSpec
from suanli.network import load_network
from suanli.service.runner import Runner, _WriteFirst
from suanli.store import jobs as store_jobs
from suanli.store import tenants
from suanli.store.db import connect
from suanli.store.fastpath import FastPath
from suanli.store.jobs import Admission


class StateSpy:
    """A backend stand-in that reads the stored state of each job it is told to start."""

    def __init__(self, db, inner) -> None:
        self.db, self.inner, self.seen = db, inner, []

    def start(self, job, placement, now_s):
        with self.db.read() as conn:
            self.seen.append(store_jobs.get_job(conn, int(job.job_id))["state"])
        return self.inner.start(job, placement, now_s)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _setup(tmp_path):
    db = connect(f"sqlite:///{tmp_path}/t.db")
    with db.write() as conn:
        tid, _ = tenants.create_tenant(conn, "lab", credits=Decimal("1000"))
    runner = Runner(db, load_network("east-west"), backend="local", data_dir=tmp_path / "runs",
                    round_s=0.01)
    return db, tid, runner


def _admit(db, tid: int, name: str) -> dict:
    spec = JobSpec.model_validate({"kind": "generic", "name": name, "run": "true",
                                   "work": {"reference_accelerator": "L20", "duration_s": 5},
                                   "resources": {"accelerators": ["L20"]}})
    adm = Admission(name=name, spec_json=spec.model_dump_json(exclude_defaults=True),
                    request_hash=name, estimate_cost=Decimal("0.10"), est_accelerator="L20",
                    est_count=1, est_run_s=5.0, max_retries=0)
    with db.write() as conn:
        return FastPath(db.dialect).admit(conn, tid, adm, name)


def test_a_started_job_is_stored_as_starting_before_the_backend_is_told(tmp_path):
    db, tid, runner = _setup(tmp_path)
    spy = StateSpy(db, runner.backend)
    runner.engine.backend = _WriteFirst(spy, runner._write_held)
    rows = [_admit(db, tid, f"j{i}") for i in range(3)]
    for row in rows:
        runner.submit(row["id"], row)
    try:
        for _ in range(20):
            runner.tick()
            if spy.seen:
                break
            time.sleep(0.02)
    finally:
        runner.stop_jobs_on_shutdown = True
        runner.stop()
    assert spy.seen and set(spy.seen) == {"starting"}
    with db.read() as conn:
        events = [[e["new_state"] for e in store_jobs.events(conn, r["id"])] for r in rows]
    for ev in events:
        assert ev[:3] == ["pending", "queued", "starting"]


def test_held_transitions_are_written_at_the_end_of_a_tick(tmp_path):
    db, tid, runner = _setup(tmp_path)
    row = _admit(db, tid, "only")
    runner.submit(row["id"])  # no row: the runner reads it back
    try:
        runner.tick()
    finally:
        runner.stop_jobs_on_shutdown = True
        runner.stop()
    assert runner._held is None
    with db.read() as conn:
        assert store_jobs.get_job(conn, row["id"])["state"] != "pending"


def test_engine_jobs_of_one_shape_share_timings_but_not_identity(tmp_path):
    from suanli.engine import engine_job_from_spec

    _db, _tid, runner = _setup(tmp_path)
    data = {"kind": "generic", "run": "true", "deadline_s": 600,
            "work": {"reference_accelerator": "L20", "duration_s": 60},
            "resources": {"accelerators": ["L20"]}}
    a = JobSpec.model_validate({**data, "name": "a"})
    b = JobSpec.model_validate({**data, "name": "b"})
    runner._engine_job("1", a, 10.0, None)
    cached = runner._engine_job("2", b, 20.0, None)
    fresh = engine_job_from_spec("2", b, runner.cluster, 20.0, count=None)
    assert cached == fresh
    runner.stop()


def test_a_network_change_drops_the_shared_timings(tmp_path):
    """After an admin edit (new prices, pools) no job may reuse timings of the old cluster."""
    _db, _tid, runner = _setup(tmp_path)
    spec = JobSpec.model_validate({"kind": "generic", "name": "a", "run": "true",
                                   "work": {"reference_accelerator": "L20", "duration_s": 60},
                                   "resources": {"accelerators": ["L20"]}})
    runner._engine_job("1", spec, 0.0, None)
    assert runner._templates
    runner.network_changed(load_network("east-west"))
    runner.tick()
    assert not runner._templates
    runner.stop()

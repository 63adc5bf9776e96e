"""The engine's job lifecycle: submission checks, placement, preemption, retries, cancel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine_policies import equal_share, fastest_first
from suanli.engine import (
    BackendEvent,
    Cluster,
    Engine,
    EngineJob,
    JobState,
    Placement,
    SimBackend,
    SimClock,
    Transition,
)
from suanli.policies.base import Allocation, PolicyState, PolicyTraits


def job(job_id, chips=1, work=1000.0, thr=None, arrival=0.0, **kw) -> EngineJob:
    thr = thr if thr is not None else {"local/V100": 1.0}
    return EngineJob(job_id, chips, work, thr, arrival, **kw)


def make(cluster=None, policy=fastest_first, backend=None, **kw) -> Engine:
    cluster = cluster or Cluster.from_counts({"V100": 4})
    return Engine(cluster, policy, SimClock(), backend or SimBackend(), **kw)


def test_gang_larger_than_every_pool_fails_at_submission_naming_the_size():
    eng = make(Cluster.from_counts({"V100": 4, "K80": 8}))
    rec = eng.submit(job("big", chips=16, thr={"local/V100": 1.0, "local/K80": 0.5}))
    assert rec.state is JobState.FAILED
    assert "16 chips" in rec.reason and "8 chips" in rec.reason
    assert rec.finish_s == 0.0


def test_job_with_no_throughput_anywhere_fails_at_submission():
    eng = make()
    rec = eng.submit(job("nowhere", thr={"local/V100": 0.0}))
    assert rec.state is JobState.FAILED
    assert "no throughput" in rec.reason


def test_gang_too_big_only_where_it_can_run_still_fails():
    # Fits the K80 pool by size, but can only run on the V100 pool, which is too small.
    eng = make(Cluster.from_counts({"V100": 2, "K80": 8}))
    rec = eng.submit(job("j", chips=4, thr={"local/V100": 1.0}))
    assert rec.state is JobState.FAILED and "4 chips" in rec.reason


def test_single_job_runs_to_completion_at_its_throughput():
    eng = make()
    eng.submit(job("a", work=720.0, thr={"local/V100": 2.0}))
    res = eng.run()
    rec = eng.jobs["a"]
    assert rec.state is JobState.SUCCEEDED
    assert rec.finish_s == pytest.approx(360.0)
    assert res.summary()["avg_jct_s"] == pytest.approx(360.0)
    assert rec.done_work == pytest.approx(720.0)


def test_state_sequence_of_a_simple_job():
    seen: list[Transition] = []
    eng = make(listener=seen.append)
    eng.submit(job("a"))
    eng.run()
    states = [(t.old.value, t.new.value) for t in seen]
    assert states == [("pending", "queued"), ("queued", "starting"), ("starting", "running"),
                      ("running", "succeeded")]


def test_arrivals_wait_for_the_next_round_while_chips_are_busy():
    eng = make(Cluster.from_counts({"V100": 1}))
    eng.submit(job("a", work=1000.0))
    eng.submit(job("b", work=100.0, arrival=10.0))
    eng.run()
    # b arrives at 10 s while a holds the only chip; the next round (360 s) places one of them
    # by the policy; a keeps running (FIFO), b starts when a is done, at the round after 1000 s.
    assert eng.jobs["a"].finish_s == pytest.approx(1000.0)
    assert eng.jobs["b"].start_s == pytest.approx(1080.0)


class RecordingBackend(SimBackend):
    def __init__(self, log: list, **kw):
        super().__init__(**kw)
        self.log = log

    def start(self, job, placement, now_s):
        self.log.append(("start", job.job_id, now_s))
        super().start(job, placement, now_s)

    def stop(self, job_id, now_s, reason):
        self.log.append(("stop", job_id, reason))
        super().stop(job_id, now_s, reason)


def test_listener_hears_every_change_before_the_backend_acts():
    log: list = []
    eng = make(
        Cluster.from_counts({"V100": 1}),
        policy=equal_share,
        backend=RecordingBackend(log),
        listener=lambda t: log.append(("transition", t.job_id, t.new.value)),
        round_s=100.0,
    )
    eng.submit(job("a", work=500.0))
    eng.submit(job("b", work=500.0))
    eng.run()
    for k, entry in enumerate(log):
        if entry[0] == "start":
            assert ("transition", entry[1], "starting") in log[:k]
            last = [e for e in log[:k] if e[0] == "transition" and e[1] == entry[1]][-1]
            assert last[2] == "starting"
        if entry[0] == "stop" and entry[2] == "preempt":
            last = [e for e in log[:k] if e[0] == "transition" and e[1] == entry[1]][-1]
            assert last[2] == "checkpointing"
    assert any(e[0] == "stop" and e[2] == "preempt" for e in log)


def test_preempted_job_pays_restore_on_restart():
    eng = make(Cluster.from_counts({"V100": 1}), policy=equal_share, round_s=100.0)
    eng.submit(job("a", work=300.0, restore_s=20.0))
    eng.submit(job("b", work=300.0, restore_s=20.0))
    eng.run()
    a, b = eng.jobs["a"], eng.jobs["b"]
    assert a.state is b.state is JobState.SUCCEEDED
    restarts = a.preemptions + b.preemptions
    assert restarts >= 2
    # 600 s of work on one chip plus 20 s per restart (a restart follows every preemption).
    busy = a.chip_seconds + b.chip_seconds
    assert busy == pytest.approx(600.0 + 20.0 * restarts)


def test_gavel_mode_has_no_preemption_cost():
    eng = make(Cluster.from_counts({"V100": 1}), policy=equal_share, round_s=100.0,
               gavel_mode=True)
    eng.submit(job("a", work=300.0, restore_s=20.0))
    eng.submit(job("b", work=300.0, restore_s=20.0))
    eng.run()
    busy = eng.jobs["a"].chip_seconds + eng.jobs["b"].chip_seconds
    assert busy == pytest.approx(600.0)
    assert max(eng.jobs["a"].finish_s, eng.jobs["b"].finish_s) == pytest.approx(600.0)


def test_failed_job_is_retried_then_succeeds():
    eng = make(backend=SimBackend(fail_first={"a": 1}))
    eng.submit(job("a", work=1000.0, max_retries=3, checkpoint_interval_s=100.0))
    eng.run()
    rec = eng.jobs["a"]
    assert rec.state is JobState.SUCCEEDED
    assert rec.retries == 1
    assert any("retry 1 of 3" in reason for _, _, reason in rec.events)


def test_retries_exhausted_means_failed():
    eng = make(backend=SimBackend(fail_first={"a": 10}))
    eng.submit(job("a", max_retries=2))
    eng.run()
    rec = eng.jobs["a"]
    assert rec.state is JobState.FAILED
    assert rec.retries == 2
    assert "retries exhausted" in rec.reason


def test_job_failure_loses_work_since_last_checkpoint():
    eng = make(backend=SimBackend(fail_first={"a": 1}))
    # The first run fails half-way (at 500 s): checkpoints every 300 s keep 300 of the 500.
    eng.submit(job("a", work=1000.0, checkpoint_interval_s=300.0))
    eng.clock.advance_to(0.0)
    eng.step()
    eng.clock.advance_to(500.0)
    eng.step()
    rec = eng.jobs["a"]
    assert rec.state is JobState.QUEUED
    assert rec.done_work == pytest.approx(300.0)


@pytest.mark.parametrize(
    "target_state",
    ["pending", "queued", "starting", "running", "preempted", "checkpointing_listener",
     "starting_listener", "succeeded"],
)
def test_cancel_works_in_every_state(target_state):
    cancel_on = {"checkpointing_listener": "checkpointing", "starting_listener": "starting"}
    holder: dict = {}

    def listener(t: Transition) -> None:
        if t.job_id == "x" and t.new.value == cancel_on.get(target_state):
            holder["cancelled"] = holder["engine"].cancel("x")

    eng = make(Cluster.from_counts({"V100": 1}), policy=equal_share, round_s=100.0,
               listener=listener)
    holder["engine"] = eng
    if target_state == "pending":
        eng.submit(job("x", arrival=50.0))
        assert eng.jobs["x"].state is JobState.PENDING
        assert eng.cancel("x")
    elif target_state == "queued":
        eng.submit(job("hog", work=1e6))
        eng.step()
        eng.submit(job("x"))
        assert eng.jobs["x"].state is JobState.QUEUED
        assert eng.cancel("x")
    elif target_state == "starting":
        eng.submit(job("x", work=1e4, restore_s=50.0))
        eng.submit(job("y", work=1e4, restore_s=50.0))
        t = 0.0
        while eng.jobs["x"].state is not JobState.STARTING or eng.jobs["x"].start_s is None \
                or eng.jobs["x"].preemptions == 0:
            t = eng.step()
            eng.clock.advance_to(t)
        assert eng.jobs["x"].state is JobState.STARTING
        assert eng.cancel("x")
    elif target_state == "running":
        eng.submit(job("x", work=1e4))
        eng.step()
        assert eng.jobs["x"].state is JobState.RUNNING
        assert eng.cancel("x")
    elif target_state == "preempted":
        eng.submit(job("x", work=1e4))
        eng.submit(job("y", work=1e4))
        while eng.jobs["x"].state is not JobState.PREEMPTED:
            eng.clock.advance_to(eng.step())
        assert eng.cancel("x")
    elif target_state in cancel_on:
        eng.submit(job("x", work=1e4))
        eng.submit(job("y", work=1e4))
        eng.run()
        assert holder.get("cancelled") is True
    elif target_state == "succeeded":
        eng.submit(job("x", work=10.0))
        eng.run()
        assert eng.cancel("x") is False
        assert eng.jobs["x"].state is JobState.SUCCEEDED
        return
    eng.run()
    rec = eng.jobs["x"]
    assert rec.state is JobState.CANCELLED
    assert all(r.state.terminal for r in eng.jobs.values())
    assert eng.used_chips == {"local/V100": 0}
    assert "x" not in eng.backend.running


def test_policy_rejections_fail_the_job_with_the_note():
    def reject_all(state: PolicyState) -> Allocation:
        return Allocation(np.zeros((state.n_jobs, state.n_pools)),
                          rejected=frozenset(int(j) for j in state.job_ids),
                          note="deadline cannot be met")

    eng = make(policy=reject_all)
    eng.submit(job("a", deadline_s=10.0))
    eng.run()
    rec = eng.jobs["a"]
    assert rec.state is JobState.FAILED
    assert "deadline cannot be met" in rec.reason


def test_job_the_policy_never_places_ends_failed_with_a_reason():
    def nothing(state: PolicyState) -> Allocation:
        return Allocation(np.zeros((state.n_jobs, state.n_pools)))

    nothing.policy_name = "fifo_nothing"  # type: ignore[attr-defined]
    nothing.traits = PolicyTraits(work_conserving=False)  # type: ignore[attr-defined]
    eng = make(policy=nothing)
    eng.submit(job("a"))
    eng.run()
    assert eng.jobs["a"].state is JobState.FAILED
    assert "stranded" in eng.jobs["a"].reason


def test_wall_clock_style_stepping_with_a_foreign_clock():
    class FakeClock:
        def __init__(self):
            self.t = 1000.0

        def now(self):
            return self.t

    clock = FakeClock()
    eng = Engine(Cluster.from_counts({"V100": 2}), fastest_first, clock, SimBackend())
    eng.submit(job("a", work=50.0, arrival=1000.0))
    eng.step()
    assert eng.jobs["a"].state is JobState.RUNNING
    clock.t = 1049.0
    eng.step()
    assert eng.jobs["a"].state is JobState.RUNNING
    assert eng.progress("a") == pytest.approx(49.0)
    clock.t = 1050.5
    eng.step()
    assert eng.jobs["a"].state is JobState.SUCCEEDED
    assert eng.jobs["a"].finish_s == pytest.approx(1050.0)
    with pytest.raises(Exception, match="SimClock"):
        eng.run()


def test_restore_rebuilds_running_and_waiting_jobs_without_calling_the_backend():
    log: list = []
    seen: list = []
    eng = make(Cluster.from_counts({"V100": 2}), backend=RecordingBackend(log),
               listener=seen.append)
    placement = Placement("local/V100", 1, ((0, 1),))
    eng.restore(job("run", work=100.0), JobState.RUNNING, placement, done_work=40.0)
    eng.restore(job("wait", work=100.0), JobState.QUEUED, None, done_work=10.0)
    eng.restore(job("done", work=100.0), JobState.SUCCEEDED, None, done_work=100.0)
    assert log == [] and seen == []
    assert eng.jobs["run"].state is JobState.RUNNING
    assert eng.used_chips == {"local/V100": 1}
    assert eng.progress("run") == pytest.approx(40.0)
    assert eng.jobs["done"].state is JobState.SUCCEEDED
    # The service's backend reports the restored job finished; the waiting one gets placed.
    eng.backend.poll(0.0)
    eng._on_backend_event(BackendEvent("run", "succeeded", 60.0))
    eng.run()
    assert eng.jobs["run"].state is JobState.SUCCEEDED
    assert eng.jobs["wait"].state is JobState.SUCCEEDED
    assert eng.jobs["wait"].done_work == pytest.approx(100.0)


def test_restore_without_node_assignments_takes_chips_like_a_new_run():
    cluster = Cluster.from_counts({"V100": 4}, chips_per_node=2)
    eng = make(cluster)
    eng.restore(job("a", chips=2, work=100.0), JobState.RUNNING, Placement("local/V100", 2),
                done_work=30.0)
    eng.restore(job("b", chips=1, work=100.0), JobState.RUNNING,
                Placement("local/V100", 1, ((1, 1),)), done_work=0.0)
    a, b = eng.jobs["a"].placement, eng.jobs["b"].placement
    assert a.nodes == ((0, 2),)  # a whole node, as the round would have picked
    assert b.nodes == ((1, 1),)  # the stored assignment is kept when there is one
    assert eng.used_chips == {"local/V100": 3}
    # The backend reports the restored jobs' ends (a sim backend never started them).
    eng._on_backend_event(BackendEvent("a", "succeeded", 0.0))
    eng._on_backend_event(BackendEvent("b", "succeeded", 0.0))
    assert eng.used_chips == {"local/V100": 0}
    eng.submit(job("c", chips=2, work=10.0))
    eng.run()
    assert eng.jobs["c"].state is JobState.SUCCEEDED


def test_strict_fifo_places_a_queued_job_at_the_round_after_its_chips_free():
    # b is allocated nothing at time 0 (a has the only chip); when a ends at 1000 s, b starts
    # at the next round (1080 s), not when the 1920 s reallocation interval has passed.
    eng = make(Cluster.from_counts({"V100": 1}), policy="fifo")
    assert not eng.work_conserving and eng.realloc_interval_s == 1920.0
    eng.submit(job("a", work=1000.0))
    eng.submit(job("b", work=100.0))
    eng.run()
    first, second = sorted(eng.jobs.values(), key=lambda r: r.start_s)
    assert first.finish_s == pytest.approx(1000.0)
    assert second.start_s == pytest.approx(1080.0)


def test_duplicate_and_bad_jobs_are_user_errors():
    from suanli.errors import SuanliError

    eng = make()
    eng.submit(job("a"))
    with pytest.raises(SuanliError, match="duplicate"):
        eng.submit(job("a"))
    with pytest.raises(SuanliError, match="total_work"):
        eng.submit(job("b", work=0.0))
    with pytest.raises(SuanliError, match="unknown job"):
        eng.cancel("zzz")


def test_deadline_and_priority_reach_the_policy():
    captured: list[PolicyState] = []

    def spy(state: PolicyState) -> Allocation:
        captured.append(state)
        return fastest_first(state)

    eng = make(policy=spy)
    eng.submit(job("a", priority=3.0, deadline_s=5000.0, tenant="t1"))
    eng.run()
    st = captured[0]
    assert st.priority.tolist() == [3.0]
    assert st.deadline_s.tolist() == [5000.0]
    assert st.tenant == ["t1"]
    assert st.pool_ids == ["local/V100"]
    assert math.isclose(st.remaining_work[0], 1000.0)


class ProcessLikeBackend:
    """A backend like the service's: it says nothing about when jobs end until they do."""

    def __init__(self):
        self.started: list[str] = []
        self.stopped: list[tuple[str, str]] = []
        self.events: list[BackendEvent] = []

    def start(self, job, placement, now_s):
        self.started.append(job.job_id)

    def stop(self, job_id, now_s, reason):
        self.stopped.append((job_id, reason))

    def poll(self, now_s):
        out, self.events = self.events, []
        return out

    def next_event_s(self):
        return None


def test_only_the_backend_ends_a_job_on_the_wall_clock():
    class Clock:
        t = 0.0

        def now(self):
            return self.t

    clock = Clock()
    backend = ProcessLikeBackend()
    eng = Engine(Cluster.from_counts({"V100": 1}), fastest_first, clock, backend)
    eng.submit(job("a", work=10.0))
    assert eng.step() is None  # nothing is due until the backend reports
    assert backend.started == ["a"]
    clock.t = 100.0  # ten times the estimated run time
    eng.step()
    assert eng.jobs["a"].state is JobState.RUNNING
    assert eng.progress("a") == pytest.approx(10.0)  # the estimate is capped at the work
    backend.events.append(BackendEvent("a", "succeeded", 99.0, "exit 0"))
    eng.step()
    assert eng.jobs["a"].state is JobState.SUCCEEDED
    assert eng.jobs["a"].finish_s == 99.0


def test_a_job_split_over_pools_of_the_same_chip_does_not_hop_between_them():
    from suanli.network.load import parse_network

    net = parse_network({
        "name": "twins",
        "centers": [
            {"id": c, "name": c, "region": c, "lat": 0, "lon": 0,
             "electricity_price_per_kwh": 1.0,
             "pools": [{"id": "h800", "accelerator": "H800", "nodes": 1,
                        "price_per_chip_hour": 20.0}]}
            for c in ("east", "west")
        ],
    }, "test")

    def split(state: PolicyState) -> Allocation:
        return Allocation(np.full((state.n_jobs, state.n_pools), 0.5))

    eng = Engine(Cluster.from_network(net), split, SimClock(), SimBackend(), round_s=60.0)
    eng.submit(EngineJob("a", 8, 5000.0, {"east/h800": 1.0, "west/h800": 1.0}, 0.0))
    eng.run()
    rec = eng.jobs["a"]
    assert rec.state is JobState.SUCCEEDED
    assert rec.preemptions == 0 and len(rec.pools) == 1


def test_run_until_stops_early_and_reports_progress():
    calls: list[tuple[int, int]] = []
    eng = make(Cluster.from_counts({"V100": 1}))
    for k in range(3):
        eng.submit(job(str(k), work=1000.0))
    res = eng.run(until_s=1500.0, progress=lambda done, total: calls.append((done, total)))
    assert eng.clock.now() == 1500.0
    assert res.summary()["states"]["succeeded"] == 1
    assert not eng.done
    assert calls[-1] == (1, 3)
    res = eng.run()
    assert eng.done and res.summary()["states"]["succeeded"] == 3

"""A network change reaches the engine: `Engine.set_cluster` swaps the pools it places on,
preempting runs on removed capacity and failing waiting jobs that nothing can run any more."""

from __future__ import annotations

from suanli.engine import Cluster, Engine, EngineJob, JobState, PoolInfo, SimBackend, SimClock
from suanli.engine.types import Transition


def pool(pool_id: str, capacity: int, accelerator: str = "V100", per_node: int = 1) -> PoolInfo:
    center = pool_id.split("/")[0]
    return PoolInfo(pool_id=pool_id, accelerator=accelerator, capacity=capacity,
                    chips_per_node=per_node, price_per_chip_hour=1.0, center=center,
                    region="r1")


def job(job_id: str, chips: int = 1, work: float = 1000.0, thr=None) -> EngineJob:
    return EngineJob(job_id, chips, work, thr or {"a/v": 1.0}, 0.0, restore_s=5.0)


def make(*pools: PoolInfo) -> tuple[Engine, SimClock, SimBackend, list[Transition]]:
    clock, backend, seen = SimClock(), SimBackend(), []
    eng = Engine(Cluster(list(pools)), "fifo", clock, backend, round_s=10.0,
                 realloc_interval_s=10.0, listener=seen.append)
    return eng, clock, backend, seen


def test_a_run_on_a_removed_pool_is_checkpointed_and_requeued_then_runs_elsewhere():
    eng, clock, backend, seen = make(pool("a/v", 2), pool("b/v", 2))
    eng.submit(job("j", thr={"a/v": 1.0, "b/v": 1.0}))
    eng.step()
    placed_on = eng.jobs["j"].placement.pool_id
    clock.advance_to(100.0)
    eng.step()
    done_before = eng.progress("j")
    keep = "b/v" if placed_on == "a/v" else "a/v"
    stopped = eng.set_cluster(Cluster([p for p in eng.cluster.pools if p.pool_id == keep]))
    assert stopped == ["j"]
    rec = eng.jobs["j"]
    assert rec.state is JobState.PREEMPTED and rec.preemptions == 1
    assert "j" not in backend.running  # the backend was told to stop it
    assert any(t.new is JobState.CHECKPOINTING and f"pool {placed_on} was removed" in t.reason
               for t in seen)
    assert eng.progress("j") == done_before  # the checkpoint kept its work
    res = eng.run()
    assert rec.state is JobState.SUCCEEDED
    assert rec.pools[-1] == keep
    # It paid its restore cost on the second start: 1000 work at rate 1 plus 5 s restore.
    assert res.jobs[0].finish_s >= 1000.0 + 5.0


def test_a_shrunk_pool_keeps_the_earliest_run_and_requeues_the_rest():
    eng, clock, _backend, _seen = make(pool("a/v", 3))
    for name in ("first", "second", "third"):
        eng.submit(job(name))
        eng.step()
        clock.advance_to(clock.now() + 10.0)
    eng.step()
    assert all(eng.jobs[n].state is JobState.RUNNING for n in ("first", "second", "third"))
    stopped = eng.set_cluster(Cluster([pool("a/v", 1)]))
    assert sorted(stopped) == ["second", "third"]
    assert eng.used_chips == {"a/v": 1} and eng.up_capacity == {"a/v": 1}
    eng.run()
    assert all(eng.jobs[n].state is JobState.SUCCEEDED for n in ("first", "second", "third"))
    assert max(u[0] for u in eng.timeline_used) <= 3


def test_the_next_round_never_places_more_than_the_new_capacity():
    eng, clock, _backend, _seen = make(pool("a/v", 4))
    for k in range(4):
        eng.submit(job(f"j{k}", work=500.0))
    eng.step()
    assert eng.used_chips == {"a/v": 4}
    eng.set_cluster(Cluster([pool("a/v", 2)]))
    clock.advance_to(clock.now() + 10.0)
    eng.step()
    assert eng.used_chips["a/v"] <= 2
    assert sum(r.state.on_chips for r in eng.jobs.values()) == 2


def test_a_new_pool_of_the_same_chip_is_used_at_the_next_round():
    eng, clock, _backend, _seen = make(pool("a/v", 1))
    eng.submit(job("one"))
    eng.submit(job("two"))
    eng.step()
    assert eng.jobs["two"].state is JobState.QUEUED
    assert eng.set_cluster(Cluster([pool("a/v", 1), pool("c/v", 1)])) == []
    clock.advance_to(clock.now() + 10.0)
    eng.step()
    assert eng.jobs["two"].state is JobState.RUNNING
    assert eng.jobs["two"].placement.pool_id == "c/v"
    assert eng.jobs["one"].placement.pool_id == "a/v"  # untouched


def test_a_waiting_job_nothing_can_run_any_more_fails_with_the_reason():
    eng, clock, _backend, _seen = make(pool("a/v", 4), pool("b/k", 2, accelerator="K80"))
    eng.submit(job("hog", chips=4))
    eng.submit(job("big", chips=4))
    eng.step()
    assert eng.jobs["big"].state is JobState.QUEUED
    eng.set_cluster(Cluster([pool("a/v", 2), pool("b/k", 2, accelerator="K80")]))
    big = eng.jobs["big"]
    assert big.state is JobState.FAILED
    assert "after a network change" in big.reason and "4 chips" in big.reason
    hog = eng.jobs["hog"]  # checkpointed off its chips, then failed the same way
    assert [s for _t, s, _r in hog.events][-3:] == ["checkpointing", "preempted", "failed"]
    assert "after a network change" in hog.reason

"""A `head_of_queue` policy (FIFO) is shown only the jobs on chips and the head of the queue
(`RoundsMixin._policy_view`); what it allocates must be what it allocates seeing every job, and
a job behind the head does not trigger a reallocation that could not give it chips."""

from __future__ import annotations

import random

import numpy as np
import pytest

from suanli.engine import Cluster, EngineJob
from suanli.engine.backend import SimBackend
from suanli.engine.clock import SimClock
from suanli.engine.engine import Engine
from suanli.policies import get_policy, policy_traits
from suanli.policies.base import PolicyTraits

POOLS = {"V100": 6, "P100": 10}


def _deep_queue(n: int = 300, seed: int = 3) -> list[EngineJob]:
    """Gangs of 1-8 chips arriving faster than 16 chips can serve them: a queue of hundreds,
    submitted out of arrival order, some arriving in the same second."""
    rng = random.Random(seed)
    jobs = []
    for k in range(n):
        arrival = float(rng.choice([k * 30, k * 30, (k // 4) * 120]))
        speed = {"local/V100": 1.0, "local/P100": rng.choice([0.0, 0.4, 0.7])}
        jobs.append(EngineJob(f"j{k:03d}", rng.choice([1, 1, 2, 4, 8]),
                              rng.uniform(600, 20_000), speed, arrival))
    rng.shuffle(jobs)
    return jobs


def _engine(policy, start_s: float = 0.0) -> Engine:
    """start_s after the last arrival: every job arrives as it is submitted, in shuffled
    order, so the active jobs are not in FIFO order and the view must sort them."""
    return Engine(Cluster.from_counts(POOLS), policy, SimClock(start_s), SimBackend(seed=0),
                  record_events=False)


def _schedule(engine: Engine, jobs: list[EngineJob]) -> dict[str, tuple]:
    for job in jobs:
        engine.submit(job)
    engine.run()
    return {rec.job.job_id: (rec.state.value, rec.start_s, rec.finish_s)
            for rec in engine.jobs.values()}


@pytest.mark.parametrize("start_s", [0.0, 20_000.0])
@pytest.mark.parametrize("name", ["fifo", "fifo_perf"])
def test_the_view_allocates_what_the_full_queue_would(name, start_s):
    policy = get_policy(name)
    assert policy_traits(name).head_of_queue
    calls: list[tuple[int, int]] = []

    def checked(state):
        out = policy(state)
        full_ids = engine._active_array()
        full = policy(engine._policy_state(state.now_s, full_ids))
        row = {int(j): k for k, j in enumerate(full_ids.tolist())}
        shown = [row[int(j)] for j in state.job_ids]
        np.testing.assert_array_equal(out.fractions, full.fractions[shown])
        hidden = np.setdiff1d(np.arange(len(full_ids)), shown)
        assert not full.fractions[hidden].any()  # behind the head: nothing
        calls.append((state.n_jobs, len(full_ids)))
        in_order.append(engine._active_in_order)
        return out

    in_order: list[bool] = []
    checked.traits = policy.traits  # type: ignore[attr-defined]
    engine = _engine(checked, start_s)
    _schedule(engine, _deep_queue())
    # The queue grew to hundreds; the policy never saw more than the chips' worth and the
    # running jobs.
    assert max(total for _, total in calls) > 100
    assert max(shown for shown, _ in calls) <= 2 * sum(POOLS.values()) + 1
    assert all(in_order) == (start_s == 0.0)  # both ways of finding the FIFO order ran


@pytest.mark.parametrize("start_s", [0.0, 20_000.0])
def test_non_preemptive_fifo_schedules_the_same_with_or_without_the_view(start_s):
    # Without failures a reallocation FIFO skips for a job behind the head changes nothing
    # (with node failures it shifts later reallocations in time; see the next test).
    fifo = get_policy("fifo")

    def blind(state):
        return fifo(state)

    blind.traits = PolicyTraits(agnostic=True, work_conserving=False)  # type: ignore[attr-defined]
    jobs = _deep_queue()
    assert _schedule(_engine(fifo, start_s), jobs) == _schedule(_engine(blind, start_s), jobs)


def test_a_job_behind_the_head_that_fits_does_not_trigger_a_reallocation():
    # 4 chips; r1 and r2 (2 chips each) run, h (4 chips) heads the queue, t (1 chip) waits
    # behind it. When r1 ends, t would fit the 2 free chips but FIFO cannot pass h: no
    # reallocation. When r2 ends, h fits: one, and h starts; t starts after h.
    fifo = get_policy("fifo")
    calls: list[float] = []

    def counted(state):
        calls.append(state.now_s)
        return fifo(state)

    counted.traits = fifo.traits  # type: ignore[attr-defined]
    engine = Engine(Cluster.from_counts({"V100": 4}), counted, SimClock(0.0), SimBackend(seed=0),
                    record_events=False)
    one = {"local/V100": 1.0}
    for job_id, chips, work_s in (("r1", 2, 600.0), ("r2", 2, 1200.0), ("h", 4, 300.0),
                                  ("t", 1, 300.0)):
        engine.submit(EngineJob(job_id, chips, work_s, one, 0.0))
    engine.run()
    start = {job_id: rec.start_s for job_id, rec in engine.jobs.items()}
    assert start["r1"] == start["r2"] == 0.0
    assert start["h"] == pytest.approx(1200.0, abs=360.0)
    assert start["t"] >= engine.jobs["h"].finish_s
    assert not any(600.0 <= t < start["h"] for t in calls)  # none while only t fit
    assert start["h"] in calls


@pytest.mark.parametrize("name", ["fifo", "fifo_perf", "max_min_fairness", "las"])
def test_a_reallocation_skips_untouched_rows_with_the_same_deficits(monkeypatch, name):
    """`_reallocate` credits deficits and resets received time only on rows touched since the
    last reset (`_touched`); crediting every row, as it did, must give the same schedule, the
    same deficits and the same received time, with a pool added mid-run (new pools' received
    time starts at 0)."""
    from dataclasses import replace

    from suanli.engine.rounds import RoundsMixin

    def run() -> tuple:
        engine = _engine(name)
        for job in _deep_queue(200):
            engine.submit(job)
        engine.run(until_s=20_000.0)
        extra = replace(engine.cluster.pools[0], pool_id="local/V100b", capacity=4)
        engine.set_cluster(Cluster([*engine.cluster.pools, extra]))
        engine.run()
        return (_schedule(engine, []), engine._deficit[:engine._n].tolist(),
                engine._recv[:engine._n].tolist())

    skipping = run()
    reallocate = RoundsMixin._reallocate

    def every_row(self, now, A, shown):
        self._touched[:] = True
        return reallocate(self, now, A, shown)

    monkeypatch.setattr(RoundsMixin, "_reallocate", every_row)
    assert run() == skipping

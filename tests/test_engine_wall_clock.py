"""The engine on a clock it does not control: steps come late and never land on the round grid.

The live service steps the engine on the wall clock every fraction of a second, so a step is
almost never exactly at a round's time. A round that is due must then run at the late step
(and the next one a round later), or no job would ever be placed.
"""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.engine import Cluster, Engine, EngineJob, JobState, SimBackend
from suanli.policies.base import Allocation, PolicyState

ROUND_S = 10.0


class JumpyClock:
    """A stand-in for the wall clock: moved by the test, by irregular amounts."""

    def __init__(self, t_s: float) -> None:
        self.t_s = t_s

    def now(self) -> float:
        return self.t_s


def arrival_order(state: PolicyState) -> Allocation:
    """Earliest jobs first, each on the first pool with room for its gang."""
    x = [[0.0] * state.n_pools for _ in range(state.n_jobs)]
    cap = [float(c) for c in state.capacity]
    for j in sorted(range(state.n_jobs), key=lambda j: (state.arrival_s[j], state.job_ids[j])):
        for p in range(state.n_pools):
            if state.throughput[j, p] > 0 and cap[p] >= state.num_chips[j]:
                x[j][p] = 1.0
                cap[p] -= state.num_chips[j]
                break
    return Allocation(np.array(x))


arrival_order.policy_name = "arrival_order"  # type: ignore[attr-defined]


def replay(gaps: list[float], policy=arrival_order, n_jobs: int = 4, chips: int = 1):
    """Jobs of 25 s each on `chips` chips, stepped at 0.3 s + the given gaps (cycled)."""
    clock = JumpyClock(0.3)
    eng = Engine(Cluster.from_counts({"V100": chips}), policy, clock, SimBackend(),
                 round_s=ROUND_S)
    for k in range(n_jobs):
        eng.submit(EngineJob(f"j{k}", 1, 25.0, {"local/V100": 1.0}, 0.3))
    steps = 0
    while not eng.done and steps < 10_000:
        eng.step()
        clock.t_s += gaps[steps % len(gaps)]
        steps += 1
    return eng


def test_jobs_get_placed_when_every_step_is_off_the_round_grid():
    eng = replay([0.7, 3.1, 1.3, 7.9, 0.4, 2.6])
    recs = [eng.jobs[f"j{k}"] for k in range(4)]
    assert all(r.state is JobState.SUCCEEDED for r in recs)
    assert eng.rounds > 0
    # One chip: each job starts at the first round after the one before it ended, which is
    # at most a round plus one step gap later.
    for before, after in zip(recs, recs[1:], strict=False):
        assert before.finish_s <= after.start_s <= before.finish_s + ROUND_S + 7.9


def test_first_job_into_an_idle_engine_starts_at_the_next_step():
    eng = replay([1.7])
    assert eng.jobs["j0"].start_s == 0.3  # the step right after submission runs the round


def test_a_late_step_runs_the_round_at_now_and_the_next_one_a_round_later():
    clock = JumpyClock(0.0)
    eng = Engine(Cluster.from_counts({"V100": 1}), arrival_order, clock, SimBackend(),
                 round_s=ROUND_S)
    eng.submit(EngineJob("a", 1, 12.0, {"local/V100": 1.0}, 0.0))
    eng.submit(EngineJob("b", 1, 5.0, {"local/V100": 1.0}, 0.0))
    eng.step()  # round at 0: a runs, b waits for the round at 10
    assert eng.jobs["a"].state is JobState.RUNNING
    clock.t_s = 13.5  # past the round at 10 and a's end at 12
    wake = eng.step()
    assert eng.jobs["a"].finish_s == 12.0
    assert eng.jobs["b"].start_s == 13.5  # the due round ran late, at now
    assert wake == 18.5  # b's end; the next round (23.5) is not needed before it


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_jobs=st.integers(1, 6), chips=st.integers(1, 3))
def test_irregular_steps_never_leave_free_chips_idle_for_long(seed, n_jobs, chips):
    rng = random.Random(seed)
    gaps = [rng.uniform(0.05, 3 * ROUND_S) for _ in range(20)]
    eng = replay(gaps, n_jobs=n_jobs, chips=chips)
    recs = sorted(eng.jobs.values(), key=lambda r: r.start_s)
    assert all(r.state is JobState.SUCCEEDED for r in recs)
    ends = sorted(r.finish_s for r in recs)
    for k, rec in enumerate(recs[chips:]):
        # The k-th job to get a chip after the first `chips` got it once k + 1 jobs had
        # ended: at most a round and a step gap after the chip came free.
        assert rec.start_s <= ends[k] + ROUND_S + max(gaps) + 1e-9


def test_fifo_on_a_wall_clock_places_queued_jobs_without_waiting_for_reallocation():
    # FIFO is strict (it runs only jobs it allocated) and the default reallocation interval
    # is 1920 s; a job queued behind another still starts a round after the chip frees.
    eng = replay([0.9, 2.3, 4.1], policy="fifo", n_jobs=3)
    recs = sorted(eng.jobs.values(), key=lambda r: r.start_s)
    assert all(r.state is JobState.SUCCEEDED for r in recs)
    for before, after in zip(recs, recs[1:], strict=False):
        assert before.finish_s <= after.start_s <= before.finish_s + ROUND_S + 4.1

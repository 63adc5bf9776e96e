"""A round's moves in batches give, bit for bit, what the one-job loop gives.

A time-sharing policy stops and starts tens of jobs a round; the engine ends their runs in
one vectorised pass (`runs._end_runs`) and takes their chips at once (`runs._take_chips_all`)
from `runs.BATCH_MIN` jobs up, and the broker's pass prices trace jobs for all starts at once
(`placement._ranked_rows`, `placement._costs_on`). Each is compared here with the path it
replaces, on whole simulations with many moves a round: the one-job loop (BATCH_MIN out of
reach) and the placer's own `choose` per job (a `BrokerPlacer` subclass takes that path).
"""

from __future__ import annotations

import random

import pytest

from suanli.engine import Cluster, Engine, EngineJob, SimBackend, SimClock, Transition, runs
from suanli.engine.placement import BrokerPlacer

SPEED = {"V100": 2.0, "P100": 1.0}


def _jobs(n: int = 140, seed: int = 3) -> list[EngineJob]:
    rng = random.Random(seed)
    jobs = []
    for k in range(n):
        chips = rng.choice([1, 1, 1, 2, 4])
        jobs.append(EngineJob(
            job_id=f"j{k}", num_chips=chips, total_work=rng.uniform(600.0, 20_000.0),
            throughput={f"local/{acc}": speed * rng.uniform(0.8, 1.2)
                        for acc, speed in SPEED.items()},
            arrival_s=rng.uniform(0.0, 20_000.0), restore_s=rng.choice([0.0, 30.0]),
            checkpoint_interval_s=rng.choice([600.0, 3600.0]),
            objective=rng.choice(["time", "cost"])))
    return jobs


def _cluster(chips_per_node: int) -> Cluster:
    return Cluster.from_counts({"V100": 12, "P100": 16}, prices={"V100": 3.0, "P100": 2.0},
                               chips_per_node=chips_per_node)


def _run(policy: str, chips_per_node: int, placement="auto") -> tuple:
    """Everything a run leaves behind: each transition with its placement, each job's
    accounts, the pools' busy time and free chips."""
    seen: list[tuple] = []

    def listen(tr: Transition) -> None:
        pl = tr.placement
        seen.append((tr.job_id, str(tr.new), tr.at_s, tr.reason) + (() if pl is None else (
            pl.pool_id, pl.nodes, pl.throughput, pl.work_remaining, pl.restore_s,
            pl.planned_cost, pl.planned_run_s, pl.note)))

    engine = Engine(_cluster(chips_per_node), policy, SimClock(0.0), SimBackend(seed=1),
                    round_s=300.0, listener=listen, placement=placement)
    for job in _jobs():
        engine.submit(job)
    result = engine.run()
    jobs = [(r.job_id, r.state, r.start_s, r.finish_s, r.chip_hours, r.cost, r.energy_kwh,
             r.preemptions, r.pools) for r in result.jobs]
    return seen, jobs, result.busy_chip_s, [f.tolist() for f in engine._node_free]


@pytest.mark.parametrize("chips_per_node", [1, 4])
@pytest.mark.parametrize("policy", ["max_min_fairness", "las", "max_min_fairness_perf"])
def test_a_rounds_batched_stops_and_starts_match_the_one_job_loop(monkeypatch, policy,
                                                                 chips_per_node):
    batches: list[int] = []
    end_runs = runs.RunsMixin._end_runs

    def counted(self, idx, now):
        batches.append(len(idx))
        return end_runs(self, idx, now)

    monkeypatch.setattr(runs.RunsMixin, "_end_runs", counted)
    batched = _run(policy, chips_per_node)
    assert max(batches) >= runs.BATCH_MIN  # the vectorised pass ran
    assert sum(r[7] for r in batched[1]) > 200  # preemptions: a time-sharing workload
    monkeypatch.setattr(runs, "BATCH_MIN", 10**9)  # every round takes the one-job loop
    assert _run(policy, chips_per_node) == batched


class _OneByOne(BrokerPlacer):
    """The broker, asked job by job (`Engine._broker_pass` batches only `BrokerPlacer`)."""


@pytest.mark.parametrize("policy", ["max_min_fairness", "max_min_fairness_perf"])
def test_the_broker_pass_prices_trace_jobs_as_the_placer_does_one_by_one(policy):
    # max_min_fairness is chip-agnostic (the broker picks the pool by each job's objective);
    # the _perf policy allows one pool per chip class (the job's only pool is priced).
    batched = _run(policy, 1, placement=BrokerPlacer())
    assert any(t[9] is not None for t in batched[0] if len(t) > 4)  # planned costs
    assert _run(policy, 1, placement=_OneByOne()) == batched

"""A round's moves in batches give, bit for bit, what the one-job path gives.

A time-sharing policy stops and starts tens of jobs a round. Without a listener (the
simulator) the engine ends their runs in one vectorised pass (`runs._end_runs`) and takes
their chips at once (`runs._take_chips_all`) from `runs.BATCH_MIN` jobs up; with a listener
(the live service, which may cancel a job or raise between two transitions) it takes the
one-job path. The broker's pass prices trace jobs for all starts at once
(`placement._ranked_rows`, `placement._costs_on`). Each is compared here with the path it
replaces on whole simulations with many moves a round, and the batch is shown to leave no
chips held by no one when the backend raises in the middle of a round's starts.
"""

from __future__ import annotations

import random

import pytest

from suanli.engine import Cluster, Engine, EngineJob, JobState, SimBackend, SimClock, runs
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


class _Recording(SimBackend):
    """The simulated backend, keeping every placement it is asked to start."""

    def __init__(self) -> None:
        super().__init__(seed=1)
        self.starts: list[tuple] = []

    def start(self, job, placement, now_s):
        self.starts.append((job.job_id, now_s, placement.pool_id, placement.nodes,
                            placement.throughput, placement.work_remaining,
                            placement.restore_s, placement.planned_cost,
                            placement.planned_run_s, placement.note))
        super().start(job, placement, now_s)


def _run(policy: str, chips_per_node: int, placement="auto", listen: bool = False) -> tuple:
    """Everything a run leaves behind: each start's placement, each job's transitions and
    accounts, the pools' busy time and free chips. `listen`: with a (silent) listener."""
    backend = _Recording()
    engine = Engine(_cluster(chips_per_node), policy, SimClock(0.0), backend, round_s=300.0,
                    placement=placement, listener=(lambda tr: None) if listen else None)
    for job in _jobs():
        engine.submit(job)
    result = engine.run()
    jobs = [(r.job_id, r.state, r.start_s, r.finish_s, r.chip_hours, r.cost, r.energy_kwh,
             r.preemptions, r.pools) for r in result.jobs]
    events = [rec.events for rec in engine.jobs.values()]
    return (backend.starts, events, jobs, result.busy_chip_s,
            [f.tolist() for f in engine._node_free])


@pytest.mark.parametrize("chips_per_node", [1, 4])
@pytest.mark.parametrize("policy", ["max_min_fairness", "las", "max_min_fairness_perf"])
def test_a_rounds_batched_stops_and_starts_match_the_one_job_path(monkeypatch, policy,
                                                                 chips_per_node):
    batches: list[int] = []
    end_runs = runs.RunsMixin._end_runs

    def counted(self, idx, now):
        batches.append(len(idx))
        return end_runs(self, idx, now)

    monkeypatch.setattr(runs.RunsMixin, "_end_runs", counted)
    batched = _run(policy, chips_per_node)
    assert max(batches) >= runs.BATCH_MIN  # the vectorised pass ran
    assert sum(r[7] for r in batched[2]) > 200  # preemptions: a time-sharing workload
    batches.clear()
    assert _run(policy, chips_per_node, listen=True) == batched  # the one-job path
    assert not batches
    monkeypatch.setattr(runs, "BATCH_MIN", 10**9)  # the batch's own one-job fallback
    assert _run(policy, chips_per_node) == batched


class _FailsOnce(SimBackend):
    """A backend whose third start of the run raises (a launch that fails)."""

    def __init__(self) -> None:
        super().__init__(seed=1)
        self.calls = 0

    def start(self, job, placement, now_s):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("launch failed")
        super().start(job, placement, now_s)


def test_a_backend_that_raises_mid_round_leaves_no_chips_held_by_no_one():
    backend = _FailsOnce()
    engine = Engine(Cluster.from_counts({"V100": 16}), "fifo", SimClock(0.0), backend,
                    round_s=300.0)
    for k in range(12):  # 12 one-chip jobs start in the first round: one batched take
        engine.submit(EngineJob(f"j{k}", 1, 1000.0, {"local/V100": 1.0}, 0.0))
    with pytest.raises(RuntimeError, match="launch failed"):
        engine.run()
    held = sum(int(engine._chips[i]) for i in engine._on_chips)
    assert engine.used_chips["local/V100"] == held == 3  # the two started and the third
    assert int(engine._node_free[0].sum()) == 16 - held
    engine.run(until_s=50_000.0)  # the service steps the same engine again
    assert engine.used_chips["local/V100"] == sum(int(engine._chips[i])
                                                  for i in engine._on_chips)
    assert sum(r.state is JobState.SUCCEEDED for r in engine.jobs.values()) >= 11


def test_a_listener_that_cancels_a_job_being_preempted_counts_its_chips_once():
    engine = None
    victim: list[str] = []

    def listen(tr) -> None:
        if not victim and tr.reason == "checkpointed":
            on = [jid for jid, rec in engine.jobs.items()
                  if jid != tr.job_id and rec.state in (JobState.RUNNING,
                                                        JobState.CHECKPOINTING)]
            if on:
                victim.append(on[0])
                engine.cancel(on[0])

    engine = Engine(Cluster.from_counts({"V100": 16}), "max_min_fairness", SimClock(0.0),
                    SimBackend(seed=1), round_s=300.0, listener=listen)
    for k in range(40):  # 40 one-chip jobs on 16 chips: rounds preempt many at once
        engine.submit(EngineJob(f"j{k}", 1, 20_000.0, {"local/V100": 1.0}, k * 10.0))
    result = engine.run()
    assert engine.jobs[victim[0]].state is JobState.CANCELLED
    assert engine.used_chips == {"local/V100": 0}
    assert engine._node_free[0].tolist() == engine._node_chips[0].tolist()
    assert sum(r.chip_seconds for r in engine.jobs.values()) == pytest.approx(
        sum(result.busy_chip_s))


class _OneByOne(BrokerPlacer):
    """The broker, asked job by job (`Engine._broker_pass` batches only `BrokerPlacer`)."""


@pytest.mark.parametrize("policy", ["max_min_fairness", "max_min_fairness_perf"])
def test_the_broker_pass_prices_trace_jobs_as_the_placer_does_one_by_one(policy):
    # max_min_fairness is chip-agnostic (the broker picks the pool by each job's objective);
    # the _perf policy allows one pool per chip class (the job's only pool is priced).
    batched = _run(policy, 1, placement=BrokerPlacer())
    assert any(start[7] is not None for start in batched[0])  # planned costs
    assert _run(policy, 1, placement=_OneByOne()) == batched

"""Elastic jobs in the engine: speed per count, re-sizing with its checkpoint/restore cost,
counts within the job's range, and fixed-count policies untouched (engine/elastic.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from suanli.engine import Cluster, Engine, EngineJob, JobState, SimBackend, SimClock
from suanli.engine.adapters import (
    amdahl_speedup,
    engine_job_from_spec,
    engine_jobs_from_workload,
)
from suanli.engine.types import ElasticSpeed
from suanli.errors import SuanliError
from suanli.jobs.spec import parse_job
from suanli.policies.base import Allocation, PolicyState, PolicyTraits
from suanli.workloads import (
    TraceJob,
    Workload,
    generate_poisson,
    load_gavel_throughputs,
    make_elastic,
)

V100, K80 = "local/V100", "local/K80"


def elastic_job(job_id="e", start=2, work=1000.0, restore_s=50.0,
                rates=None, arrival=0.0) -> EngineJob:
    rates = rates or {2: 1.0, 4: 1.8, 8: 3.0}
    speed = ElasticSpeed(tuple(sorted(rates)), {c: {V100: r} for c, r in rates.items()})
    return EngineJob(job_id, start, work, {V100: rates[start]}, arrival, restore_s=restore_s,
                     elastic=speed)


def counts_by_clock(switch_s: float, before: int, after: int):
    """An elastic policy giving job "e" `before` chips until switch_s, then `after`; every
    job the fastest pool it can run on."""

    def policy(state: PolicyState) -> Allocation:
        x = (state.throughput > 0).astype(float)
        x = x / np.maximum(x.sum(axis=1, keepdims=True), 1.0)
        chosen = np.where(state.elastic.elastic, before if state.now_s < switch_s else after, 0)
        return Allocation(x, num_chips=chosen)

    policy.traits = PolicyTraits(elastic=True)  # type: ignore[attr-defined]
    policy.policy_name = "counts_by_clock"  # type: ignore[attr-defined]
    return policy


def make(policy, cluster=None, **kw) -> Engine:
    cluster = cluster or Cluster.from_counts({"V100": 8, "K80": 1})
    return Engine(cluster, policy, SimClock(), SimBackend(), round_s=10.0,
                  realloc_interval_s=0.0, **kw)


def test_job_given_a_bigger_count_runs_faster_per_its_curve():
    ends = {}
    for count in (2, 4, 8):
        eng = make(counts_by_clock(0.0, count, count))
        eng.submit(elastic_job())
        eng.run()
        rec = eng.jobs["e"]
        assert rec.state is JobState.SUCCEEDED and rec.resizes == 0  # chosen before it ran
        ends[count] = rec.finish_s
    assert ends == pytest.approx({2: 1000.0, 4: 1000.0 / 1.8, 8: 1000.0 / 3.0})


def test_resizing_a_running_job_pays_its_restore_and_is_counted():
    eng = make(counts_by_clock(100.0, 2, 4))
    eng.submit(elastic_job())
    # A job on the K80 arriving at t=100 makes the engine reallocate then.
    eng.submit(EngineJob("x", 1, 50.0, {K80: 1.0}, 100.0))
    started = []
    eng.listener = lambda t: started.append((t.at_s, t.placement.count)) \
        if t.new is JobState.STARTING and t.job_id == "e" else None
    eng.run()
    rec = eng.jobs["e"]
    assert rec.resizes == 1 and rec.preemptions == 0
    assert started == [(0.0, 2), (100.0, 4)]
    # 100 units at 2 chips by t=100, restore 50 s, then 900 units at 1.8/s on 4 chips.
    assert rec.finish_s == pytest.approx(100.0 + 50.0 + 900.0 / 1.8)
    assert rec.job.num_chips == 4 and rec.job.throughput == {V100: 1.8}
    assert any("resized from 2 to 4 chips" in why for _, _, why in rec.events)
    # chip time: 100 s on 2 chips, then restore and run on 4
    assert rec.chip_seconds == pytest.approx(100.0 * 2 + (rec.finish_s - 100.0) * 4)


def test_a_waiting_job_changes_count_for_free():
    eng = make(counts_by_clock(0.0, 8, 8))
    eng.submit(elastic_job(arrival=30.0))
    eng.run()
    rec = eng.jobs["e"]
    assert rec.resizes == 0 and rec.finish_s == pytest.approx(30.0 + 1000.0 / 3.0)


def test_a_count_outside_the_jobs_range_is_refused():
    eng = make(counts_by_clock(0.0, 16, 16))
    eng.submit(elastic_job())
    with pytest.raises(SuanliError, match="may run on"):
        eng.run()


def test_an_elastic_job_must_start_from_one_of_its_counts():
    eng = make(counts_by_clock(0.0, 2, 2))
    bad = EngineJob("b", 3, 10.0, {V100: 1.0}, 0.0, elastic=elastic_job().elastic)
    with pytest.raises(SuanliError, match="not one of its elastic counts"):
        eng.submit(bad)


def test_fixed_count_policy_sees_no_options_and_keeps_the_count():
    seen = []

    def fixed(state: PolicyState) -> Allocation:
        seen.append(state.elastic)
        return Allocation((state.throughput > 0).astype(float))

    eng = make(fixed)
    eng.submit(elastic_job())
    eng.run()
    rec = eng.jobs["e"]
    assert seen and all(s is None for s in seen)
    assert rec.resizes == 0 and rec.job.num_chips == 2 and rec.finish_s == pytest.approx(1000.0)


def test_elastic_jct_shrinks_a_wide_job_when_load_arrives_and_widens_it_when_it_leaves():
    eng = make("elastic_jct", cluster=Cluster.from_counts({"V100": 8}))
    eng.submit(elastic_job("e", start=2, work=20000.0, restore_s=30.0))
    others = [EngineJob(f"o{k}", 4, 2000.0, {V100: 1.8}, 3000.0) for k in range(1)]
    for o in others:
        eng.submit(o)
    counts = []
    eng.listener = lambda t: counts.append((t.at_s, t.placement.count)) \
        if t.new is JobState.STARTING and t.job_id == "e" else None
    eng.run()
    rec = eng.jobs["e"]
    assert rec.state is JobState.SUCCEEDED
    assert [c for _, c in counts] == [8, 4, 8]
    assert rec.resizes == 2
    assert all(eng.jobs[o.job_id].state is JobState.SUCCEEDED for o in others)


# -- where the speeds come from (engine/adapters.py, workloads/elastic.py) ---------------------

FIXTURES = Path(__file__).parent / "fixtures"


def test_make_elastic_gives_each_job_half_to_double_its_count_or_gavels_range():
    wl = Workload(jobs=(TraceJob(0, 0.0, 4, duration_s=10.0), TraceJob(1, 0.0, 1, duration_s=10.0),
                        TraceJob(2, 0.0, 48, duration_s=10.0)))
    assert [j.count_range for j in make_elastic(wl, max_count=64).jobs] == [(2, 8), (1, 2),
                                                                            (24, 64)]
    assert [j.count_range for j in make_elastic(wl, gavel_range=True).jobs] == [(1, 8), (1, 8),
                                                                                 (1, 48)]


def test_gavel_job_speeds_per_count_are_the_measured_table():
    table = load_gavel_throughputs(FIXTURES / "gavel" / "simulation_throughputs_trimmed.json")
    wl = make_elastic(generate_poisson(20, rate_per_s=0.01, seed=3, throughputs=table),
                      gavel_range=True)
    cluster = Cluster.parse_counts("v100:8,p100:8,k80:8")
    jobs = engine_jobs_from_workload(wl, cluster)
    checked = 0
    for tj, job in zip(wl.jobs, jobs, strict=True):
        if job.elastic is None:
            continue
        assert tj.num_chips in job.elastic.counts
        for c in job.elastic.counts:
            for pool in cluster.pools:
                want = table.get(tj.job_type, pool.accelerator, c)
                assert job.elastic.throughput_by_count[c].get(pool.pool_id) == (want or None)
        checked += 1
    assert checked > 5


def test_duration_jobs_scale_sub_linearly_by_amdahl():
    wl = make_elastic(Workload(jobs=(TraceJob(0, 0.0, 4, duration_s=3600.0,
                                              reference_accelerator="V100"),)))
    cluster = Cluster.parse_counts("v100:16")
    job = engine_jobs_from_workload(wl, cluster)[0]
    assert job.elastic.counts == (2, 4, 8)
    rate = {c: job.elastic.throughput_by_count[c]["local/V100"] for c in (2, 4, 8)}
    assert rate[4] == pytest.approx(1.0)  # the trace's own count: its measured duration
    assert rate[8] / rate[4] == pytest.approx(amdahl_speedup(8) / amdahl_speedup(4))
    assert 1.0 < rate[8] / rate[4] < 2.0 and 1.0 < rate[4] / rate[2] < 2.0


def test_a_spec_with_a_count_range_is_elastic_with_the_performance_models_speeds():
    spec = parse_job({"name": "e", "kind": "train", "model": "llama-3-8b",
                      "work": {"tokens": 1e9}, "resources": {"count": {"min": 2, "max": 16},
                                                             "accelerators": ["H100"]}})
    cluster = Cluster.from_counts({"H100": 16})
    job = engine_job_from_spec("e", spec, cluster, 0.0, count=4)
    assert job.num_chips == 4 and job.elastic.counts == (2, 4, 8, 16)
    pid = cluster.pool_ids[0]
    rates = [job.elastic.throughput_by_count[c][pid] for c in job.elastic.counts]
    assert rates == sorted(rates) and rates[-1] > rates[0]  # faster with more chips
    assert job.elastic.throughput_by_count[4] == job.throughput
    fixed = parse_job({"name": "f", "kind": "train", "model": "llama-3-8b",
                       "work": {"tokens": 1e9}, "resources": {"count": 4}})
    assert engine_job_from_spec("f", fixed, cluster, 0.0).elastic is None

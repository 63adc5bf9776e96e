"""Metrics for replays under contention: the rho floor, waiting time, the queue's course; and
the contention benchmarks run end to end on the fixtures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine_policies import equal_share, fastest_first
from suanli.engine import Cluster, EngineJob
from suanli.engine.backend import SimBackend
from suanli.engine.clock import SimClock
from suanli.engine.engine import Engine
from suanli.policies.finish_time_fairness import MIN_ISOLATED_S, finish_time_fair
from suanli.sim.metrics import SimResult, isolated_floor, queue_stats
from suanli.sim.runner import simulate
from test_policies_hand_cases import make_state

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
V100 = {"local/V100": 1.0}


def _run(jobs, policy, chips=1, round_s=360.0) -> Engine:
    engine = Engine(Cluster.from_counts({"V100": chips}), policy, SimClock(0.0), SimBackend(seed=0),
                    round_s=round_s, record_events=False)
    for job in jobs:
        engine.submit(job)
    engine.run()
    return engine


def test_a_seconds_long_job_waiting_one_round_has_rho_near_one_not_in_the_hundreds():
    # A 3 s job arrives beside a 2 h job on two chips; it is placed at the next round.
    engine = _run([EngineJob("long", 1, 7200.0, V100, 0.0),
                   EngineJob("short", 1, 3.0, V100, 10.0)], fastest_first, chips=2)
    floored = {j.job_id: j for j in SimResult.from_engine(engine).jobs}
    raw = {j.job_id: j for j in SimResult.from_engine(engine, rho_floor_s=0.0).jobs}
    short = floored["short"]
    assert short.jct_s < 360.0
    assert raw["short"].rho == pytest.approx(short.jct_s / short.isolated_s)
    assert raw["short"].rho > 50  # the unfloored metric measures the round, not the policy
    assert short.rho == pytest.approx(short.jct_s / 360.0)  # the documented formula
    assert short.rho <= 1.0
    # A job longer than the floor is unaffected.
    assert floored["long"].rho == pytest.approx(raw["long"].rho)


def test_isolated_floor_is_the_max_of_isolated_time_and_floor():
    assert isolated_floor(np.array([3.0, 360.0, 7200.0]), 360.0).tolist() == [360, 360, 7200]


def test_summary_reports_rho_percentiles_and_how_many_jobs_the_floor_touched():
    engine = _run([EngineJob("long", 1, 7200.0, V100, 0.0),
                   EngineJob("short", 1, 3.0, V100, 10.0)], fastest_first, chips=2)
    s = SimResult.from_engine(engine).summary()
    assert s["ftf_rho_floor_s"] == 360.0
    assert s["ftf_rho_floored_jobs"] == 1
    assert s["ftf_rho_max"] >= s["ftf_rho_p99"] >= s["ftf_rho_p50"] > 0


def test_waiting_counts_every_wait_and_queueing_delay_only_the_first():
    # On one chip under equal shares the long job is preempted for the short one: it started
    # at once (no queueing delay) but waited while the short job ran.
    engine = _run([EngineJob("long", 1, 7200.0, V100, 0.0),
                   EngineJob("short", 1, 600.0, V100, 10.0)], equal_share)
    res = {j.job_id: j for j in SimResult.from_engine(engine).jobs}
    long = res["long"]
    assert long.queueing_delay_s == pytest.approx(0.0)
    assert long.preemptions >= 1
    assert long.waiting_s == pytest.approx(long.jct_s - long.chip_hours * 3600.0)
    assert long.waiting_s > 0


def test_queue_stats_for_the_hand_checked_run():
    # a and b start at once on two chips; c (two chips) waits 0-7200 s for both.
    cluster = Cluster.from_counts({"V100": 2})
    jobs = [EngineJob("a", 1, 3600.0, V100, 0.0), EngineJob("b", 1, 7200.0, V100, 0.0),
            EngineJob("c", 2, 3600.0, V100, 0.0)]
    s = simulate(jobs, cluster, fastest_first, round_s=3600.0).summary()
    q = s["queue"]
    assert q["peak"] == 1 and q["at_last_arrival"] == 1 and q["final"] == 0
    assert q["time_weighted_mean"] == pytest.approx(7200.0 / 10800.0)
    assert q["drained_after_last_arrival_s"] == pytest.approx(7200.0)
    assert s["avg_waiting_s"] == pytest.approx(7200.0 / 3)
    assert s["p50_queueing_delay_s"] == pytest.approx(0.0)


def test_queue_stats_say_when_the_queue_never_drains():
    q = queue_stats([0.0, 10.0, 20.0], [0, 3, 2], last_arrival_s=10.0)
    assert q["final"] == 2 and q["drained_after_last_arrival_s"] is None
    assert q["time_weighted_mean"] == pytest.approx(1.5)
    assert q["share_of_time_nonempty"] == pytest.approx(0.5)


def test_finish_time_fairness_policy_does_not_chase_a_seconds_long_job():
    # One chip, a fresh 10 h job and a fresh 3 s job. Unfloored, the 3 s job's isolated time
    # is 6 s and any rate below its equal share reads as unfair, so the two split the chip.
    # Floored, it needs only enough rate to finish within a round; the long job gets the rest.
    state = make_state([[1.0], [1.0]], [1], remaining=[36000.0, 3.0])
    ok = state.throughput > 0
    x_raw, _ = finish_time_fair(state, state.throughput, ok, min_isolated_s=0.0)
    x, rho = finish_time_fair(state, state.throughput, ok)
    assert x_raw[:, 0] == pytest.approx([0.5, 0.5], abs=1e-6)
    assert x[0, 0] > 0.9
    assert 3.0 / x[1, 0] <= rho * MIN_ISOLATED_S + 1e-6  # finishes within its floored time
    assert rho < 1.0


@pytest.mark.parametrize("script,args", [
    # the 60 P100 + 40 V100 cluster holds every gang of this slice; the default (sized to
    # the slice's load) is smaller and two of its gangs fit no pool
    ("bench_simulate_philly.py", ["--trace", str(FIXTURES / "philly" / "philly_first500.csv"),
                                  "--cluster", "loaded"]),
    ("bench_simulate_alibaba.py", [
        "--pods", str(FIXTURES / "alibaba" / "openb_pod_list_first500.csv"),
        "--nodes", str(FIXTURES / "alibaba" / "openb_node_list_gpu_node.csv")]),
])
def test_contention_benchmark_prints_one_json_document_per_policy(script, args):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--limit", "300",
         "--policies", "fifo,las", *args],
        capture_output=True, text=True, check=True, timeout=300,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    doc = json.loads(proc.stdout)
    assert doc["jobs"] == 300 and set(doc["policies"]) == {"fifo", "las"}
    for record in doc["policies"].values():
        assert record["succeeded"] == 300
        assert record["peak_rss_mb"] > 0 and record["ftf_rho"]["floor_s"] == 360.0
        assert record["queue"]["final"] == 0

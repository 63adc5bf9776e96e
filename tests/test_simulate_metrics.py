"""SimResult metrics and the trace/spec adapters that feed the simulator."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from engine_policies import fastest_first
from suanli.engine import Cluster, EngineJob, JobState, engine_job_from_spec, engine_job_from_trace
from suanli.jobs.spec import parse_job
from suanli.network import load_network
from suanli.sim.runner import FailureSpec, simulate
from suanli.workloads import TraceJob, load_gavel_throughputs, load_philly

FIXTURES = Path(__file__).parent / "fixtures"


def test_summary_numbers_for_a_hand_checked_run():
    cluster = Cluster.from_counts({"V100": 2}, prices={"V100": 3.0})
    jobs = [EngineJob("a", 1, 3600.0, {"local/V100": 1.0}, 0.0),
            EngineJob("b", 1, 7200.0, {"local/V100": 1.0}, 0.0),
            EngineJob("c", 2, 3600.0, {"local/V100": 1.0}, 0.0)]
    res = simulate(jobs, cluster, fastest_first, round_s=3600.0)
    s = res.summary()
    # a, b start at 0; c waits for both chips: a ends at 3600, b at 7200, c runs 7200-10800.
    by_id = {j.job_id: j for j in res.jobs}
    assert by_id["c"].start_s == pytest.approx(7200.0)
    assert s["avg_jct_s"] == pytest.approx((3600 + 7200 + 10800) / 3)
    assert s["median_jct_s"] == pytest.approx(7200.0)
    assert s["avg_queueing_delay_s"] == pytest.approx(7200.0 / 3)
    assert s["makespan_s"] == pytest.approx(10800.0)
    assert s["chip_hours"] == pytest.approx(1 + 2 + 2)
    assert s["cost"] == pytest.approx(5 * 3.0)
    assert s["utilization"]["local/V100"] == pytest.approx(5 * 3600 / (2 * 10800))
    assert s["states"]["succeeded"] == 3
    assert s["energy_kwh"] == pytest.approx(5 * 0.3)  # V100 300 W, PUE 1
    # Finish-time fairness: rho = JCT / (run time on an equal share of the cluster).
    assert s["ftf_rho_max"] > 0 and s["ftf_rho_mean"] > 0


def test_window_metrics_use_only_the_window():
    cluster = Cluster.from_counts({"V100": 1})
    jobs = [EngineJob(str(k), 1, 100.0, {"local/V100": 1.0}, 0.0) for k in range(4)]
    res = simulate(jobs, cluster, fastest_first, round_s=100.0)
    full = res.summary()
    part = res.summary(window=(1, 3))
    assert part["jobs"] == 2
    assert part["avg_jct_s"] == pytest.approx((200 + 300) / 2)
    assert full["avg_jct_s"] == pytest.approx((100 + 200 + 300 + 400) / 4)


def test_a_lone_job_is_treated_fairly():
    cluster = Cluster.from_counts({"V100": 1})
    res = simulate([EngineJob("a", 1, 3600.0, {"local/V100": 1.0}, 0.0)], cluster, fastest_first)
    assert res.jobs[0].rho == pytest.approx(1.0)


def test_failure_spec_parsing():
    f = FailureSpec.parse("center:wuhu@3600+7200")
    assert (f.scope, f.target, f.at_s, f.duration_s) == ("center", "wuhu", 3600.0, 7200.0)
    assert FailureSpec.parse("node:wuhu/a100/3@0+60").target == "wuhu/a100/3"


def test_gavel_trace_job_uses_measured_throughputs_per_pool():
    table = load_gavel_throughputs(FIXTURES / "gavel" / "simulation_throughputs_trimmed.json")
    cluster = Cluster.from_counts({"V100": 4, "P100": 4, "K80": 4})
    tj = TraceJob(job_id=7, arrival_s=10.0, num_chips=2, job_type="ResNet-18 (batch size 64)",
                  total_steps=1000.0)
    ej = engine_job_from_trace(tj, cluster, table)
    assert ej.job_id == "7" and ej.num_chips == 2 and ej.total_work == 1000.0
    for pool in cluster.pools:
        assert ej.throughput[pool.pool_id] == table.get(tj.job_type, pool.accelerator, 2)
    assert ej.meta["reference_throughput"] == table.get(tj.job_type, "V100", 2)


def test_duration_trace_job_scales_by_peak_tflops():
    cluster = Cluster.from_network(load_network("east-west"))
    tj = TraceJob(job_id=1, arrival_s=0.0, num_chips=1, duration_s=3600.0,
                  reference_accelerator="A100")
    ej = engine_job_from_trace(tj, cluster)
    assert ej.total_work == 3600.0
    assert ej.throughput["wuhu/a100"] == pytest.approx(1.0)
    assert ej.throughput["wuhu/h100"] == pytest.approx(989.0 / 312.0)
    restricted = engine_job_from_trace(
        TraceJob(job_id=2, arrival_s=0.0, num_chips=1, duration_s=60.0,
                 reference_accelerator="A100", allowed_accelerators=("H800",)), cluster)
    assert set(restricted.throughput) == {"zhangjiakou/h800", "yrd-demo-zone/h800",
                                          "horinger/h800"}


def test_philly_jobs_replay_to_terminal_states_on_a_network():
    workload = load_philly(FIXTURES / "philly" / "philly_first500.csv")
    cluster = Cluster.from_network(load_network("east-west"))
    from suanli.engine.adapters import engine_jobs_from_workload

    jobs = engine_jobs_from_workload(workload, cluster)
    res = simulate(jobs, cluster, "max_min_fairness_perf")
    assert all(j.state in ("succeeded", "failed") for j in res.jobs)
    assert res.summary()["states"]["succeeded"] == 500


def test_spec_job_is_timed_by_the_performance_model():
    spec = parse_job({
        "name": "ft", "kind": "finetune", "model": "llama-3-8b",
        "work": {"tokens": 2e8, "seq_len": 4096},
        "resources": {"accelerators": ["A100", "H800", "L20"], "count": 8},
        "checkpoint_restore_s": 90, "max_retries": 5, "priority": 2,
    })
    cluster = Cluster.from_network(load_network("east-west"))
    ej = engine_job_from_spec("j1", spec, cluster, arrival_s=100.0)
    assert ej.num_chips == 8 and ej.total_work == 2e8
    assert ej.restore_s == 90 and ej.max_retries == 5 and ej.priority == 3.0
    accs = {cluster.pool(p).accelerator for p in ej.throughput}
    assert accs <= {"A100", "H800", "L20"} and "A100" in accs
    assert ej.throughput["zhangjiakou/h800"] > ej.throughput["wuhu/a100"]
    assert math.isinf(ej.deadline_s)
    res = simulate([ej], cluster, "max_min_fairness_perf")
    assert res.jobs[0].state == JobState.SUCCEEDED.value

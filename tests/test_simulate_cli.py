"""`suanli simulate`: tables, JSON, files under --out, and user errors without tracebacks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from suanli.cli.main import app

FIXTURES = Path(__file__).parent / "fixtures"
GAVEL = FIXTURES / "gavel"
TRACE = str(GAVEL / "gen_100jobs_lam1200_seed0_multi.trace")
THROUGHPUTS = str(GAVEL / "simulation_throughputs_trimmed.json")
runner = CliRunner()


def test_json_lists_each_policy_with_headline_metrics():
    result = runner.invoke(app, [
        "simulate", "--trace", TRACE, "--throughputs", THROUGHPUTS,
        "--cluster", "v100:4,p100:4,k80:4", "--policy", "fifo_perf,max_min_fairness_perf",
        "--gavel-mode", "--json",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [d["policy"] for d in data] == ["fifo_perf", "max_min_fairness_perf"]
    for d in data:
        for key in ("avg_jct_s", "p99_jct_s", "median_jct_s", "makespan_s", "utilization",
                    "cost", "energy_kwh", "ftf_rho_max", "avg_queueing_delay_s", "states"):
            assert key in d
        assert set(d["utilization"]) == {"local/V100", "local/P100", "local/K80"}
        assert d["states"]["succeeded"] == 100


def test_window_restricts_metrics_to_those_jobs():
    result = runner.invoke(app, [
        "simulate", "--trace", TRACE, "--throughputs", THROUGHPUTS,
        "--cluster", "v100:4,p100:4,k80:4", "-p", "fifo_perf", "--gavel-mode",
        "--jobs", "20:60", "--json",
    ])
    assert result.exit_code == 0, result.output
    (d,) = json.loads(result.stdout)
    assert d["jobs"] == 40 and d["window"] == [20, 60]


def test_out_writes_csv_json_and_plots(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, [
        "simulate", "--trace", TRACE, "--throughputs", THROUGHPUTS,
        "--cluster", "v100:4@2.5,p100:4@1.5,k80:4@0.7", "-p", "fifo_perf,suanli_jct",
        "--out", str(out),
    ], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "average JCT" in result.stdout and "comparison" in result.stdout
    for name in ("jobs_fifo_perf.csv", "jobs_suanli_jct.csv", "summary.json", "jct_cdf.png",
                 "queue.png", "utilization_fifo_perf.png", "utilization_suanli_jct.png"):
        assert (out / name).stat().st_size > 0, name
    with open(out / "jobs_fifo_perf.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 100
    assert {"job_id", "jct_s", "queueing_delay_s", "pools", "cost", "energy_kwh",
            "retries", "state"} <= set(rows[0])
    summary = json.loads((out / "summary.json").read_text())
    assert summary[0]["cost"] > 0  # prices given with @


def test_philly_slice_on_a_network_with_an_outage():
    result = runner.invoke(app, [
        "simulate", "--trace", str(FIXTURES / "philly" / "philly_first500.csv"),
        "--network", "east-west", "-p", "max_min_fairness_perf",
        "--failure", "center:wuhu@3600+7200", "--json",
    ])
    assert result.exit_code == 0, result.output
    (d,) = json.loads(result.stdout)
    assert d["jobs"] == 500
    assert sum(d["states"][s] for s in ("succeeded", "failed", "cancelled")) == 500
    assert d["cost"] > 0 and d["energy_kwh"] > 0


def test_generated_workload_runs():
    result = runner.invoke(app, [
        "simulate", "--generate", "40", "--rate", "0.001", "--throughputs", THROUGHPUTS,
        "--cluster", "v100:4,p100:4,k80:4", "-p", "max_min_fairness_perf", "--json",
    ])
    assert result.exit_code == 0, result.output
    (d,) = json.loads(result.stdout)
    assert d["jobs"] == 40


def test_user_errors_exit_2_without_traceback():
    cases = [
        ["simulate", "--trace", TRACE],  # Gavel trace without throughputs
        ["simulate", "--trace", TRACE, "--throughputs", THROUGHPUTS, "-p", "nonsense"],
        ["simulate", "--trace", TRACE, "--throughputs", THROUGHPUTS, "--cluster", "v100"],
        ["simulate", "--trace", TRACE, "--throughputs", THROUGHPUTS, "--failure", "oops"],
        ["simulate"],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert "error" in result.output

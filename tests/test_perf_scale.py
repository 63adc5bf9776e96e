"""Issue 11: strong scaling at a fixed global batch, serving bounded by memory capacity, the
910B against the A100, bounded cost for any count, and the error on published measurements."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from suanli.catalog import builtin_catalog
from suanli.jobs import parse_job
from suanli.network.load import parse_network
from suanli.perf import DEFAULT_EFFICIENCY, estimate, estimate_grid
from suanli.plan import plan

ROOT = Path(__file__).resolve().parents[1]


def _train(model: str, batch_tokens: int, seq_len: int = 4096):
    return parse_job({"name": "t", "kind": "train", "model": model,
                      "work": {"tokens": 1e11, "seq_len": seq_len,
                               "global_batch_tokens": batch_tokens}})


def test_strong_scaling_at_a_fixed_global_batch_is_below_linear_and_then_flat():
    job = _train("llama-3-70b", 256 * 4096)
    rate = {n: estimate(job, "H100", n).tokens_per_s for n in (64, 512, 4096, 65536, 262144)}
    speedup_8x = rate[512] / rate[64]
    assert 1.0 < speedup_8x < 8.0
    assert rate[4096] / rate[512] < 0.75 * 8  # losses grow with the count
    # past the useful range more chips add nothing
    assert rate[262144] == pytest.approx(rate[65536], rel=1e-12)
    far = estimate(job, "H100", 262144)
    assert far.beyond_useful_range and far.chips_used < far.count


def test_a_small_model_stops_scaling_where_its_global_batch_runs_out():
    job = _train("llama-2-7b", 64 * 4096)
    at_4096, at_16384 = estimate(job, "H100", 4096), estimate(job, "H100", 16384)
    assert at_16384.tokens_per_s == at_4096.tokens_per_s
    assert at_16384.chips_used == at_4096.chips_used <= 4096
    assert at_16384.beyond_useful_range


def test_training_step_time_includes_the_optimizer_step():
    est = estimate(_train("llama-2-7b", 64 * 4096), "A100", 8)
    assert est.time_shares["memory_bandwidth"] > 0.0


def test_a_model_preset_carries_its_published_global_batch():
    job = parse_job({"name": "t", "kind": "train", "model": "llama-3.1-405b",
                     "work": {"tokens": 1e11, "seq_len": 8192}})
    assert job.model.global_batch_tokens == 16 * 1024 * 1024
    seqs = parse_job({"name": "t", "kind": "train", "model": "llama-2-7b",
                      "work": {"tokens": 1e11, "global_batch_seqs": 32}})
    assert seqs.work.global_batch_seqs == 32


@pytest.mark.parametrize("count", [2, 4])
def test_offline_70b_inference_is_faster_with_more_hbm_at_equal_compute_and_bandwidth(count):
    h100 = builtin_catalog().get("H100")
    roomy = h100.model_copy(update={"id": "H100-141GB", "memory_gb": 141.0})
    eff = DEFAULT_EFFICIENCY.with_overrides(
        {"compute": {"H100-141GB": DEFAULT_EFFICIENCY.compute_for("H100")}})
    job = parse_job({"name": "offline", "kind": "batch_inference", "model": "llama-3-70b",
                     "work": {"requests": 1e5, "input_tokens": 1024, "output_tokens": 1024}})
    small = estimate(job, h100, count, efficiency=eff)
    big = estimate(job, roomy, count, efficiency=eff)
    assert big.memory.kv_cache_gb > small.memory.kv_cache_gb
    assert big.tokens_per_s > 1.05 * small.tokens_per_s


@pytest.mark.parametrize("model", ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-70b"])
def test_910b_trains_dense_llama_models_at_80_to_120_percent_of_an_a100(model):
    job = _train(model, 1024 * 4096)
    a100, ascend = estimate(job, "A100", 64), estimate(job, "910B", 64)
    assert 0.8 <= ascend.tokens_per_s / a100.tokens_per_s <= 1.2


PROBE = textwrap.dedent("""
    import json, resource, sys, time
    from suanli.cli.main import app
    from typer.testing import CliRunner
    start = time.perf_counter()
    result = CliRunner().invoke(app, ["estimate", sys.argv[1], "-a", "H100", "--count",
                                      sys.argv[2], "--json"])
    seconds = time.perf_counter() - start
    # Peak RSS of this process's own memory. getrusage's ru_maxrss would also count the
    # parent's peak: Linux keeps the high-water mark of the memory image execve replaced.
    with open("/proc/self/status") as status:
        hwm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"s": seconds, "code": result.exit_code, "out": result.output,
                      "rss_mb": hwm_kb / 1024,
                      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


def _cli_estimate(count: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE,
                           str(ROOT / "examples" / "llama3-8b-pretrain.yaml"), str(count)],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_an_absurd_count_is_answered_in_under_a_second_and_100_mb():
    run = _cli_estimate(1_000_000_000)
    assert run["code"] == 0, run["out"]
    assert run["s"] < 1.0
    assert run["rss_mb"] < 100
    answer = json.loads(run["out"])
    assert answer["count"] == 1_000_000_000
    assert answer["beyond_useful_range"] and answer["chips_used"] < 1_000_000


def test_a_count_beyond_the_useful_range_says_so_with_chips_used_and_requested():
    est = estimate(parse_job({"name": "p", "kind": "train", "model": "llama-3-8b",
                              "work": {"tokens": 1e12, "seq_len": 8192,
                                       "global_batch_tokens": 4194304}}), "H100", 100_000)
    assert est.fits and est.beyond_useful_range
    assert est.chips_used < est.count == 100_000
    assert any(line.startswith("Beyond the useful range") and f"{est.chips_used:,}" in line
               and "100,000" in line for line in est.explanation)


def test_a_count_the_job_can_use_is_not_beyond_the_useful_range():
    est = estimate(_train("llama-3-70b", 1024 * 4096), "H100", 512)
    assert not est.beyond_useful_range


def test_the_model_lands_near_every_published_measurement():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_calibration.py")],
                          capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(proc.stdout)
    assert report["measurements"] >= 12
    assert report["median_abs_relative_error"] < 0.10
    assert report["max_abs_relative_error"] < 0.25
    assert all(row["source"] for row in report["rows"])


def test_the_grid_flags_the_same_counts_beyond_the_useful_range_as_estimate():
    job = _train("llama-2-7b", 64 * 4096)
    counts = np.array([8, 64, 512, 4096, 4200, 8192, 16384])
    grid = estimate_grid(job, ["H100", "910B"], counts)
    for i, chip in enumerate(grid.accelerators):
        for j, n in enumerate(counts):
            est = estimate(job, chip, int(n))
            assert bool(grid.beyond_useful_range[i, j]) == est.beyond_useful_range, (chip, n)
    assert grid.beyond_useful_range[0, -1] and not grid.beyond_useful_range[0, 0]


def test_the_planner_buys_no_chips_past_the_useful_range():
    net = parse_network({"name": "t", "centers": [
        {"id": "dc", "name": "dc", "region": "r", "lat": 30, "lon": 110,
         "electricity_price_per_kwh": 0.5, "pue": 1.2, "carbon_g_per_kwh": 500,
         "pools": [{"id": "h", "accelerator": "H100", "nodes": 2048,
                    "price_per_chip_hour": 10.0}]}],
        "links": [], "datasets": [], "intra_region_gbps": 100.0}, "t")
    job = parse_job({"name": "j", "kind": "train", "model": "llama-2-7b",
                     "work": {"tokens": 2e9, "seq_len": 4096, "global_batch_tokens": 64 * 4096},
                     "resources": {"count": {"min": 8, "max": 16384}}})
    result = plan(job, net, objective="time")
    assert result.options
    for option in result.options:
        assert not estimate(job, "H100", option.count).beyond_useful_range, option.count


def test_the_cli_answers_a_count_past_the_useful_range_with_chips_used_of_requested():
    from typer.testing import CliRunner

    from suanli.cli.main import app

    result = CliRunner().invoke(app, ["estimate", str(ROOT / "examples" /
                                                     "llama3-8b-pretrain.yaml"),
                                      "-a", "H100", "--count", "100000"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "beyond the useful range" in result.output
    assert "of 100,000 chips used" in result.output
    assert "more chips do not help" in result.output

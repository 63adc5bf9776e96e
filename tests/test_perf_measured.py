"""Measured throughputs override the model; calibration fits efficiencies to measurements."""

from __future__ import annotations

import numpy as np
import pytest

from suanli.jobs import parse_job
from suanli.perf import estimate, estimate_grid
from suanli.perf.calibrate import calibrate, parse_measurements
from suanli.perf.efficiency import DEFAULT_EFFICIENCY


def _job(measured=()):
    return parse_job({"name": "m", "kind": "train", "model": "llama-3-8b",
                      "work": {"tokens": 1e10}, "measured": list(measured)})


def test_measurement_overrides_the_model_at_its_count_and_scales_the_others():
    plain = _job()
    m8 = estimate(plain, "H100", 8)
    job = _job([{"accelerator": "H100", "count": 8, "tokens_per_s": m8.tokens_per_s / 2}])
    at8 = estimate(job, "H100", 8)
    assert at8.measured and at8.tokens_per_s == pytest.approx(m8.tokens_per_s / 2)
    assert any("Measured" in line for line in at8.explanation)
    at32 = estimate(job, "H100", 32)
    assert at32.duration_s == pytest.approx(2 * estimate(plain, "H100", 32).duration_s)
    other = estimate(job, "A100", 8)  # other chips keep the model
    assert other.duration_s == estimate(plain, "A100", 8).duration_s


def test_measured_estimate_agrees_with_the_grid():
    job = _job([{"accelerator": "H100", "count": 16, "duration_s": 5000.0}])
    counts = np.array([1, 8, 16, 64])
    grid = estimate_grid(job, ["H100", "A800"], counts)
    for i, chip in enumerate(["H100", "A800"]):
        for j, n in enumerate(counts):
            assert estimate(job, chip, int(n)).duration_s == grid.duration_s[i, j]
    assert grid.duration_s[0, 2] == 5000.0


def test_calibration_recovers_a_lower_efficiency_and_cuts_the_error():
    truth = DEFAULT_EFFICIENCY.with_overrides({"compute": {"H100": 0.45}, "memory_bw": 0.6})
    entries = []
    for model, kind, chip, count in [("llama-3-8b", "train", "H100", 8),
                                     ("llama-2-7b", "train", "H100", 16),
                                     ("llama-2-7b", "batch_inference", "H100", 1)]:
        extra = {"input_tokens": 1, "output_tokens": 256, "requests": 1} \
            if kind == "batch_inference" else {}
        entry = {"model": model, "kind": kind, "accelerator": chip, "count": count, **extra}
        point = parse_measurements([{**entry, "tokens_per_s": 1.0}])[0]
        rate = estimate(point.job, chip, count, efficiency=truth).tokens_per_s
        entries.append({**entry, "tokens_per_s": rate})
    result = calibrate(parse_measurements(entries))
    assert result.rms_log_error_after < 0.2 * result.rms_log_error_before
    assert result.efficiency.compute_for("H100") == pytest.approx(0.45, rel=0.1)
    assert result.efficiency.memory_bw == pytest.approx(0.6, rel=0.1)

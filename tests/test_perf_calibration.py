"""Calibration you can cite: the shipped sample, layouts as run, and provenance in data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from suanli.catalog import builtin_catalog
from suanli.errors import SpecError
from suanli.jobs import parse_job
from suanli.perf import DEFAULT_EFFICIENCY, calibrate, estimate
from suanli.perf.calibrate import load_measurements, parse_measurements
from suanli.perf.estimate import throughput_at_layout

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "calibration" / "measurements.yaml"


def _data(name: str) -> dict:
    return yaml.safe_load(resources.files("suanli.data").joinpath(name).read_text("utf-8"))


def test_the_shipped_sample_measurements_calibrate_to_a_small_error():
    result = calibrate(SAMPLE)
    assert result.rms_log_error_after < result.rms_log_error_before
    assert result.rms_log_error_after < 0.05
    assert set(result.overrides["compute"]) == {"910B", "A100"}


def test_a_measurement_with_a_layout_is_compared_at_that_layout():
    points = load_measurements(SAMPLE)
    first = points[0]
    assert first.layout == (8, 1)
    at_layout, _ = throughput_at_layout(first.job, first.accelerator, first.count, 8, 1)
    best = estimate(first.job, first.accelerator, first.count)
    assert at_layout < best.tokens_per_s  # tp=8 on a 7B model is not what the search picks
    row = calibrate([first]).rows[0]
    assert row["before_tokens_per_s"] == pytest.approx(at_layout)


def test_a_layout_larger_than_the_count_names_the_field():
    with pytest.raises(SpecError) as err:
        parse_measurements([{"model": "llama-2-7b", "accelerator": "A100", "count": 4,
                             "tokens_per_s": 1000, "tp": 8}])
    assert err.value.field == "measurements.0.tp"


def test_throughput_at_a_layout_that_does_not_fit_is_zero():
    job = parse_job({"name": "t", "kind": "train", "model": "llama-2-70b",
                     "work": {"tokens": 1e9}})
    assert throughput_at_layout(job, "A100", 1, 1, 1) == (0.0, 0.0)


def test_every_catalog_chip_has_an_efficiency_with_its_basis():
    table = _data("efficiency.yaml")["compute"]
    for acc in builtin_catalog():
        assert acc.id in table, acc.id
        assert table[acc.id]["basis"] in {"fitted", "anchored", "assumption"}
        assert DEFAULT_EFFICIENCY.compute_for(acc.id) == table[acc.id]["value"]


def test_fitted_efficiencies_name_measurements_that_exist_with_a_source():
    measurements = {m["id"]: m for m in _data("calibration.yaml")["measurements"]}
    assert all(m["source"] for m in measurements.values())
    for chip, entry in _data("efficiency.yaml")["compute"].items():
        for mid in entry.get("measurements", []):
            assert mid in measurements, (chip, mid)
        if entry["basis"] == "fitted":
            assert entry["measurements"], chip

"""estimate and estimate_grid agree exactly; generic work scales by compute or bandwidth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.catalog import builtin_catalog
from suanli.errors import SuanliError
from suanli.jobs import parse_job
from suanli.perf import BOUNDS, estimate, estimate_grid

JOBS = {
    "train": {"kind": "train", "model": "llama-3-70b", "work": {"tokens": 1e11}},
    "moe": {"kind": "train", "model": "mixtral-8x7b", "work": {"tokens": 1e11}},
    "lora": {"kind": "finetune", "model": "llama-2-70b",
             "work": {"tokens": 3e7, "seq_len": 8192, "lora_rank": 16}},
    "serve": {"kind": "inference", "model": "llama-3-70b",
              "work": {"rate_per_s": 5, "window_s": 3600, "latency_target_ms": 60}},
    "batch": {"kind": "batch_inference", "model": "qwen2-7b", "work": {"requests": 1e5}},
    "generic": {"kind": "generic", "work": {"reference_accelerator": "A100",
                                            "reference_count": 8, "duration_s": 3600}},
}
CHIPS = ["H100", "H800", "910B", "MI300X", "H20", "T4", "GB200"]
COUNTS = np.array([1, 2, 3, 7, 8, 16, 24, 100, 128, 130, 257, 1000])


def _job(key):
    return parse_job({"name": key, **JOBS[key]})


@pytest.mark.parametrize("key", list(JOBS))
def test_estimate_agrees_exactly_with_the_grid(key):
    job = _job(key)
    grid = estimate_grid(job, CHIPS, COUNTS)
    for i, chip in enumerate(CHIPS):
        for j, n in enumerate(COUNTS):
            if (i + j) % 3:  # a spread of cells keeps this fast
                continue
            e = estimate(job, chip, int(n))
            assert e.duration_s == grid.duration_s[i, j]
            assert e.tokens_per_s == grid.tokens_per_s[i, j]
            assert e.mfu == grid.mfu[i, j]
            assert e.power_w == grid.power_w[i, j]
            assert e.fits == grid.fits[i, j]
            assert e.bound == BOUNDS[grid.bound[i, j]]


@settings(max_examples=12, deadline=None)
@given(params_b=st.floats(0.5, 200), chip=st.sampled_from(CHIPS),
       kind=st.sampled_from(["train", "batch_inference"]))
def test_more_chips_never_slow_a_job_down(params_b, chip, kind):
    hidden = 4096 if params_b < 20 else 8192
    work = {"tokens": 1e10} if kind == "train" else {"requests": 1e4}
    job = parse_job({"name": "h", "kind": kind, "work": work,
                     "model": {"params_b": params_b, "layers": 48, "hidden": hidden,
                               "heads": 32}})
    grid = estimate_grid(job, [chip], np.arange(1, 200))
    dur = grid.duration_s[0]
    assert np.all(dur[1:] <= dur[:-1])
    tps = grid.tokens_per_s[0]
    assert np.all(tps[1:] >= tps[:-1])


def test_whole_catalog_at_every_count_to_4096_has_the_contract_shape():
    cat = builtin_catalog()
    grid = estimate_grid(_job("train"), list(cat), np.arange(1, 4097))
    assert grid.duration_s.shape == (len(cat), 4096) == grid.fits.shape
    assert grid.bound.dtype.kind == "i" and grid.fits.dtype == bool
    assert grid.fits.any() and (~grid.fits).any()


def test_generic_work_scales_by_compute_or_bandwidth_and_count():
    job = _job("generic")
    cat = builtin_catalog()
    ref = estimate(job, "A100", 8)
    assert ref.duration_s == pytest.approx(3600)
    h100 = estimate(job, "H100", 8)
    from suanli.perf.efficiency import DEFAULT_EFFICIENCY as eff
    ratio = (cat.get("A100").bf16_tflops * eff.compute_for("A100")) / (
        cat.get("H100").bf16_tflops * eff.compute_for("H100"))
    assert h100.duration_s == pytest.approx(3600 * ratio)
    assert h100.bound == "compute"
    sixteen = estimate(job, "A100", 16)
    assert 1800 < sixteen.duration_s < 3600 * 0.6  # sub-linear: a bit more than half
    mem = parse_job({"name": "g", "kind": "generic",
                     "work": {"reference_accelerator": "A100", "duration_s": 100,
                              "bound": "memory"}})
    h20 = estimate(mem, "H20", 1)
    assert h20.bound == "memory_bandwidth"
    assert h20.duration_s == pytest.approx(100 * 2.039 / 4.0)


def test_bad_inputs_name_the_field():
    job = _job("batch")
    with pytest.raises(SuanliError) as err:
        estimate(job, "H1000", 1)
    assert err.value.field == "accelerator" and err.value.value == "H1000"
    with pytest.raises(SuanliError) as err:
        estimate(job, "H100", 0)
    assert err.value.field == "count" and err.value.value == 0
    with pytest.raises(SuanliError) as err:
        estimate_grid(job, ["H100"], np.array([4, -1]))
    assert err.value.field == "count"
    bad_ref = parse_job({"name": "g", "kind": "generic",
                         "work": {"reference_accelerator": "Z9", "duration_s": 1}})
    with pytest.raises(SuanliError) as err:
        estimate(bad_ref, "H100", 1)
    assert err.value.field == "work.reference_accelerator"


def test_estimate_to_dict_is_json_with_the_contract_keys():
    import json
    d = json.loads(json.dumps(estimate(_job("train"), "H100", 1).to_dict()))
    for key in ("duration_s", "tokens_per_s", "fits", "memory_per_chip_gb", "bound", "mfu",
                "parallelism", "energy_kwh"):
        assert key in d
    assert d["duration_s"] is None and d["fits"] is False
    assert set(d["parallelism"]) == {"dp", "tp", "pp", "ep", "zero_stage"}

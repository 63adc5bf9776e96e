"""Synthetic workloads: Gavel's distributions, a loaded trace's, and the LLM mix."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.catalog import builtin_catalog
from suanli.errors import SuanliError
from suanli.jobs.models import resolve_model
from suanli.workloads import (
    generate_llm_mix,
    generate_poisson,
    load_gavel_throughputs,
    load_philly,
)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def table():
    return load_gavel_throughputs(FIXTURES / "gavel" / "simulation_throughputs_trimmed.json")


def test_same_seed_same_workload_and_different_seed_differs(table):
    a = generate_poisson(200, lam_s=1200, seed=7, throughputs=table)
    b = generate_poisson(200, lam_s=1200, seed=7, throughputs=table)
    c = generate_poisson(200, lam_s=1200, seed=8, throughputs=table)
    assert a.jobs == b.jobs
    assert a.jobs != c.jobs


def test_gavel_sizes_follow_70_10_15_5():
    w = generate_poisson(10_000, rate_per_s=1.0, seed=0)
    sizes = np.array([j.num_chips for j in w.jobs])
    for size, p in zip((1, 2, 4, 8), (0.70, 0.10, 0.15, 0.05), strict=True):
        assert abs((sizes == size).mean() - p) < 0.02, size


def test_gavel_durations_are_log_uniform_in_two_bands():
    w = generate_poisson(10_000, rate_per_s=1.0, seed=1)
    minutes = np.array([j.duration_s for j in w.jobs]) / 60.0
    assert minutes.min() >= 10**1.5 and minutes.max() <= 10**4
    short = minutes < 10**3
    assert abs(short.mean() - 0.8) < 0.02
    # Within the short band the exponent is uniform on [1.5, 3]: its mean is 2.25.
    assert abs(np.log10(minutes[short]).mean() - 2.25) < 0.02


def test_poisson_gaps_have_the_requested_mean():
    w = generate_poisson(10_000, lam_s=1200, seed=2)
    arrivals = np.array([j.arrival_s for j in w.jobs])
    assert arrivals[0] == 0.0
    gaps = np.diff(arrivals)
    assert (gaps >= 0).all()
    assert abs(gaps.mean() / 1200 - 1) < 0.05
    assert abs(gaps.std() / gaps.mean() - 1) < 0.05  # exponential: cv = 1
    by_rate = generate_poisson(10_000, rate_per_s=1 / 1200, seed=2)
    assert by_rate.jobs == w.jobs


def test_gavel_jobs_get_steps_from_the_v100_throughput(table):
    w = generate_poisson(2_000, lam_s=600, seed=3, throughputs=table)
    assert w.throughputs is table
    types = set(table.job_types)
    for job in w.jobs:
        assert job.job_type in types
        rate = table.get(job.job_type, "V100", job.num_chips)
        assert rate and rate > 0
        assert job.total_steps == pytest.approx(float(job.extra["reference_duration_s"]) * rate,
                                                rel=1e-6)
    multi = {j.job_type for j in w.jobs if j.num_chips > 1}
    assert "A3C" not in multi and "CycleGAN" not in multi  # not distributed in Gavel
    assert len({j.job_type for j in w.jobs}) == len(types)


def test_job_types_restrict_the_draw(table):
    wanted = ["ResNet-18 (batch size 128)", "LM (batch size 40)"]
    w = generate_poisson(300, lam_s=60, seed=4, throughputs=table, job_types=wanted)
    assert {j.job_type for j in w.jobs} == set(wanted)
    with pytest.raises(SuanliError) as err:
        generate_poisson(3, lam_s=60, throughputs=table, job_types=["BERT"])
    assert err.value.field == "job_types"


def test_like_draws_sizes_and_durations_from_the_trace():
    philly = load_philly(FIXTURES / "philly" / "philly_first500.csv")
    w = generate_poisson(5_000, lam_s=30, seed=5, like=philly)
    pairs = {(j.num_chips, j.duration_s, j.tenant) for j in philly.jobs}
    assert all((j.num_chips, j.duration_s, j.tenant) in pairs for j in w.jobs)
    assert {j.reference_accelerator for j in w.jobs} == {"P100"}
    one_gpu = np.mean([j.num_chips == 1 for j in w.jobs])
    assert abs(one_gpu - 488 / 500) < 0.02
    assert [j.job_id for j in w.jobs] == list(range(5_000))


def test_rate_arguments_are_checked():
    for kwargs in ({}, {"rate_per_s": 1.0, "lam_s": 1.0}, {"rate_per_s": 0.0},
                   {"lam_s": -5.0}):
        with pytest.raises(SuanliError):
            generate_poisson(3, **kwargs)
    with pytest.raises(SuanliError) as err:
        generate_poisson(-1, lam_s=1.0)
    assert err.value.field == "n_jobs"


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1),
       lam=st.floats(1e-3, 1e6, allow_nan=False))
def test_generated_jobs_are_well_formed(n, seed, lam):
    w = generate_poisson(n, lam_s=lam, seed=seed)
    assert len(w.jobs) == n
    assert [j.job_id for j in w.jobs] == list(range(n))
    arrivals = [j.arrival_s for j in w.jobs]
    assert arrivals == sorted(arrivals)
    assert all(j.num_chips in (1, 2, 4, 8) and j.duration_s > 0 for j in w.jobs)


def test_llm_mix_is_deterministic_and_uses_presets():
    a = generate_llm_mix(300, seed=11)
    assert a.jobs == generate_llm_mix(300, seed=11).jobs
    assert a.jobs != generate_llm_mix(300, seed=12).jobs
    for job in a.jobs:
        assert job.kind in ("train", "finetune")
        assert job.model == job.job_type
        resolve_model(job.model)
        assert job.tokens > 0 and job.seq_len in (2048, 4096, 8192)
        assert job.num_chips >= 1 and job.num_chips & (job.num_chips - 1) == 0
        assert job.reference_accelerator == "A800"
    assert {j.kind for j in a.jobs} == {"train", "finetune"}


def test_llm_tokens_match_the_reference_duration_at_40_percent_mfu():
    job = generate_llm_mix(1, seed=3).jobs[0]
    arch = resolve_model(job.model)
    peak = builtin_catalog().get("A800").bf16_tflops * 1e12
    expected_s = 6 * arch.active_params * job.tokens / (job.num_chips * peak * 0.4)
    assert job.duration_s == pytest.approx(expected_s)


def test_llm_chip_counts_hold_the_training_state():
    w = generate_llm_mix(500, seed=4, models=["llama-3-70b"], train_fraction=1.0)
    memory_gb = builtin_catalog().get("A800").memory_gb
    need = resolve_model("llama-3-70b").params * 16 / 1e9
    assert min(j.num_chips for j in w.jobs) >= math.ceil(need / memory_gb)


def test_llm_mix_options_are_checked():
    with pytest.raises(SuanliError) as err:
        generate_llm_mix(3, models=["not-a-model"])
    assert err.value.field == "models"
    with pytest.raises(SuanliError) as err:
        generate_llm_mix(3, models=["qwen2-7b"], weights=[1.0, 2.0])
    assert err.value.field == "weights"
    with pytest.raises(SuanliError) as err:
        generate_llm_mix(3, train_fraction=1.5)
    assert err.value.field == "train_fraction"


def test_llm_mix_assigns_tenants_when_given():
    w = generate_llm_mix(100, seed=0, tenants=["lab-a", "lab-b"], lam_s=60)
    assert {j.tenant for j in w.jobs} == {"lab-a", "lab-b"}

"""Every registered policy returns a feasible allocation, whatever the state (Hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suanli.policies import PolicyState, get_policy, policy_names


@st.composite
def states(draw: st.DrawFn) -> PolicyState:
    n_jobs = draw(st.integers(0, 10))
    n_pools = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    repeat_rows = draw(st.booleans())
    rng = np.random.default_rng(seed)
    thr = rng.choice([0.0, 0.5, 1.0, 2.0, 7.5], size=(n_jobs, n_pools))
    if repeat_rows and n_jobs > 1:
        thr = thr[rng.integers(0, max(n_jobs // 3, 1), n_jobs)]
    chips = rng.choice([1, 2, 4, 8], n_jobs).astype(float)
    capacity = rng.choice([0, 1, 4, 8, 16], n_pools).astype(float)
    now_s = 1000.0
    return PolicyState(
        now_s=now_s,
        job_ids=np.arange(n_jobs) * 7 + 3,
        num_chips=chips,
        priority=rng.choice([1.0, 1.0, 2.0], n_jobs),
        arrival_s=rng.uniform(0, now_s, n_jobs).round(),
        remaining_work=rng.choice([0.0, 10.0, 1e3, 1e6], n_jobs),
        attained_service_s=rng.uniform(0, 5e3, n_jobs),
        throughput=thr,
        pool_ids=[f"c/p{i}" for i in range(n_pools)],
        pool_accelerators=["a"] * n_pools,
        capacity=capacity,
        price_per_chip_hour=rng.choice([0.0, 5.0, 20.0], n_pools),
        deadline_s=np.where(rng.random(n_jobs) < 0.5, now_s + rng.uniform(0, 5e4, n_jobs), np.inf),
        tenant=[None] * n_jobs,
        running_on=np.where(rng.random(n_jobs) < 0.5, rng.integers(0, n_pools, n_jobs), -1),
        reference_throughput=None if rng.random() < 0.5 else rng.choice([0.0, 1.0, 3.0], n_jobs),
    )


@pytest.mark.parametrize("name", policy_names())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=states())
def test_every_policy_respects_capacity_time_and_eligibility(name: str, state: PolicyState):
    alloc = get_policy(name)(state)
    x = alloc.fractions
    assert x.shape == (state.n_jobs, state.n_pools)
    assert np.all(np.isfinite(x))
    assert np.all(x >= 0)
    assert np.all(x.sum(axis=1) <= 1 + 1e-9)
    assert np.all(state.num_chips @ x <= state.capacity + 1e-9)
    assert np.all(x[state.throughput == 0] == 0)
    too_big = state.num_chips[:, None] > state.capacity[None, :]
    assert np.all(x[too_big] == 0)
    assert alloc.rejected <= set(int(j) for j in state.job_ids)
    rejected = np.isin(state.job_ids, list(alloc.rejected))
    assert np.all(x[rejected] == 0)

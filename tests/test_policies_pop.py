"""POP (policies._pop): partitioned LPs are feasible, exact at k=1, close to the full LP."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suanli.policies._lp import max_linear, max_min, repair, utility
from suanli.policies._matrices import aware_throughput
from suanli.policies._pop import (
    max_min_duals,
    max_min_upper_bound,
    n_parts,
    part_max_min,
    solve_max_linear,
    solve_max_min,
)
from suanli.policies._synthetic import random_state
from suanli.policies.max_min_fairness import normalised_coefficients

GAP = 0.05  # POP's objective is within 5% of the full LP's on moderate distinct problems


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_jobs = draw(st.integers(0, 60))
    n_pools = draw(st.integers(1, 16))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    coef = rng.uniform(0.1, 5.0, (n_jobs, n_pools)) * (rng.random((n_jobs, n_pools)) < 0.8)
    chips = rng.choice([1.0, 2.0, 4.0, 8.0], n_jobs)
    capacity = rng.choice([0.0, 2.0, 4.0, 8.0, 16.0, 64.0], n_pools)
    return coef, chips, capacity


def assert_feasible(x, coef, chips, capacity):
    assert np.all(np.isfinite(x)) and np.all(x >= 0)
    assert np.all(x.sum(axis=1) <= 1 + 1e-9)
    assert np.all(chips @ x <= capacity + 1e-9)
    assert np.all(x[coef <= 0] == 0)
    assert np.all(x[chips[:, None] > capacity[None, :]] == 0)  # whole gangs fit their pools


def distinct(seed: int, n_jobs: int, n_pools: int, **kw) -> tuple[np.ndarray, ...]:
    s = random_state(seed, n_jobs, n_pools, n_job_types=None, **kw)
    coef = normalised_coefficients(s, aware_throughput(s))
    return coef, s.num_chips, s.capacity


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems(), k=st.integers(1, 6))
def test_partitioned_allocations_are_feasible_with_whole_gangs(problem, k):
    coef, chips, capacity = problem
    assert_feasible(solve_max_min(coef, chips, capacity, parts=k).fractions, coef, chips, capacity)
    assert_feasible(solve_max_linear(coef, chips, capacity, parts=k), coef, chips, capacity)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_one_part_is_the_full_lp(problem):
    coef, chips, capacity = problem
    coef = np.where(chips[:, None] <= capacity[None, :], coef, 0.0)  # as the policies pass it
    one = solve_max_min(coef, chips, capacity, parts=1)
    assert one.n_parts == 1
    np.testing.assert_array_equal(one.fractions, max_min(coef, chips, capacity).fractions)
    np.testing.assert_array_equal(
        solve_max_linear(coef, chips, capacity, parts=1), max_linear(coef, chips, capacity)
    )


def test_small_and_grouped_problems_keep_the_exact_lp():
    rng = np.random.default_rng(0)
    few = rng.uniform(0.1, 1.0, (300, 20))  # the engine's common case: distinct, but few jobs
    assert n_parts(few, np.ones(300), 300) == 1
    classes = rng.uniform(0.1, 1.0, (208, 8))  # 10,000 jobs in 208 classes x 8 pool kinds
    grouped = classes[rng.integers(0, 208, 10_000)][:, np.repeat(np.arange(8), 12)]
    assert n_parts(grouped, np.ones(10_000), 10_000) == 1
    distinct_rows = rng.uniform(0.1, 1.0, (10_000, 100))
    assert n_parts(distinct_rows, np.ones(10_000), 10_000) == 50


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chips_per_pool", [(8, 16), (8, 64)])
def test_pop_objective_is_within_the_stated_gap_of_the_full_lp(seed, chips_per_pool):
    coef, chips, cap = distinct(seed, 400, 20, chips_per_pool=chips_per_pool)
    full = max_min(coef, chips, cap)
    pop = solve_max_min(coef, chips, cap, parts=4)
    assert pop.n_parts == 4
    assert full.value * (1 - GAP) <= pop.value <= full.value * (1 + 1e-6)
    assert np.isclose(pop.value, utility(coef, pop.fractions)[coef.max(axis=1) > 0].min())
    w = coef / chips[:, None]
    full_total = (w * max_linear(w, chips, cap)).sum()
    assert (w * solve_max_linear(w, chips, cap, parts=4)).sum() >= full_total * (1 - GAP)


@pytest.mark.parametrize("seed", [0, 3])
def test_every_job_the_full_lp_serves_gets_a_positive_share(seed):
    coef, chips, cap = distinct(seed, 400, 20, chips_per_pool=(8, 16))
    served_full = utility(coef, max_min(coef, chips, cap).fractions) > 0
    served_pop = utility(coef, solve_max_min(coef, chips, cap, parts=4).fractions) > 0
    assert served_full.any()
    assert np.all(served_pop[served_full])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems(), seed=st.integers(0, 2**31 - 1))
def test_the_dual_bound_is_never_below_the_optimum(problem, seed):
    coef, chips, capacity = problem
    coef = np.where(chips[:, None] <= capacity[None, :], coef, 0.0)
    best = max_min(coef, chips, capacity).value
    rng = np.random.default_rng(seed)
    y, z = rng.uniform(0, 1, coef.shape[1]), rng.uniform(0, 1, coef.shape[0])
    assert max_min_upper_bound(coef, chips, capacity, y, z) >= best * (1 - 1e-9)
    t, y_opt, z_opt = max_min_duals(coef, chips, capacity)
    assert np.isclose(t, best, rtol=1e-6, atol=1e-9)
    if best > 0:  # the LP's own duals prove its optimum
        bound = max_min_upper_bound(coef, chips, capacity, y_opt, z_opt)
        assert bound == pytest.approx(best, rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_part_meets_a_level_or_falls_back_to_its_own_max_min(seed):
    coef, chips, cap = distinct(seed, 120, 12, chips_per_pool=(8, 16))
    coef = np.where(chips[:, None] <= cap[None, :], coef, 0.0)
    best = max_min(coef, chips, cap).value
    active = coef.max(axis=1) > 0
    own, own_value = part_max_min(coef, chips, cap)  # from the trivial upper bound, warm
    assert own_value == pytest.approx(best, rel=1e-6)
    for level in (0.9 * best, 1.05 * best, 3.0 * best):  # met; missed: its max-min, warm
        x, reached = part_max_min(coef, chips, cap, level)
        assert_feasible(repair(x, chips, cap), coef, chips, cap)
        assert reached == (level if level < best else pytest.approx(best, rel=1e-6))
        assert utility(coef, x)[active].min() >= reached * (1 - 1e-6)


def test_pop_is_deterministic():
    coef, chips, cap = distinct(4, 1_000, 30)
    first, again = (solve_max_min(coef, chips, cap, parts=5) for _ in range(2))
    np.testing.assert_array_equal(first.fractions, again.fractions)

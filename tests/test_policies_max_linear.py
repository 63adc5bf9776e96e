"""max_linear over two pool groups by the transportation solver (`_transport`): the same optimum
as HiGHS, feasible, certified; HiGHS's own path unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from suanli.policies import _lp
from suanli.policies._lp import linear_columns, max_linear
from suanli.policies._pop import solve_max_linear
from suanli.policies._transport import certified, optimal_prices, solve_two_sinks

RELATIVE = 1e-9  # objectives agree to this (HiGHS is exact to ~1e-12 on well-scaled LPs)


@st.composite
def two_sinks(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Profits per chip (some -inf: the class cannot use that sink), supplies and caps. Half
    the draws take profits from a few values, so ties between classes and sinks are common."""
    n = draw(st.integers(1, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    if draw(st.booleans()):
        profit_a, profit_b = rng.choice([0.5, 1.0, 2.0, 3.0], (2, n))
    else:
        profit_a, profit_b = rng.uniform(0.01, 1.0, (2, n))
    if draw(st.booleans()):
        profit_b = profit_a * draw(st.sampled_from([0.5, 1.0, 1.7, 5.9]))  # one speed ratio
    only_b = rng.random(n) < 0.15
    profit_a[only_b] = -np.inf
    profit_b[~only_b & (rng.random(n) < 0.15)] = -np.inf
    supply = rng.choice([1.0, 2.0, 4.0, 8.0, 16.0], n) * rng.integers(1, 4, n)
    if draw(st.booleans()):
        supply = supply * rng.uniform(0.3, 1.0, n)
    cap_a, cap_b = (float(c) for c in rng.integers(1, 60, 2))
    return profit_a, profit_b, supply, cap_a, cap_b


def highs_two_sinks(profit_a, profit_b, supply, cap_a, cap_b) -> float:
    """The LP's optimal objective by HiGHS (scipy's linprog)."""
    n = supply.size
    usable = np.concatenate([np.isfinite(profit_a), np.isfinite(profit_b)])
    profit = np.where(usable, np.concatenate([profit_a, profit_b]), 0.0)
    rows = np.vstack([np.hstack([np.eye(n), np.eye(n)]),
                      np.kron(np.eye(2), np.ones((1, n)))])
    result = linprog(-profit, A_ub=rows, b_ub=np.concatenate([supply, [cap_a, cap_b]]),
                     bounds=[(0, None if u else 0) for u in usable], method="highs")
    assert result.status == 0
    return -result.fun


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=two_sinks())
def test_two_sinks_reach_highs_optimum_and_are_feasible(problem):
    profit_a, profit_b, supply, cap_a, cap_b = problem
    solved = solve_two_sinks(*problem)
    assert solved is not None  # certified: no fall-back to HiGHS, even with ties
    y_a, y_b = solved
    assert y_a.min() >= 0 and y_b.min() >= 0
    assert np.all(y_a + y_b <= supply * (1 + 1e-12))
    assert y_a.sum() <= cap_a * (1 + 1e-12) and y_b.sum() <= cap_b * (1 + 1e-12)
    assert np.all(y_a[~np.isfinite(profit_a)] == 0) and np.all(y_b[~np.isfinite(profit_b)] == 0)
    objective = (np.where(y_a > 0, profit_a, 0.0) @ y_a + np.where(y_b > 0, profit_b, 0.0) @ y_b)
    reference = highs_two_sinks(*problem)
    assert objective == pytest.approx(reference, rel=RELATIVE, abs=1e-12)


def test_certificate_rejects_a_worse_or_infeasible_allocation():
    # class 0 gains most from A, class 1 from B; each sink holds one class
    profit_a, profit_b = np.array([3.0, 2.0]), np.array([1.0, 2.0])
    supply = np.ones(2)
    prices = optimal_prices(profit_a, profit_b, supply, 1.0, 1.0)
    assert certified(profit_a, profit_b, supply, 1.0, 1.0, *prices,
                     np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert not certified(profit_a, profit_b, supply, 1.0, 1.0, *prices,
                         np.array([0.0, 1.0]), np.array([1.0, 0.0]))  # swapped: 3 < 5
    assert not certified(profit_a, profit_b, supply, 1.0, 1.0, *prices,
                         np.array([1.0, 1.0]), np.array([0.0, 1.0]))  # A over capacity


@st.composite
def two_pool_jobs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """max_linear inputs over two pools: repeated job types (so classes group), zero weights,
    and gangs that fit only one pool or none."""
    n_types = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    types = rng.uniform(0.1, 1.0, (n_types, 2)) * (rng.random((n_types, 2)) < 0.85)
    type_chips = rng.choice([1.0, 2.0, 4.0, 8.0, 16.0], n_types)
    pick = rng.integers(0, n_types, draw(st.integers(1, 40)))
    capacity = rng.choice([1.0, 4.0, 8.0, 12.0, 30.0], 2)
    return types[pick], type_chips[pick], capacity


def assert_feasible(x, weight, chips, capacity):
    assert np.all(np.isfinite(x)) and np.all(x >= 0)
    assert np.all(x.sum(axis=1) <= 1 + 1e-9)
    assert np.all(chips @ x <= capacity * (1 + 1e-9))
    assert np.all(x[weight <= 0] == 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=two_pool_jobs())
def test_max_linear_transport_matches_highs(problem):
    weight, chips, capacity = problem
    x_fast = solve_max_linear(weight, chips, capacity, transport=True)
    x_highs = solve_max_linear(weight, chips, capacity)
    assert_feasible(x_fast, weight, chips, capacity)
    fast, highs = (weight * x_fast).sum(), (weight * x_highs).sum()
    assert fast == pytest.approx(highs, rel=RELATIVE, abs=1e-12)
    _, first, job_class = np.unique(np.column_stack([chips, weight]), axis=0,
                                    return_index=True, return_inverse=True)
    assert np.array_equal(x_fast, x_fast[first][job_class.ravel()])  # a class shares evenly


def test_four_pools_in_two_groups_take_the_transport_path(monkeypatch):
    rng = np.random.default_rng(3)
    fast_slow = rng.uniform(0.1, 1.0, (30, 2))
    weight = fast_slow[:, [0, 0, 1, 1]]  # pools 0, 1 and 2, 3 have equal columns
    chips = rng.choice([1.0, 2.0, 4.0], 30)
    capacity = np.array([4.0, 8.0, 6.0, 2.0])
    x_highs = max_linear(weight, chips, capacity)
    monkeypatch.setattr(_lp, "_highs_fractions", lambda *a: pytest.fail("HiGHS was used"))
    x_fast = max_linear(weight, chips, capacity, transport=True)
    assert_feasible(x_fast, weight, chips, capacity)
    assert (weight * x_fast).sum() == pytest.approx((weight * x_highs).sum(), rel=RELATIVE)


def test_three_pool_groups_or_an_uncertified_solve_use_highs(monkeypatch):
    rng = np.random.default_rng(4)
    weight = rng.uniform(0.1, 1.0, (20, 3))
    chips = rng.choice([1.0, 2.0, 4.0], 20)
    capacity = np.array([4.0, 8.0, 6.0])
    assert np.array_equal(max_linear(weight, chips, capacity, transport=True),
                          max_linear(weight, chips, capacity))
    monkeypatch.setattr(_lp, "solve_two_sinks", lambda *a: None)
    two = weight[:, :2]
    assert np.array_equal(max_linear(two, chips, capacity[:2], transport=True),
                          max_linear(two, chips, capacity[:2]))


def test_linear_columns_are_what_scipy_built():
    # HiGHS gets the same model as when scipy built the matrix, so its path is bit-identical
    rng = np.random.default_rng(5)
    n_jobs, n_groups = 7, 3
    job, group = np.nonzero(rng.random((n_jobs, n_groups)) < 0.7)
    share = rng.uniform(0.1, 2.0, job.size)
    var = np.arange(job.size)
    built = sp.csc_matrix((np.concatenate([np.ones(job.size), share]),
                           (np.concatenate([job, n_jobs + group]), np.concatenate([var, var]))),
                          shape=(n_jobs + n_groups, job.size))
    start, index, value = linear_columns(job, group, share, n_jobs)
    assert np.array_equal(start, built.indptr) and np.array_equal(index, built.indices)
    assert np.array_equal(value, built.data)

"""Hand-computed cases for the LP policies, EDF admission, and class aggregation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from suanli.policies import PolicyState, get_policy
from suanli.policies._lp import max_linear, max_min, utility
from suanli.policies.finish_time_fairness import finish_time_fair
from suanli.policies.max_min_fairness import normalised_coefficients
from suanli.policies.min_total_duration import min_makespan


def make_state(thr, capacity, *, chips=None, remaining=None, arrival=None, now_s=0.0,
               deadline=None, price=None) -> PolicyState:
    thr = np.asarray(thr, dtype=float)
    n_jobs, n_pools = thr.shape
    return PolicyState(
        now_s=now_s,
        job_ids=np.arange(n_jobs),
        num_chips=np.ones(n_jobs) if chips is None else np.asarray(chips, dtype=float),
        priority=np.ones(n_jobs),
        arrival_s=np.zeros(n_jobs) if arrival is None else np.asarray(arrival, dtype=float),
        remaining_work=(
            np.full(n_jobs, 100.0) if remaining is None else np.asarray(remaining, float)
        ),
        attained_service_s=np.zeros(n_jobs),
        throughput=thr,
        pool_ids=[f"c/p{i}" for i in range(n_pools)],
        pool_accelerators=[f"a{i}" for i in range(n_pools)],
        capacity=np.asarray(capacity, dtype=float),
        price_per_chip_hour=np.ones(n_pools) if price is None else np.asarray(price, float),
        deadline_s=np.full(n_jobs, np.inf) if deadline is None else np.asarray(deadline, float),
    )


def test_aware_max_min_beats_equal_share_by_the_hand_computed_amount():
    # one V100 and one K80; job A runs 4x faster on the V100, B and C run the same on both.
    # Equal shares (1/3 of each chip) give each job 2/3 of its equal-share rate. Aware optimum:
    # B and C take the K80 half each plus (1-a)/2 of the V100, A takes a of the V100:
    # 1.6 a = 1 - a/2  =>  a = 1/2.1, min normalised throughput 16/21.
    state = make_state([[4, 1], [1, 1], [1, 1]], [1, 1])
    x = get_policy("max_min_fairness_perf")(state).fractions
    norm = utility(normalised_coefficients(state, state.throughput), x)
    assert norm.min() == pytest.approx(16 / 21, rel=1e-6)
    assert np.all(norm >= 2 / 3)
    assert x[0, 0] == pytest.approx(1 / 2.1, rel=1e-6)


def test_agnostic_max_min_gives_equal_chip_time():
    state = make_state([[4, 1], [1, 1], [1, 1]], [1, 1], chips=[1, 1, 1])
    x = get_policy("max_min_fairness")(state).fractions
    assert x.sum(axis=1) == pytest.approx([2 / 3] * 3, rel=1e-6)


def test_min_makespan_on_heterogeneous_pools():
    # rates add up to at most 2 + 1 = 3 per second; 60 units of work need 20 s at least,
    # reached when each job gets half of each pool (1 + 0.5 = 1.5 units/s each).
    state = make_state([[2, 1], [2, 1]], [1, 1], remaining=[30, 30])
    x, makespan = min_makespan(state, state.throughput)
    assert makespan == pytest.approx(20.0, rel=1e-6)
    assert utility(state.throughput, x) == pytest.approx([1.5, 1.5], rel=1e-6)


def test_min_makespan_is_bound_by_the_longest_job_alone():
    state = make_state([[1], [1]], [2], remaining=[10, 30])
    _, makespan = min_makespan(state, state.throughput)
    assert makespan == pytest.approx(30.0, rel=1e-6)


def test_finish_time_fairness_on_one_pool_is_the_equal_share():
    # on a single pool any change from equal shares delays someone past rho = 1
    state = make_state([[1], [1]], [1], remaining=[20, 10], arrival=[-10, 0])
    x, rho = finish_time_fair(state, state.throughput, state.throughput > 0, min_isolated_s=0.0)
    assert rho == pytest.approx(1.0, abs=1e-6)
    assert x[:, 0] == pytest.approx([0.5, 0.5], abs=1e-6)


def _bisection_rho(thr, capacity, remaining, elapsed, isolated):
    """Independent check: smallest r with a feasible allocation, by bisection over linprog."""
    n_jobs, n_pools = thr.shape
    d = elapsed + remaining / isolated

    def feasible(r):
        need = remaining / (r * d - elapsed)
        a_ub, b_ub = [], []
        for j in range(n_jobs):
            row = np.zeros(n_jobs * n_pools)
            row[j * n_pools:(j + 1) * n_pools] = -thr[j]
            a_ub.append(row)
            b_ub.append(-need[j])
            row = np.zeros(n_jobs * n_pools)
            row[j * n_pools:(j + 1) * n_pools] = 1
            a_ub.append(row)
            b_ub.append(1)
        for p in range(n_pools):
            row = np.zeros(n_jobs * n_pools)
            row[p::n_pools] = 1
            a_ub.append(row)
            b_ub.append(capacity[p])
        res = linprog(np.zeros(n_jobs * n_pools), A_ub=np.array(a_ub), b_ub=b_ub,
                      bounds=[(0, None)] * (n_jobs * n_pools), method="highs")
        return res.status == 0

    lo, hi = max(elapsed / d) + 1e-9, 1.0 + 1e-9
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if feasible(mid) else (mid, hi)
    return hi


def test_finish_time_fairness_perf_matches_a_bisection_over_rho():
    rng = np.random.default_rng(4)
    thr = rng.choice([0.5, 1.0, 3.0], size=(4, 2))
    state = make_state(thr, [1, 2], remaining=[50, 200, 100, 400],
                       arrival=[-300, -50, 0, -10])
    ok = thr > 0
    x, rho = finish_time_fair(state, thr, ok, min_isolated_s=0.0)
    iso_x = max_min(normalised_coefficients(state, ok.astype(float)), state.num_chips,
                    state.capacity).fractions
    isolated = utility(thr, iso_x)
    expected = _bisection_rho(thr, state.capacity, state.remaining_work,
                              state.now_s - state.arrival_s, isolated)
    assert rho == pytest.approx(expected, rel=1e-4)
    assert rho < 1.0


def test_edf_rejects_a_job_that_cannot_meet_its_deadline_and_admits_one_that_can():
    # both need 100 s on their best pool (rate 1); one has 50 s left, the other 150 s
    state = make_state([[1, 0.5], [1, 0.5]], [1, 1], remaining=[100, 100], now_s=1000,
                       deadline=[1050, 1150])
    alloc = get_policy("edf")(state)
    assert alloc.rejected == frozenset({0})
    assert alloc.fractions[0].sum() == 0
    assert alloc.fractions[1, 0] == 1.0  # only the fast pool meets its deadline


def test_edf_keeps_the_fast_pool_free_when_the_slow_one_meets_the_deadline():
    state = make_state([[1, 0.5]], [1, 1], remaining=[100], now_s=1000, deadline=[1300])
    alloc = get_policy("edf")(state)
    assert alloc.rejected == frozenset()
    assert alloc.fractions[0].tolist() == [0.0, 1.0]


def test_fifo_perf_gives_the_earliest_job_its_fastest_pool():
    state = make_state([[1, 3], [1, 3]], [1, 1], arrival=[5, 0])
    x = get_policy("fifo_perf")(state).fractions
    assert x[1, 1] == 1.0 and x[0, 0] == 1.0


def test_fifo_does_not_let_a_later_job_overtake_a_blocked_one():
    state = make_state([[1], [1], [1]], [4], chips=[2, 4, 1], arrival=[0, 1, 2])
    x = get_policy("fifo")(state).fractions
    assert x[:, 0].tolist() == [1.0, 0.0, 0.0]


def test_suanli_jct_runs_the_shorter_job_on_the_pool_it_gains_most_from():
    # job 0 is short and gains 10x on pool 0; job 1 is long and gains little
    state = make_state([[10, 1], [1.2, 1]], [1, 1], remaining=[100, 1000])
    x = get_policy("suanli_jct")(state).fractions
    assert x[0, 0] == 1.0 and x[1, 1] == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_aggregation_gives_the_unaggregated_objective(seed):
    rng = np.random.default_rng(seed)
    types = rng.uniform(0.1, 5, (4, 5)) * (rng.random((4, 5)) > 0.2)
    pick = rng.integers(0, 4, 30)
    coef = types[pick][:, [0, 1, 1, 2, 3, 4, 4]]  # pools 1,2 and 5,6 have equal columns
    chips = np.array([1.0, 2.0, 4.0, 1.0])[pick]
    cap = np.array([8.0, 4.0, 6.0, 0.0, 16.0, 8.0, 2.0])
    grouped = max_min(coef, chips, cap)
    flat = max_min(coef, chips, cap, aggregate=False)
    assert grouped.n_classes <= 4 and flat.n_classes == 30
    assert grouped.value == pytest.approx(flat.value, rel=1e-6)
    live = coef.max(axis=1) > 0
    assert utility(coef, grouped.fractions)[live].min() == pytest.approx(flat.value, rel=1e-6)
    lin_g = (coef * max_linear(coef, chips, cap)).sum()
    lin_f = (coef * max_linear(coef, chips, cap, aggregate=False)).sum()
    assert lin_g == pytest.approx(lin_f, rel=1e-6)


def test_suanli_jct_promotes_the_longest_starved_jobs_within_a_tenth_of_the_chips():
    """Starved jobs outrank short ones, oldest first, but only on STARVED_SHARE of the chips:
    promoting every starved job let long jobs hold the cluster for days (see suanli_jct)."""
    from suanli.policies.suanli_jct import STARVATION_S, STARVED_SHARE, promoted

    now = 10 * STARVATION_S
    # jobs 0-19: long (remaining 1e6 s), arrived long ago, waits 9..9.95 x STARVATION_S;
    # jobs 20-39: short (remaining 100 s), just arrived. 20 chips, one pool.
    arrival = np.concatenate([np.linspace(STARVATION_S, 1.95 * STARVATION_S, 20),
                              np.full(20, now)])
    remaining = np.concatenate([np.full(20, 1e6), np.full(20, 100.0)])
    state = make_state(np.ones((40, 1)), [20.0], remaining=remaining, arrival=arrival,
                       now_s=now)
    wait = now - arrival
    chosen = promoted(wait, np.ones(40), np.array([20.0]))
    assert chosen.sum() == int(STARVED_SHARE * 20) == 2
    assert chosen[:2].all()  # the two longest-waiting starved jobs
    x = get_policy("suanli_jct")(state).fractions[:, 0]
    assert x[:2] == pytest.approx([1.0, 1.0])  # the promoted starved jobs run
    assert x[2:20].sum() == pytest.approx(0.0, abs=1e-9)  # the other starved jobs wait
    assert x[20:].sum() == pytest.approx(18.0)  # the short jobs take the rest of the chips


def test_suanli_jct_always_promotes_the_longest_starved_job_even_if_its_gang_is_large():
    from suanli.policies.suanli_jct import STARVATION_S, promoted

    wait = np.array([2 * STARVATION_S, 1.5 * STARVATION_S, 0.0])
    chosen = promoted(wait, np.array([16.0, 1.0, 1.0]), np.array([20.0]))
    assert chosen.tolist() == [True, False, False]  # 16 chips > 10% of 20, promoted anyway

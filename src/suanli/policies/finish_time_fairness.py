"""Finish-time fairness (Themis), in Gavel's formulation, agnostic and aware.

rho_j(X) = (elapsed_j + remaining_j / throughput_j(X)) / (elapsed_j + remaining_j / isolated_j),
where isolated_j is the job's throughput under the agnostic max-min (equal chip-time share)
allocation, i.e. its finish time had it a 1/n share of the network. Minimise max_j rho_j.

rho is not linear in X, but for a fixed bound r the condition rho_j <= r is the linear
throughput_j(X) >= remaining_j / (r * D_j - elapsed_j). So: start at the isolated allocation
(rho <= 1 for all), solve the max-min LP of throughput over those required rates; if every job
can do better than required, the achieved max rho is a new, smaller r. Each step is feasible and
decreases r (a Dinkelbach-style iteration); it stops when the LP cannot beat 1.

D_j is floored at `MIN_ISOLATED_S`, one default scheduling round, as the reported metric is
(`suanli.sim.metrics.isolated_floor`): a job of a few seconds has D_j of a few seconds, so
any wait for a round reads as a large rho and the LP would hand it chips ahead of long jobs
to save seconds nobody can see at round granularity. With the floor it needs only enough
rate to finish within about a round of arriving.
"""

from __future__ import annotations

import numpy as np

from suanli.policies._lp import utility
from suanli.policies._matrices import (
    agnostic_throughput,
    aware_throughput,
    chips_of,
    runnable,
)
from suanli.policies._pop import solve_max_min
from suanli.policies.base import Allocation, PolicyState
from suanli.policies.max_min_fairness import normalised_coefficients
from suanli.policies.registry import register

MAX_STEPS = 12
MIN_ISOLATED_S = 360.0  # the engine's default round (Gavel's too)


def _rho(elapsed: np.ndarray, remaining: np.ndarray, rate: np.ndarray, d: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (elapsed + remaining / rate) / d


def finish_time_fair(
    state: PolicyState, thr: np.ndarray, ok: np.ndarray, *, min_isolated_s: float = MIN_ISOLATED_S
) -> tuple[np.ndarray, float]:
    """(X, max rho) minimising the largest finish-time ratio over jobs that can run; the
    isolated finish time D_j is at least `min_isolated_s` (0: Gavel's unfloored form)."""
    chips = chips_of(state)
    remaining = np.maximum(np.asarray(state.remaining_work, dtype=float), 0.0)
    elapsed = np.maximum(state.now_s - np.asarray(state.arrival_s, dtype=float), 0.0)
    equal = normalised_coefficients(state, ok.astype(float))
    x_iso = solve_max_min(equal, chips, state.capacity).fractions
    isolated = utility(thr, x_iso)
    live = (remaining > 0) & (isolated > 0)
    if not live.any():
        return x_iso, 1.0
    d = np.where(live, elapsed + remaining / np.where(live, isolated, 1.0), 1.0)
    d = np.where(live, np.maximum(d, min_isolated_s), d)
    best_x = x_iso
    r = float(np.max(_rho(elapsed, remaining, isolated, d)[live]))
    for _ in range(MAX_STEPS):
        slack = r * d - elapsed
        need = np.where(live & (slack > 0), remaining / np.where(slack > 0, slack, 1.0), 0.0)
        coef = np.where(need[:, None] > 0, thr / np.where(need > 0, need, 1.0)[:, None], 0.0)
        result = solve_max_min(coef, chips, state.capacity)
        if result.value <= 1.0 + 1e-6:
            break
        rate = utility(thr, result.fractions)
        r_new = float(np.max(_rho(elapsed, remaining, rate, d)[live]))
        if not np.isfinite(r_new) or r_new >= r * (1 - 1e-6):
            break
        r, best_x = r_new, result.fractions
    return best_x, r


@register("finish_time_fairness", aliases=("ftf", "themis"),
          agnostic=True)
def finish_time_fairness(state: PolicyState) -> Allocation:
    ok = runnable(state)
    x, r = finish_time_fair(state, agnostic_throughput(state, ok), ok)
    return Allocation(x, note=f"finish_time_fairness: max rho {r:.4g}")


@register("finish_time_fairness_perf", aliases=("ftf_perf", "themis_perf"))
def finish_time_fairness_perf(state: PolicyState) -> Allocation:
    ok = runnable(state)
    x, r = finish_time_fair(state, aware_throughput(state, ok), ok)
    return Allocation(x, note=f"finish_time_fairness_perf: max rho {r:.4g}")

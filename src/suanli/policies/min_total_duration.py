"""Minimum makespan (Gavel's min_total_duration), agnostic and aware.

Minimise T such that every job's remaining work is done by T at its allocated throughput:
throughput_j(X) >= remaining_j / T. With u = 1/T this is one max-min LP,
maximise min_j throughput_j(X) / remaining_j, so no bisection over T is needed.
"""

from __future__ import annotations

import numpy as np

from suanli.policies._matrices import agnostic_throughput, aware_throughput, chips_of, runnable
from suanli.policies._pop import solve_max_min
from suanli.policies.base import Allocation, PolicyState
from suanli.policies.registry import register


def min_makespan(state: PolicyState, thr: np.ndarray) -> tuple[np.ndarray, float]:
    """(X, makespan in seconds from now) for the throughput matrix `thr`."""
    remaining = np.asarray(state.remaining_work, dtype=float)
    live = remaining > 0
    coef = np.where(live[:, None], thr / np.where(live, remaining, 1.0)[:, None], 0.0)
    result = solve_max_min(coef, chips_of(state), state.capacity)
    makespan = 1.0 / result.value if result.value > 0 else float("inf")
    return result.fractions, makespan


@register("min_total_duration", aliases=("min_makespan", "makespan"),
          agnostic=True)
def min_total_duration(state: PolicyState) -> Allocation:
    x, t = min_makespan(state, agnostic_throughput(state, runnable(state)))
    return Allocation(x, note=f"min_total_duration: makespan {t:.6g} s (all pools alike)")


@register("min_total_duration_perf", aliases=("min_makespan_perf", "makespan_perf"))
def min_total_duration_perf(state: PolicyState) -> Allocation:
    x, t = min_makespan(state, aware_throughput(state))
    return Allocation(x, note=f"min_total_duration_perf: makespan {t:.6g} s")

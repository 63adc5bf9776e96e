"""Max-min fairness (least attained service as an LP), agnostic and heterogeneity-aware.

Gavel's formulation: maximise min_j  throughput_j(X) * chips_j / (priority_j * equal_share_j),
where equal_share_j is the job's throughput under an equal slice of every pool. Multiplying by
the gang size makes a 1-chip job receive `chips` times the time of a `chips`-chip job, so
chip-time, not time, is what is shared. The agnostic variant sees every pool at the job's
reference rate, which makes the objective the plain (weighted) chip-time share.
"""

from __future__ import annotations

import numpy as np

from suanli.policies._matrices import (
    aware_throughput,
    chips_of,
    equal_share_rate,
    priority_of,
    runnable,
)
from suanli.policies._pop import solve_max_min
from suanli.policies.base import Allocation, PolicyState
from suanli.policies.registry import register


def normalised_coefficients(state: PolicyState, thr: np.ndarray) -> np.ndarray:
    """[J, P] Gavel's max-min coefficients for a throughput matrix."""
    share = equal_share_rate(thr, state.capacity)
    weight = chips_of(state) / (priority_of(state) * np.where(share > 0, share, np.inf))
    return thr * weight[:, None]


def _solve(state: PolicyState, thr: np.ndarray, label: str) -> Allocation:
    result = solve_max_min(normalised_coefficients(state, thr), chips_of(state), state.capacity)
    note = f"{label}: min normalised share {result.value:.4g}; {result.n_classes} job classes"
    if result.n_parts > 1:
        note += f"; POP over {result.n_parts} parts"
    return Allocation(result.fractions, note=note)


@register("max_min_fairness", aliases=("mmf", "max_min_fairness_agnostic"),
          agnostic=True)
def max_min_fairness(state: PolicyState) -> Allocation:
    """Equal weighted chip-time shares; every pool treated as the same speed."""
    # the reference rate cancels in the normalisation; ones keep equal jobs bit-equal (classes)
    return _solve(state, runnable(state).astype(float), "max_min_fairness")


@register("max_min_fairness_perf", aliases=("mmf_perf",))
def max_min_fairness_perf(state: PolicyState) -> Allocation:
    """Maximise the minimum throughput normalised by each job's equal-share throughput."""
    return _solve(state, aware_throughput(state), "max_min_fairness_perf")

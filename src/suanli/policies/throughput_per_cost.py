"""Most normalised throughput per CNY (Gavel's max_sum_throughput_normalized_by_cost, aware).

Maximise sum_jp x[j, p] * (throughput[j, p] / reference_j) / (price_per_chip_hour[p] * chips_j)
over the usual capacity and time-share constraints, one HiGHS LP (jobs and pools grouped into
classes). A free pool (price 0) is priced at a small floor so it ranks first but stays finite.
"""

from __future__ import annotations

import numpy as np

from suanli.policies._matrices import aware_throughput, chips_of, reference_rate
from suanli.policies._pop import solve_max_linear
from suanli.policies.base import Allocation, PolicyState
from suanli.policies.registry import register


@register("max_throughput_per_cost", aliases=("throughput_per_cost", "min_cost", "cost"),
          placement_aware=True)
def max_throughput_per_cost(state: PolicyState) -> Allocation:
    thr = aware_throughput(state)
    ref = reference_rate(state)
    price = np.asarray(state.price_per_chip_hour, dtype=float)
    positive = price[np.isfinite(price) & (price > 0)]
    floor = 1e-3 * (positive.min() if positive.size else 1.0)
    price = np.where(np.isfinite(price) & (price > floor), price, floor)
    chips = chips_of(state)
    norm = thr / np.where(ref > 0, ref, 1.0)[:, None]
    weight = norm / (price[None, :] * np.maximum(chips, 1.0)[:, None])
    x = solve_max_linear(weight, chips, state.capacity)
    return Allocation(x, note="max_throughput_per_cost")

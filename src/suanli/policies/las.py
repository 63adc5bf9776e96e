"""Least attained service (Tiresias-style), the simple priority form.

Jobs with the least chip-seconds received so far, divided by their priority weight, run first,
each on any pool with room for its gang (pools treated alike, current pool preferred). Unlike
the max-min LP (`max_min_fairness`), it hands out whole pools round by round rather than time
fractions, so it preempts as attained service evens out.
"""

from __future__ import annotations

import numpy as np

from suanli.policies._greedy import place_whole
from suanli.policies._matrices import chips_of, priority_of, runnable
from suanli.policies.base import Allocation, PolicyState
from suanli.policies.registry import register
from suanli.policies.srtf import agnostic_score


@register("las", aliases=("least_attained_service", "tiresias"),
          agnostic=True)
def las(state: PolicyState) -> Allocation:
    ok = runnable(state)
    service = np.asarray(state.attained_service_s, dtype=float) / priority_of(state)
    order = np.lexsort((np.asarray(state.job_ids), np.asarray(state.arrival_s), service))
    x = place_whole(order, agnostic_score(state, ok), chips_of(state), state.capacity)
    return Allocation(x, note="las")

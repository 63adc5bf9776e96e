"""Which chip counts the planner tries: powers of two and whole nodes, within the job's range."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def candidate_counts(min_count: int, max_count: int, chips_per_node: Iterable[int]) -> np.ndarray:
    """Sorted counts in [min_count, max_count]: powers of two, multiples of each node size,
    and the range's two ends (so a fixed count is always tried)."""
    if max_count < min_count:
        return np.zeros(0, dtype=np.int64)
    out: set[int] = {min_count, max_count}
    p = 1
    while p <= max_count:
        if p >= min_count:
            out.add(p)
        p *= 2
    for cpn in set(chips_per_node):
        start = -(-min_count // cpn) * cpn
        out.update(range(start, max_count + 1, cpn))
    return np.array(sorted(out), dtype=np.int64)


def allowed_for_pool(counts: np.ndarray, capacity: np.ndarray, chips_per_node: np.ndarray,
                     min_count: int, max_count: int) -> np.ndarray:
    """[P, C] mask: a count fits the pool and is a power of two, whole nodes, or a range end."""
    c = counts[None, :]
    pow2 = (counts & (counts - 1)) == 0
    ends = (counts == min_count) | (counts == max_count)
    shape = pow2[None, :] | ends[None, :] | (c % chips_per_node[:, None] == 0)
    return shape & (c <= capacity[:, None])

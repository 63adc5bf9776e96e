"""The Pareto front of (finish time, cost): options no other option beats on both."""

from __future__ import annotations

import numpy as np


def pareto_mask(finish_s: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """True where no other point is <= on both axes and < on one (ties are all on the front).

    O(n log n): sort by (finish, cost); a point is dominated iff some point with a strictly
    smaller finish costs no more, or a point with the same finish costs less.
    """
    f = np.asarray(finish_s, dtype=float)
    c = np.asarray(cost, dtype=float)
    n = len(f)
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((c, f))
    fs, cs = f[order], c[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    new_group[1:] = fs[1:] != fs[:-1]
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    group_min = cs[starts]  # sorted by cost within a finish group
    before = np.empty(len(starts))
    before[0] = np.inf
    before[1:] = np.minimum.accumulate(group_min)[:-1]
    dominated = (before[group] <= cs) | (group_min[group] < cs)
    mask = np.empty(n, dtype=bool)
    mask[order] = ~dominated
    return mask


def dominated_by(finish_s: np.ndarray, cost: np.ndarray, front_finish: np.ndarray,
                 front_cost: np.ndarray) -> np.ndarray:
    """True where a point is dominated by some point of another set."""
    f = np.asarray(finish_s, dtype=float)
    c = np.asarray(cost, dtype=float)
    if len(front_finish) == 0:
        return np.zeros(len(f), dtype=bool)
    order = np.lexsort((front_cost, front_finish))
    ff, fc = np.asarray(front_finish)[order], np.asarray(front_cost)[order]
    prefix_min = np.minimum.accumulate(fc)
    # Points of the set with finish <= f: cheapest of them must cost <= c, with one axis strict.
    k_le = np.searchsorted(ff, f, side="right")
    k_lt = np.searchsorted(ff, f, side="left")
    min_le = np.where(k_le > 0, prefix_min[np.maximum(k_le - 1, 0)], np.inf)
    min_lt = np.where(k_lt > 0, prefix_min[np.maximum(k_lt - 1, 0)], np.inf)
    return (min_lt <= c) | (min_le < c)

"""Earliest deadline first with admission control.

A job with a deadline that it cannot meet even alone on its fastest pool (now + remaining work /
best throughput > deadline) is rejected: Allocation.rejected lists it and it gets no time, so it
does not take capacity from jobs that can still make theirs. Admitted deadline jobs run in
deadline order, each on the slowest pool that still meets its deadline (keeping fast pools for
tighter jobs), or the fastest pool with room when none does; jobs without a deadline then
backfill in arrival order on their fastest pool.
"""

from __future__ import annotations

import numpy as np

from suanli.policies._greedy import place_whole, sticky
from suanli.policies._matrices import aware_throughput, chips_of
from suanli.policies.base import Allocation, PolicyState
from suanli.policies.registry import register


def best_finish_s(state: PolicyState, thr: np.ndarray) -> np.ndarray:
    """[J] the earliest finish time on the job's fastest pool (inf where it cannot run)."""
    best = thr.max(axis=1, initial=0.0)
    remaining = np.maximum(np.asarray(state.remaining_work, dtype=float), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(best > 0, state.now_s + remaining / np.where(best > 0, best, 1.0), np.inf)


@register("edf", aliases=("earliest_deadline_first", "deadline"))
def edf(state: PolicyState) -> Allocation:
    thr = aware_throughput(state)
    deadline = np.asarray(state.deadline_s, dtype=float)
    has_deadline = np.isfinite(deadline)
    finish = best_finish_s(state, thr)
    late = has_deadline & (finish > deadline * (1 + 1e-12) + 1e-9)
    job_ids = np.asarray(state.job_ids)
    rejected = frozenset(int(j) for j in job_ids[late])

    remaining = np.maximum(np.asarray(state.remaining_work, dtype=float), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        finish_on = state.now_s + remaining[:, None] / np.where(thr > 0, thr, np.nan)
    meets = (thr > 0) & (finish_on <= deadline[:, None])
    rel = thr / np.maximum(thr.max(axis=1, keepdims=True), 1e-300)
    score = np.where(has_deadline[:, None] & meets, 2.0 + (1.0 - rel), rel)
    score = np.where((thr > 0) & ~late[:, None], score, -np.inf)
    score = sticky(score, state.running_on, bonus=0.01)

    key = np.where(has_deadline, deadline, np.inf)
    order = np.lexsort((job_ids, np.asarray(state.arrival_s, dtype=float), key))
    order = order[~late[order]]
    x = place_whole(order, score, chips_of(state), state.capacity)
    return Allocation(x, rejected=rejected, note=f"edf: {len(rejected)} rejected")

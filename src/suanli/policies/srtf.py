"""Shortest remaining time first, preemptive, with backfilling.

`srtf` (agnostic) estimates remaining time at the job's reference rate and takes any pool with
room; `srtf_perf` estimates it at the job's best rate and takes the fastest pool with room.
A small bonus for the pool a job runs on now avoids migrations between near-equal pools.
"""

from __future__ import annotations

import numpy as np

from suanli.policies._greedy import hashed_preference, place_whole, sticky
from suanli.policies._matrices import aware_throughput, chips_of, reference_rate, runnable
from suanli.policies.base import Allocation, PolicyState
from suanli.policies.registry import register


def remaining_time_order(state: PolicyState, rate: np.ndarray) -> np.ndarray:
    remaining = np.maximum(np.asarray(state.remaining_work, dtype=float), 0.0)
    with np.errstate(divide="ignore"):
        time_s = np.where(rate > 0, remaining / np.where(rate > 0, rate, 1.0), np.inf)
    return np.lexsort((np.asarray(state.job_ids), np.asarray(state.arrival_s), time_s))


def agnostic_score(state: PolicyState, ok: np.ndarray) -> np.ndarray:
    """Any pool alike (a fixed hash spreads jobs), the current pool first."""
    pref = hashed_preference(state.job_ids, state.n_pools)
    if state.running_on is not None:
        on = np.asarray(state.running_on, dtype=int)
        pref = pref + (np.arange(state.n_pools)[None, :] == on[:, None])
    return np.where(ok, pref, -np.inf)


@register("srtf", aliases=("shortest_remaining_time_first",),
          agnostic=True)
def srtf(state: PolicyState) -> Allocation:
    ok = runnable(state)
    rate = np.where(ok.any(axis=1), reference_rate(state), 0.0)
    order = remaining_time_order(state, rate)
    x = place_whole(order, agnostic_score(state, ok), chips_of(state), state.capacity)
    return Allocation(x, note="srtf")


@register("srtf_perf", aliases=("shortest_remaining_time_first_perf",))
def srtf_perf(state: PolicyState) -> Allocation:
    thr = aware_throughput(state)
    order = remaining_time_order(state, thr.max(axis=1, initial=0.0))
    score = sticky(np.where(thr > 0, thr, -np.inf), state.running_on)
    x = place_whole(order, score, chips_of(state), state.capacity)
    return Allocation(x, note="srtf_perf")

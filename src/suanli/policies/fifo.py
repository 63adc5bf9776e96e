"""First in, first out, as Gavel runs it.

`fifo` (agnostic, non-preemptive): running jobs keep their pool; waiting jobs in arrival order
take a pool with room for their gang, picked without regard to speed (Gavel picks at random; a
fixed hash of the job id makes the pick reproducible). The queue stops at the first job that
fits nowhere, so no job overtakes an earlier one.

`fifo_perf` (aware): the allocation is recomputed from scratch; in arrival order each job takes
the pool where it runs fastest among those with room.
"""

from __future__ import annotations

import numpy as np

from suanli.policies._greedy import hashed_preference, place_whole
from suanli.policies._matrices import aware_throughput, chips_of, runnable
from suanli.policies.base import Allocation, PolicyState
from suanli.policies.registry import register


def arrival_order(state: PolicyState) -> np.ndarray:
    return np.lexsort((np.asarray(state.job_ids), np.asarray(state.arrival_s, dtype=float)))


@register("fifo", aliases=("fcfs",),
          agnostic=True, work_conserving=False, head_of_queue=True)
def fifo(state: PolicyState) -> Allocation:
    ok = runnable(state)
    score = np.where(ok, hashed_preference(state.job_ids, state.n_pools), -np.inf)
    fixed = None if state.running_on is None else np.asarray(state.running_on, dtype=int)
    x = place_whole(
        arrival_order(state), score, chips_of(state), state.capacity, strict=True, fixed=fixed
    )
    return Allocation(x, note="fifo")


@register("fifo_perf", aliases=("fcfs_perf",), work_conserving=False, head_of_queue=True)
def fifo_perf(state: PolicyState) -> Allocation:
    thr = aware_throughput(state)
    score = np.where(thr > 0, thr, -np.inf)
    x = place_whole(arrival_order(state), score, chips_of(state), state.capacity, strict=True)
    return Allocation(x, note="fifo_perf")

"""suanli_jct: heterogeneity-aware shortest-remaining-processing-time, with aging.

Why. Average JCT is minimised on one machine by shortest remaining processing time (SRPT);
with gangs, by the smallest remaining chip-time first. Fair policies (max-min, finish-time
fairness) share time among all jobs, so every job finishes late; Gavel's own numbers show
FIFO-perf and max-min-perf close, because neither ranks by remaining work. On heterogeneous
chips "remaining time" depends on where a job runs, and jobs gain unequally from fast chips
(Gavel measured 1.1x-10x between K80 and V100), so which job gets which pool matters as much as
the order.

What. One LP per call (pools with equal columns merged; two pool groups, the common case, by
`_transport`'s exact solver, ~10x faster than HiGHS; more by HiGHS):

    maximise  sum_jp x[j, p] * boost_j * throughput[j, p] / remaining_j
    s.t.      sum_p x[j, p] <= 1,  sum_j chips_j x[j, p] <= capacity[p],  x >= 0.

throughput / remaining is the rate at which the job's remaining work completes on p, i.e.
1 / remaining time there. Under the capacity constraint the LP fills each pool with the jobs of
highest value per chip, which is SRPT by remaining chip-time, and it resolves contention for
fast pools by comparative advantage: a pool goes to the job whose completion rate it raises
most, not to whichever job is shortest. Its optimum is a vertex, so almost every job gets all
or nothing, as SRPT wants. Leftover capacity is then filled greedily (work conservation).

Starvation protection (aging): boost_j = 1 + wait_j / AGING_S, where wait_j is the time since
arrival not spent running; a job waiting longer than STARVATION_S is promoted above every
unstarved job, the longest-waiting first, but only as many as fit in STARVED_SHARE of the
chips. The bound matters under sustained load: promoted jobs are the long ones (short jobs
rarely wait that long), and each one holds its chips for days, so more jobs cross the
threshold while it runs; promoting them all turned SRPT into a days-deep FIFO (Philly on a
cluster it loads to 80%: average JCT 29 h unbounded, 4.7 h with a tenth of the chips, LAS
4.8 h). The price is paid in sustained overload, where most of the queue is starved: on 1,000
Philly jobs that keep 24 chips 95% busy for 1,000 h, 18.7 h instead of 16.4 h. The oldest
starved jobs always get their share, so a long job is delayed, never starved.

For very large inputs (more than MAX_LP_VARIABLES job x pool-group pairs) the LP is replaced
by the greedy on the same values.
"""

from __future__ import annotations

import numpy as np

from suanli.policies._greedy import place_whole, sticky
from suanli.policies._lp import repair
from suanli.policies._matrices import aware_throughput, chips_of, group_columns, priority_of
from suanli.policies._pop import solve_max_linear
from suanli.policies.base import Allocation, PolicyState
from suanli.policies.registry import register

AGING_S = 6 * 3600.0  # a job that has waited this long counts double
STARVATION_S = 72 * 3600.0  # beyond this wait a job outranks every unstarved job
STARVED_BOOST = 1e3
STARVED_SHARE = 0.1  # at most this share of all chips goes to promoted (starved) jobs
DYNAMIC_RANGE = 1e-7  # values below this fraction of the largest are raised to it
MAX_LP_VARIABLES = 4_000


def promoted(wait_s: np.ndarray, chips: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """[J] bool: starved jobs (wait > STARVATION_S), longest wait first, whose gangs together
    fit in STARVED_SHARE of all chips (the longest-waiting one always)."""
    starved = np.flatnonzero(wait_s > STARVATION_S)
    out = np.zeros(wait_s.shape, dtype=bool)
    if starved.size == 0:
        return out
    order = starved[np.argsort(-wait_s[starved], kind="stable")]
    budget = STARVED_SHARE * float(np.sum(capacity))
    within = np.cumsum(chips[order]) <= budget
    within[0] = True
    out[order[within]] = True
    return out


def completion_values(state: PolicyState, thr: np.ndarray) -> np.ndarray:
    """[J, P] boost_j * priority_j * throughput[j, p] / remaining_j (0 where it cannot run)."""
    chips = chips_of(state)
    remaining = np.maximum(np.asarray(state.remaining_work, dtype=float), 0.0)
    tiny = 1e-9 * max(float(remaining.max(initial=0.0)), 1.0)
    received_s = np.asarray(state.attained_service_s, dtype=float) / np.maximum(chips, 1.0)
    wait_s = np.maximum(state.now_s - np.asarray(state.arrival_s, dtype=float) - received_s, 0.0)
    boost = (1.0 + wait_s / AGING_S) * np.where(promoted(wait_s, chips, state.capacity),
                                                 STARVED_BOOST, 1.0)
    value = thr * (boost * priority_of(state) / np.maximum(remaining, tiny))[:, None]
    top = value.max(initial=0.0)
    if top > 0:
        value = np.where(thr > 0, np.maximum(value, DYNAMIC_RANGE * top), 0.0)
    return value


def too_large_for_lp(value: np.ndarray) -> bool:
    """More than MAX_LP_VARIABLES job x pool-group pairs. Pools are only grouped when jobs x
    pools could exceed it: grouping costs as much as the LP's own solve."""
    n_jobs, n_pools = value.shape
    if n_jobs * n_pools <= MAX_LP_VARIABLES:
        return False
    return n_jobs * group_columns(value)[0].size > MAX_LP_VARIABLES


@register("suanli_jct", aliases=("hetero_srpt", "srpt_perf"))
def suanli_jct(state: PolicyState) -> Allocation:
    thr = aware_throughput(state)
    chips = chips_of(state)
    value = completion_values(state, thr)
    score = sticky(np.where(thr > 0, value, -np.inf), state.running_on, bonus=0.02)
    density = value.max(axis=1, initial=0.0) / np.maximum(chips, 1.0)
    order = np.argsort(-density, kind="stable")
    if too_large_for_lp(value):
        x = place_whole(order, score, chips, state.capacity)
        return Allocation(x, note="suanli_jct greedy")
    x = solve_max_linear(value, chips, state.capacity, transport=True)
    # work conservation: jobs the LP left out take whole leftover gangs, best value first
    free = np.asarray(state.capacity, dtype=float) - chips @ x
    idle = x.sum(axis=1) < 1e-9
    if idle.any() and free.max(initial=0.0) >= chips[idle].min():
        fill = place_whole(order[idle[order]], score, chips, np.maximum(free, 0.0))
        x = x + fill
    return Allocation(repair(x, chips, state.capacity), note="suanli_jct")

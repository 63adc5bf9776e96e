"""elastic_jct: choose each job's chip count and chip type together, for average JCT.

Why. A fixed-count policy can only order jobs; an elastic job (a `count: {min, max}` range)
can also be made wider when chips are idle and narrower when others wait. Speed grows
sub-linearly with count (measured per job type in Gavel's table, an Amdahl curve or the
performance model elsewhere), so a chip is worth most to a job running narrow: under load the
best use of a pool is many narrow jobs, when it is quiet a few wide ones. Pollux (OSDI 2021)
and Sia (SOSP 2023) gain most of their JCT over Gavel this way, choosing count and chip type
in one decision because a job's scaling differs by chip.

What. suanli_jct's objective (each job's completion rate, throughput / remaining work, with
the same aging), over options (count c, pool p) instead of pools alone; one LP per call:

    maximise  sum_jcp x[j, c, p] * boost_j * throughput[j, c, p] / remaining_j
    s.t.      sum_cp x[j, c, p] <= 1                       (one job, one share of time)
              sum_jc c * x[j, c, p] <= capacity[p]          (chips, whatever the count)

The value of a chip at count c is throughput(c) / c / remaining: sub-linear scaling makes
narrow options denser, so capacity pressure shrinks jobs and slack grows them, and the LP
gives a fast chip to the job whose completion rate it raises most (comparative advantage).
Identical jobs are grouped into one class and identical pools into one group, as in
`_lp.py`, so a few thousand jobs stay a few thousand rows.

The engine runs one count at a time, and time-sharing a gang costs a checkpoint/restore at
every switch, so the LP's shares become space shares: an elastic job whose share is worth at
least c chips full time (sum over c, p of c x[j, c, p] >= c) runs the largest such count all
the time; by sub-linear scaling, thr(c) >= f thr(c / f), so this is never slower than the LP's
time share f of a wider gang, and it does not thrash. Other jobs take the count that holds
most of their fractions (ties keep the current count). A job the LP leaves out waits at its
smallest count and takes leftover chips greedily (work conservation). Beyond MAX_LP_VARIABLES
options the LP is replaced by a greedy on the same values: every job its densest option, then
widened while chips are left.

Hysteresis. Re-sizing a running job checkpoints and restores it. An option at another count
than a running job's current one is valued at the job's completion rate with the restore
paid, 1 / (remaining / throughput + restore_s), and then RESIZE_MARGIN lower: a job is
widened only when it finishes sooner after paying the restore, by more than the margin, and
narrowed only when the chips it frees are worth that much more to others. A near-tie never
causes a resize.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from suanli.policies._greedy import place_whole
from suanli.policies._lp import INF, repair, solve_lp
from suanli.policies._matrices import group_columns, group_rows
from suanli.policies.base import Allocation, ElasticOptions, PolicyState
from suanli.policies.registry import register
from suanli.policies.suanli_jct import completion_values

RESIZE_MARGIN = 0.05  # a resize must be worth 5% more than staying, after paying the restore
MAX_LP_VARIABLES = 40_000  # (job class, count, pool group) options; beyond this, greedy
EPS = 1e-6


def options_of(state: PolicyState) -> ElasticOptions:
    """The state's elastic options, or each job's current count as its one option."""
    if state.elastic is not None:
        return state.elastic
    J, P = state.n_jobs, state.n_pools
    thr = np.asarray(state.throughput, dtype=float).reshape(J, P)
    return ElasticOptions(counts=np.asarray(state.num_chips, dtype=np.int64).reshape(J, 1),
                          throughput=thr[:, None, :], restore_s=np.zeros(J),
                          elastic=np.zeros(J, dtype=bool))


def option_values(state: PolicyState, opts: ElasticOptions) -> np.ndarray:
    """[J, C, P] boosted completion rate of each (count, pool) option, 0 where the gang does
    not fit the pool or cannot run there, with the resize penalty (module doc)."""
    cap = np.asarray(state.capacity, dtype=float)
    counts = opts.counts
    fits = (counts[:, :, None] > 0) & (counts[:, :, None] <= cap[None, None, :])
    thr = np.where(fits, opts.throughput, 0.0)
    value = np.stack([completion_values(state, thr[:, c, :]) for c in range(counts.shape[1])],
                     axis=1)
    return resize_penalty(state, opts, thr, value)


def resize_penalty(state: PolicyState, opts: ElasticOptions, thr: np.ndarray,
                   value: np.ndarray) -> np.ndarray:
    """A running job's options at another count, valued with the restore paid, less the margin."""
    if state.running_on is None:
        return value
    running = np.asarray(state.running_on) >= 0
    current = opts.counts == np.asarray(state.num_chips)[:, None]
    other = running[:, None] & ~current & (opts.counts > 0)
    if not other.any():
        return value
    remaining = np.maximum(np.asarray(state.remaining_work, dtype=float), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        run_s = remaining[:, None, None] / np.where(thr > 0, thr, np.nan)
        factor = run_s / (run_s + opts.restore_s[:, None, None]) * (1.0 - RESIZE_MARGIN)
    factor = np.where(np.isfinite(factor), factor, 1.0 - RESIZE_MARGIN)
    return np.where(other[:, :, None] & (thr > 0), value * factor, value)


def solve_options(value: np.ndarray, counts: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """x [J, C, P] maximising the value over the LP of the module doc (classes and groups)."""
    J, C, P = value.shape
    cap = np.asarray(capacity, dtype=float)
    x = np.zeros((J, C, P))
    active = np.flatnonzero(value.reshape(J, -1).max(axis=1, initial=0.0) > 0)
    if active.size == 0:
        return x
    v = value[active] / value[active].max()
    rep, job_class = group_rows(np.column_stack([counts[active], v.reshape(active.size, -1)]))
    col_rep, pool_group = group_columns(v[rep].reshape(-1, P))
    n_class = np.bincount(job_class, minlength=rep.size).astype(float)
    cap_g = np.bincount(pool_group, weights=cap, minlength=col_rep.size)
    largest_g = np.zeros(col_rep.size)
    np.maximum.at(largest_g, pool_group, cap)
    v_kcg = v[rep][:, :, col_rep]
    counts_k = counts[active][rep]
    keep = (v_kcg > 0) & (counts_k[:, :, None] <= largest_g[None, None, :]) & (cap_g > 0)
    kk, cc, gg = np.nonzero(keep)
    n_k, n_g, n_v = rep.size, col_rep.size, kk.size
    var = np.arange(n_v)
    a = sp.csc_matrix(
        (np.concatenate([np.ones(n_v), counts_k[kk, cc] * n_class[kk] / cap_g[gg]]),
         (np.concatenate([kk, n_k + gg]), np.concatenate([var, var]))),
        shape=(n_k + n_g, n_v))
    _, sol, ok = solve_lp(v_kcg[kk, cc, gg] * n_class[kk], a, np.full(n_k + n_g, -INF),
                          np.ones(n_k + n_g), np.zeros(n_v), np.ones(n_v), maximize=True)
    if not ok:
        return x
    s = np.zeros((n_k, C, n_g))
    s[kk, cc, gg] = sol
    share = np.where(cap_g[pool_group] > 0, cap / np.maximum(cap_g[pool_group], 1e-300), 0.0)
    x[active] = s[job_class][:, :, pool_group] * share[None, None, :]
    return x


def greedy_options(value: np.ndarray, counts: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """x [J, C, P] in {0, 1}: in order of best value per chip, every job takes its densest
    option with room; then placed jobs widen on their pool while chips are left and the extra
    chips add value."""
    J, C, P = value.shape
    x = np.zeros((J, C, P))
    free = np.asarray(capacity, dtype=float).copy()
    per_chip = value / np.maximum(counts, 1)[:, :, None]
    order = np.argsort(-per_chip.reshape(J, -1).max(axis=1, initial=0.0), kind="stable")
    placed: list[tuple[int, int, int]] = []
    for j in order.tolist():
        room = (counts[j][:, None] <= free[None, :]) & (value[j] > 0)
        if not room.any():
            continue
        c, p = np.unravel_index(int(np.argmax(np.where(room, per_chip[j], -1.0))), (C, P))
        x[j, c, p] = 1.0
        free[p] -= counts[j, c]
        placed.append((j, int(c), int(p)))
    for j, c, p in placed:
        extra = counts[j] - counts[j, c]
        gain = value[j, :, p] - value[j, c, p]
        ok = (extra > 0) & (extra <= free[p]) & (gain > 0)
        if ok.any():
            c2 = int(np.argmax(np.where(ok, gain, -1.0)))
            x[j, c, p], x[j, c2, p] = 0.0, 1.0
            free[p] -= extra[c2]
    return x


def pick_counts(x: np.ndarray, opts: ElasticOptions, current: np.ndarray) -> np.ndarray:
    """[J] index of the count holding most of each job's fractions (ties: the current one)."""
    mass = x.sum(axis=2)
    best = np.argmax(mass, axis=1)
    cur = np.argmax(opts.counts == current[:, None], axis=1)
    rows = np.arange(len(best))
    keep = mass[rows, cur] >= mass[rows, best] - EPS
    return np.where(keep, cur, best)


def space_share(x: np.ndarray, opts: ElasticOptions, current: np.ndarray, cap: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """One count per job and its fractions [J, P] (module doc: time-sharing to space-sharing).

    An elastic job whose LP share, on the pools a count fits, is worth at least that count
    full time runs the largest such count all the time, on those pools in proportion to its
    chip-time there; other jobs take the count holding most of their fractions, and those
    fractions. Only pools the count fits count: chip-time on a smaller pool (earned at a
    smaller count) cannot host the wider gang.
    """
    rows = np.arange(x.shape[0])
    c_idx = pick_counts(x, opts, current)
    fractions = x[rows, c_idx, :]
    chip_share = np.einsum("jc,jcp->jp", opts.counts.astype(float), x)
    fits = opts.counts[:, :, None] <= np.asarray(cap, dtype=float)[None, None, :]
    fit_share = np.where(fits, chip_share[:, None, :], 0.0)  # [J, C, P]
    total = fit_share.sum(axis=2)
    full_time = (opts.counts > 0) & (opts.counts <= total * (1 + EPS))
    widest = np.argmax(np.where(full_time, opts.counts, 0), axis=1)
    spread = opts.elastic & full_time.any(axis=1)
    c_idx = np.where(spread, widest, c_idx)
    on = fit_share[rows, widest, :]
    shares = on / np.maximum(on.sum(axis=1), 1e-300)[:, None]
    return c_idx, np.where(spread[:, None], shares, fractions)


@register("elastic_jct", aliases=("elastic", "elastic_srpt"), elastic=True)
def elastic_jct(state: PolicyState) -> Allocation:
    opts = options_of(state)
    J, P = state.n_jobs, state.n_pools
    if J == 0:
        return Allocation(np.zeros((0, P)), num_chips=np.zeros(0, dtype=np.int64))
    cap = np.asarray(state.capacity, dtype=float)
    current = np.asarray(state.num_chips, dtype=np.int64)
    value = option_values(state, opts)
    n_groups = group_columns(value.reshape(-1, P))[0].size
    n_options = int((opts.counts > 0).sum()) * n_groups
    greedy = n_options > MAX_LP_VARIABLES
    x = (greedy_options if greedy else solve_options)(value, opts.counts, cap)
    rows = np.arange(J)
    c_idx, fractions = space_share(x, opts, current, cap)
    got = x.sum(axis=(1, 2)) > EPS
    # A job left out waits at its smallest count, the first to fit chips that free up.
    running = (np.asarray(state.running_on) >= 0 if state.running_on is not None
               else np.zeros(J, dtype=bool))
    c_idx = np.where(got | ~opts.elastic | running, c_idx, 0)
    chips = opts.counts[rows, c_idx].astype(float)
    fractions = np.where(got[:, None], fractions, 0.0)
    fractions = fractions + _fill_leftover(value[rows, c_idx, :], chips, cap, fractions, got)
    chosen = np.where(opts.elastic, opts.counts[rows, c_idx], 0)
    note = "elastic_jct greedy" if greedy else "elastic_jct"
    return Allocation(repair(fractions, chips, cap), note=note, num_chips=chosen)


def _fill_leftover(value: np.ndarray, chips: np.ndarray, cap: np.ndarray, fractions: np.ndarray,
                   got: np.ndarray) -> np.ndarray:
    """Whole leftover gangs for the jobs the allocation left out, best value per chip first."""
    free = np.maximum(cap - chips @ fractions, 0.0)
    idle = ~got & (value.max(axis=1, initial=0.0) > 0)
    if not idle.any() or free.max(initial=0.0) < chips[idle].min():
        return np.zeros_like(fractions)
    density = value.max(axis=1, initial=0.0) / np.maximum(chips, 1.0)
    order = np.argsort(-density, kind="stable")
    score = np.where(value > 0, value, -np.inf)
    return place_whole(order[idle[order]], score, chips, free)

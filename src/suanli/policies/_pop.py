"""Partitioned LPs (POP) for allocations over thousands of distinct jobs.

Why. `_lp.max_min` / `_lp.max_linear` are fast because identical jobs and pools collapse into
classes. With distinct jobs nothing collapses: 1,000 jobs x 100 pools is a 100,000-column LP
and HiGHS's dual simplex stalls on it (max-min LPs are highly degenerate; ~40 s), 10,000 jobs
is out of reach. POP (Narayanan et al., "Solving Large-Scale Granular Resource Allocation
Problems Efficiently with POP", SOSP 2021) observes that such problems are *granular*: many
small jobs, each a small part of the whole. Splitting the jobs at random into k parts and giving
every part 1/k of every pool's capacity yields k replicas of the problem at 1/k scale, each with
the same mix of jobs and chips (so every part still sees every chip type), whose optima are
close to the full optimum; the union of their solutions is feasible for the full problem.

How, here:

1. `n_parts`: solve the exact full LP when grouping leaves few class x pool-group pairs
   (`MAX_FULL_VARIABLES`; Gavel-style traces and the engine's common case, bit-equal to
   before), else k = ceil(active jobs / `JOBS_PER_PART`).
2. `split_jobs`: jobs ordered by gang size and best coefficient, dealt round-robin, so every part
   gets the same spread of gangs and of needs (and identical jobs are spread, not stacked).
3. `candidate_pools`: a part keeps, per job, only the `CANDIDATE_POOLS` pools where the job is
   cheapest to serve under pool prices read from the duals of a small pilot LP (a random sample
   of `PILOT_JOBS` jobs with the same share of capacity), plus its fastest pools. At an optimum a
   job only uses pools of least reduced cost, so little is lost, and the part's LP shrinks from
   jobs x pools to jobs x 10 columns, which HiGHS solves in milliseconds.
4. Max-min parts share one level (`_LevelSolver`): the first part's max-min, then each part is
   one LP with every job held at that level, maximising total utility (`part_max_min`). A part
   that misses the level gets its own max-min, warm from the failed LP's basis, and lowers the
   level; POP's minimum is its worst part's anyway. Parts run in order, one after another:
   highspy's `run()` holds the GIL, so threads would not overlap. Linear parts: `_lp.max_linear`.
5. `fill_leftover`: capacity one part could not use is offered to jobs with time left, in
   proportion to their coefficients; it only raises utilities. `repair` then clips round-off.

Gangs. The LP's unknowns are time fractions: x[j, p] = 0.1 means the job's whole gang runs on
the pool 10% of the time. A part's share C_p / k of a pool is a share of the pool's chip-time,
not a set of chips, so a gang of 8 may take x <= (C_p / k) / 8 of it even when C_p / k < 8: it
runs on 8 whole chips for that fraction of the round. The parts' chip-time sums to at most C_p,
exactly the full LP's capacity constraint, and a job only gets a pool its whole gang fits
(chips <= C_p, enforced here), so the combined allocation is as schedulable as the full LP's.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from suanli.policies._lp import (
    INF,
    efficiency_pass,
    max_linear,
    max_min,
    max_min_columns,
    repair,
    solve_lp,
    utility,
)

MAX_FULL_VARIABLES = 20_000  # class x pool-group pairs up to which the exact full LP is solved
JOBS_PER_PART = 200  # jobs per part: ~10 ms a part with candidate pools
CANDIDATE_POOLS = 6  # pools kept per job in a part: by pilot price,
ADVANTAGE_POOLS = 4  # by comparative advantage,
FASTEST_POOLS = 2  # and by raw coefficient (see candidate_pools)
PILOT_JOBS = 50  # jobs in the pricing pilot LP: 100 cost 3x as long (~80 ms), priced no better
LEVEL_MARGIN = 1e-6  # relative slack on the common level, for round-off (see _LevelSolver)
# HiGHS options, measured on 10,000 distinct jobs x 100 pools (k = 50). The pilot LP is
# degenerate: primal simplex solves it ~2x faster than dual, and any prices will do.
PILOT_OPTIONS = {"simplex_strategy": 4, "presolve": "off"}
# A part's level LP: presolve finds little to remove (-20% off), devex pricing (-7%).
PART_OPTIONS = {"presolve": "off", "simplex_dual_edge_weight_strategy": 1}


@dataclass(frozen=True)
class MaxMinSolution:
    fractions: np.ndarray  # [J, P]
    value: float  # the minimum utility over jobs that can run (0 if none)
    n_classes: int  # job classes after grouping (distinct jobs: = active jobs)
    n_pool_groups: int
    n_parts: int  # 1: the exact full LP; k > 1: POP with k parts


@dataclass(frozen=True)
class LpArrays:
    """One LP in `_lp.solve_lp`'s arguments, with the (job, pool) of each x column."""

    cost: np.ndarray
    a: sp.csc_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    job: np.ndarray
    pool: np.ndarray


def _usable(coef: np.ndarray, chips: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Coefficients zeroed where not finite/positive or where the job's gang exceeds the pool."""
    coef = np.asarray(coef, dtype=float)
    fits = np.asarray(chips, dtype=float)[:, None] <= np.asarray(capacity, dtype=float)[None, :]
    return np.where(np.isfinite(coef) & (coef > 0) & fits, coef, 0.0)


def problem_size(coef: np.ndarray, chips: np.ndarray) -> tuple[int, int, int]:
    """(job classes, pool groups, their product) as `_lp.max_min` would group them.

    Rows and columns are told apart by a fixed random projection, O(J P) instead of sorting
    whole rows: only used to choose between the exact LP and POP (and to report).
    """
    active = coef.max(axis=1, initial=0.0) > 0
    if not active.any():
        return 0, 0, 0
    c = coef[active] / coef[active].max()
    rng = np.random.default_rng(0)
    row_key = c @ rng.uniform(1.0, 2.0, c.shape[1]) + chips[active] * np.pi
    col_key = rng.uniform(1.0, 2.0, c.shape[0]) @ c
    n_classes, n_groups = np.unique(row_key).size, np.unique(col_key).size
    return n_classes, n_groups, n_classes * n_groups


def n_parts(coef: np.ndarray, chips: np.ndarray, n_active: int) -> int:
    """1 (exact LP) when grouping leaves a small LP, else enough parts of ~JOBS_PER_PART jobs."""
    return _parts_and_size(coef, chips, n_active)[0]


def _parts_and_size(
    coef: np.ndarray, chips: np.ndarray, n_active: int
) -> tuple[int, tuple[int, int, int] | None]:
    """`n_parts` and the `problem_size` it measured (None if it did not), so that POP, which
    reports the size, does not pay for it twice (~30 ms on 10,000 x 100).

    Too few jobs to split is decided first: `problem_size` costs as much as a small LP, and
    the engine's common case (a few hundred jobs, every reallocation) never partitions."""
    if n_active < 2 * JOBS_PER_PART:
        return 1, None
    size = problem_size(coef, chips)
    return (1 if size[2] <= MAX_FULL_VARIABLES else -(-n_active // JOBS_PER_PART)), size


def split_jobs(coef: np.ndarray, chips: np.ndarray, k: int) -> list[np.ndarray]:
    """k parts of the jobs that can run, each with the same spread of gang sizes and needs."""
    best = coef.max(axis=1, initial=0.0)
    active = np.flatnonzero(best > 0)
    order = active[np.lexsort((best[active], chips[active]))]
    return [order[i::k] for i in range(k)]


def max_min_lp(coef: np.ndarray, chips: np.ndarray, cap: np.ndarray) -> LpArrays:
    """`_lp.max_min`'s first LP without grouping: columns x[j, p] for coef > 0, then t.

    Rows: [0, J) t - sum_p c x <= 0 (t only for jobs that can run), [J, 2J) sum_p x <= 1,
    [2J, 2J + P) sum_j chips x / cap <= 1.
    Built here because POP wants its duals (pool prices) and the benchmark its reference optimum.
    """
    j, p = np.nonzero(coef > 0)
    n_j, n_p, n_v = coef.shape[0], coef.shape[1], j.size
    safe_cap = np.where(cap > 0, cap, 1.0)
    active = np.flatnonzero(coef.max(axis=1, initial=0.0) > 0)  # jobs in the minimum
    start, index, value = max_min_columns(j, p, coef[j, p], chips[j] / safe_cap[p], n_j, active)
    a = sp.csc_matrix((value, index, start), shape=(2 * n_j + n_p, n_v + 1))
    upper = np.concatenate([np.zeros(n_j), np.ones(n_j + n_p)])
    cost = np.zeros(n_v + 1)
    cost[n_v] = 1.0
    return LpArrays(cost, a, np.full(upper.size, -INF), upper, np.zeros(n_v + 1),
                    np.full(n_v + 1, INF), j, p)  # x <= 1 by its row, so its dual prices it


def max_min_duals(
    coef: np.ndarray, chips: np.ndarray, cap: np.ndarray, options: dict | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """(optimal t, price per chip of each pool [P], price of each job's time [J]): `max_min_lp`."""
    n_j, n_p = coef.shape
    if not (coef > 0).any():
        return 0.0, np.zeros(n_p), np.zeros(n_j)
    lp = max_min_lp(coef, chips, cap)
    h, x, _ = solve_lp(lp.cost, lp.a, lp.row_lower, lp.row_upper, lp.col_lower, lp.col_upper,
                       maximize=True, options=options)
    dual = np.abs(np.asarray(h.getSolution().row_dual, dtype=float))
    safe_cap = np.where(cap > 0, cap, 1.0)
    return float(x[-1]), dual[2 * n_j:] / safe_cap, dual[n_j:2 * n_j]


def max_min_upper_bound(
    coef: np.ndarray, chips: np.ndarray, cap: np.ndarray, y: np.ndarray, z: np.ndarray
) -> float:
    """A bound no allocation's minimum utility can beat, from any prices y >= 0, z >= 0 (duality).

    Serving job j one unit of utility on pool p costs (chips_j y_p + z_j) / c[j, p]; at its
    cheapest pool, w_j. Every job at utility t costs t sum_j w_j, which cannot exceed the value
    of everything, sum_p cap_p y_p + sum_j z_j. So t <= that ratio, whatever the prices.
    """
    active = coef.max(axis=1, initial=0.0) > 0
    c, z = coef[active], z[active]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(c > 0, (chips[active, None] * y[None, :] + z[:, None]) / c, np.inf).min(axis=1)
    total = w.sum()
    return float((cap @ y + z.sum()) / total) if total > 0 else float("inf")


def candidate_pools(coef: np.ndarray, chips: np.ndarray, price: np.ndarray) -> np.ndarray:
    """[J, P] bool: per job, the pools of most utility per price (CANDIDATE_POOLS), per mean
    pool value (ADVANTAGE_POOLS; the price when the pilot's duals are degenerate) and of most
    utility (FASTEST_POOLS). Step 3 of the module docstring."""
    n_jobs, n_pools = coef.shape
    if n_pools <= CANDIDATE_POOLS + ADVANTAGE_POOLS + FASTEST_POOLS:
        return coef > 0
    keep = np.zeros((n_jobs, n_pools), dtype=bool)
    rows = np.arange(n_jobs)[:, None]
    for key, n in ((coef / _floored(price), CANDIDATE_POOLS),
                   (coef / _floored(column_price(coef, chips)), ADVANTAGE_POOLS),
                   (coef, FASTEST_POOLS)):
        if n > 0:
            keep[rows, np.argpartition(-key, n, axis=1)[:, :n]] = True
    return keep & (coef > 0)


def _floored(price: np.ndarray) -> np.ndarray:
    top = price.max(initial=0.0)
    return np.maximum(price, 1e-6 * top) if top > 0 else np.ones_like(price)


def pilot_price(coef: np.ndarray, chips: np.ndarray, cap: np.ndarray, k: int) -> np.ndarray:
    """[J, P] chips_j y_p + z: the duals of a pilot max-min LP on PILOT_JOBS random jobs with
    their share of every pool, as the price of serving each job on each pool."""
    active = np.flatnonzero(coef.max(axis=1, initial=0.0) > 0)
    if active.size == 0:
        return np.ones(coef.shape)
    sample = np.random.default_rng(0).choice(active, min(PILOT_JOBS, active.size), replace=False)
    _, y, z = max_min_duals(coef[sample], chips[sample], cap * sample.size / active.size,
                            options=PILOT_OPTIONS)
    return chips[:, None] * y[None, :] + float(np.median(z))


def column_price(weight: np.ndarray, chips: np.ndarray) -> np.ndarray:
    """[J, P] chips_j times the pool's mean weight: comparative advantage, for linear objectives."""
    if weight.shape[0] == 0:
        return np.zeros(weight.shape)
    return chips[:, None] * weight.mean(axis=0)[None, :]


def part_max_min(
    coef: np.ndarray, chips: np.ndarray, cap: np.ndarray, level: float | None = None
) -> tuple[np.ndarray, float]:
    """(allocation, minimum utility reached) of one part: every job at >= `level` with most total
    utility, or, when the level cannot be met, the part's max-min, then most total utility at
    it. Returns `level` itself when it was met. `level=None`: the part's own max-min.

    One HiGHS model, `max_min_lp` with t fixed at the level: meeting the level costs one LP
    without max-min's degenerate t column, and a miss is repaired warm from the failed solve's
    basis by freeing t (~5 ms) instead of a cold max-min LP (~40 ms), then the efficiency pass
    (warm, a few iterations). A part's own max-min starts the same way from a level no
    allocation beats, min over jobs of their best coefficient: ~2x faster than a cold solve,
    and if that level is met it is the optimum."""
    best = coef.max(axis=1, initial=0.0)
    if not (best > 0).any():
        return np.zeros(coef.shape), 0.0
    level = float(best[best > 0].min()) if level is None else level
    scale = coef.max()
    lp = max_min_lp(coef / scale, chips, cap)
    n_v = lp.job.size
    utility_cost = np.append(coef[lp.job, lp.pool] / scale, 0.0)
    col_lower, col_upper = lp.col_lower.copy(), lp.col_upper.copy()
    col_lower[n_v] = col_upper[n_v] = level / scale
    h, sol, ok = solve_lp(utility_cost, lp.a, lp.row_lower, lp.row_upper, col_lower, col_upper,
                          maximize=True, options=PART_OPTIONS)
    if ok:
        return _part_fractions(coef.shape, lp, sol), level
    h.changeColBounds(n_v, 0.0, INF)
    h.changeColsCost(n_v + 1, np.arange(n_v + 1, dtype=np.int32), lp.cost)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return np.zeros(coef.shape), 0.0
    sol = np.asarray(h.getSolution().col_value, dtype=float)
    t_scaled = float(sol[n_v])
    if t_scaled > 0:
        sol = efficiency_pass(h, n_v, t_scaled, utility_cost, sol)
    return _part_fractions(coef.shape, lp, sol), t_scaled * scale


def _part_fractions(shape: tuple[int, int], lp: LpArrays, sol: np.ndarray) -> np.ndarray:
    x = np.zeros(shape)
    x[lp.job, lp.pool] = sol[:lp.job.size]
    return x


def fill_leftover(
    x: np.ndarray, coef: np.ndarray, chips: np.ndarray, cap: np.ndarray
) -> np.ndarray:
    """Offer unused chip-time to jobs with time left, spread by coefficient; never lowers a job."""
    free = cap - chips @ x
    pools = np.flatnonzero(free > 1e-9 * np.maximum(cap, 1.0))
    jobs = np.flatnonzero(x.sum(axis=1) < 1.0 - 1e-9)
    if pools.size == 0 or jobs.size == 0:
        return x
    slack = 1.0 - x[jobs].sum(axis=1)
    open_ = coef[np.ix_(jobs, pools)]
    total = open_.sum(axis=1)
    want = open_ * np.where(total > 0, slack / np.where(total > 0, total, 1.0), 0.0)[:, None]
    used = chips[jobs] @ want
    room = free[pools]
    scale = np.where(used > room, room / np.where(used > 0, used, 1.0), 1.0)
    x = x.copy()
    x[np.ix_(jobs, pools)] += want * scale[None, :]
    return x


class _LevelSolver:
    """Max-min parts after the first at the level the first reached (`part_max_min`); a part
    that cannot meet it gets its own max-min and lowers the level to its minimum. POP's
    minimum is its worst part's anyway, so a common level loses nothing, and in a random order
    of parts only ~ln(k) of them set a new lowest level."""

    def __init__(self) -> None:
        self.level: float | None = None

    def __call__(self, coef: np.ndarray, chips: np.ndarray, cap: np.ndarray) -> np.ndarray:
        level = self.level if self.level is not None and self.level > 0 else None
        x, reached = part_max_min(coef, chips, cap, level)
        if level is None or reached < level:  # the part's own max-min: a new lowest level
            lowered = reached * (1 - LEVEL_MARGIN)
            self.level = lowered if self.level is None else min(self.level, lowered)
        return x


def _partitioned(coef, chips, cap, k, price, solve_part) -> np.ndarray:
    """Solve each part with 1/k of every pool, candidate pools only, and combine."""
    parts = split_jobs(coef, chips, k)
    sparse = np.where(candidate_pools(coef, chips, price), coef, 0.0)
    x = np.zeros(coef.shape)
    for part in parts:
        x[part] = solve_part(sparse[part], chips[part], cap / k)
    # fill_leftover only offers capacity left free and time left, so round-off in x (which
    # `repair` clips) never grows; one repair at the end (a pass over J x P costs ~5-30 ms)
    return repair(fill_leftover(x, coef, chips, cap), chips, cap)


def solve_max_min(
    coef: np.ndarray, chips: np.ndarray, capacity: np.ndarray, *, parts: int | None = None
) -> MaxMinSolution:
    """Max-min utility allocation: the exact LP when small, POP over `parts` parts when not.

    `parts` overrides the automatic choice (1 = exact full LP).
    """
    chips = np.asarray(chips, dtype=float)
    cap = np.asarray(capacity, dtype=float)
    coef = _usable(coef, chips, cap)
    active = coef.max(axis=1, initial=0.0) > 0
    k, size = _parts_and_size(coef, chips, int(active.sum())) if parts is None else (
        max(int(parts), 1), None)
    if k == 1:
        r = max_min(coef, chips, cap)
        return MaxMinSolution(r.fractions, r.value, r.n_classes, r.n_pool_groups, 1)
    n_classes, n_groups, _ = size or problem_size(coef, chips)
    price = pilot_price(coef, chips, cap, k)
    x = _partitioned(coef, chips, cap, k, price, _LevelSolver())
    util = utility(coef, x)
    value = float(util[active].min()) if active.any() else 0.0
    return MaxMinSolution(x, value, n_classes, n_groups, k)


def solve_max_linear(
    weight: np.ndarray, chips: np.ndarray, capacity: np.ndarray, *, parts: int | None = None,
    transport: bool = False,
) -> np.ndarray:
    """Max total weight allocation: the exact LP when small, POP over `parts` parts when not.

    `transport`: the exact LP over two pool groups by `_lp.max_linear`'s transportation
    solver (opt-in: on ties it may pick another optimum than HiGHS)."""
    chips = np.asarray(chips, dtype=float)
    cap = np.asarray(capacity, dtype=float)
    weight = _usable(weight, chips, cap)
    n_active = int(np.count_nonzero(weight.max(axis=1, initial=0.0) > 0))
    k = n_parts(weight, chips, n_active) if parts is None else max(int(parts), 1)
    if k == 1:
        return max_linear(weight, chips, cap, transport=transport)
    return _partitioned(weight, chips, cap, k, column_price(weight, chips), max_linear)

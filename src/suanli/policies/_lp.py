"""HiGHS linear programs behind the LP policies, with jobs and pools grouped into classes.

Max-min over time fractions (Gavel's formulation):

    maximise t  s.t.  sum_p c[j, p] x[j, p] >= t   for every job j that can run somewhere
                      sum_p x[j, p] <= 1,  sum_j chips[j] x[j, p] <= capacity[p],  x >= 0,
                      x[j, p] = 0 where c[j, p] == 0.

Speed comes from symmetry, not from a faster solver. Jobs with the same coefficient row and gang
size are interchangeable: averaging any optimal solution over such a class keeps it feasible and
keeps the minimum (the objective is concave and the constraints symmetric), so one variable per
class and pool, shared evenly by the class's jobs, loses nothing. Pools whose columns are equal
(same accelerator, same eligibility) merge the same way, their class fractions split in
proportion to capacity. Gavel's traces have ~26 job types x 4 gang sizes; a network has a handful
of accelerator kinds, so 10,000 jobs x 100 pools becomes a few hundred variables.

A simplex optimum of max-min is a vertex that may leave capacity idle once the minimum is met.
A second pass (warm-started) keeps every job at or above the optimal minimum and maximises the
total utility, so leftover capacity is used (Gavel's interior-point solver spreads it instead).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from suanli.policies._matrices import group_columns, group_rows
from suanli.policies._transport import solve_two_sinks
from suanli.quiet import create_quietly

INF = highspy.kHighsInf
_THREAD = threading.local()


@dataclass
class MaxMinResult:
    fractions: np.ndarray  # [J, P]
    value: float  # the optimal minimum utility (0 if no job can run)
    n_classes: int
    n_pool_groups: int


def _new_highs() -> highspy.Highs:
    h = create_quietly("highs", highspy.Highs)  # highspy >= 1.16 prints a banner at creation
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    return h


def _solver() -> highspy.Highs:
    """This thread's HiGHS instance, reset (creating one costs as much as a small solve).
    `passModel` drops the previous model, basis and solution, so each solve starts cold."""
    h = _THREAD.__dict__.get("highs")
    if h is None:
        h = _THREAD.highs = _new_highs()
    h.setOptionValue("simplex_strategy", 1)  # the default; the efficiency pass changes it
    return h


def solve_lp(
    cost: np.ndarray,
    a_matrix: sp.spmatrix,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    col_lower: np.ndarray,
    col_upper: np.ndarray,
    *,
    maximize: bool = False,
    options: dict[str, object] | None = None,
) -> tuple[highspy.Highs, np.ndarray, bool]:
    """Solve one LP with HiGHS; returns the solver (for warm re-solves, until the next solve on
    this thread: the instance is reused), x and optimality.

    `options` are HiGHS options set before the run (e.g. {"solver": "ipm"}); none by default
    (a solve with options gets its own instance, so they never leak into the next solve).
    """
    a = sp.csc_matrix(a_matrix)
    return _solve_csc(cost, (a.indptr, a.indices, a.data), int(a.shape[0]), row_lower,
                      row_upper, col_lower, col_upper, maximize=maximize, options=options)


def _solve_csc(
    cost: np.ndarray,
    csc: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_rows: int,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    col_lower: np.ndarray,
    col_upper: np.ndarray,
    *,
    maximize: bool = False,
    options: dict[str, object] | None = None,
) -> tuple[highspy.Highs, np.ndarray, bool]:
    """`solve_lp` on a column-wise matrix given as (start, index, value) arrays."""
    start, index, value = csc
    lp = highspy.HighsLp()
    lp.num_col_ = len(start) - 1
    lp.num_row_ = n_rows
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lp.col_lower_ = np.asarray(col_lower, dtype=float)
    lp.col_upper_ = np.asarray(col_upper, dtype=float)
    lp.row_lower_ = np.asarray(row_lower, dtype=float)
    lp.row_upper_ = np.asarray(row_upper, dtype=float)
    if maximize:
        lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.asarray(start, dtype=np.int32)
    lp.a_matrix_.index_ = np.asarray(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(value, dtype=float)
    h = _solver() if not options else _new_highs()
    for name, option in (options or {}).items():
        h.setOptionValue(name, option)
    h.passModel(lp)
    h.run()
    ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    x = np.asarray(h.getSolution().col_value, dtype=float) if ok else np.zeros(lp.num_col_)
    return h, x, ok


def repair(x: np.ndarray, chips: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Clip solver round-off so rows sum to <= 1 and pools hold <= capacity, exactly."""
    x = np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)
    x[x < 1e-12] = 0.0
    rows = x.sum(axis=1)
    over = rows > 1.0
    if over.any():
        x[over] /= rows[over, None] * (1 + 1e-12)
    used = chips @ x
    cap = np.asarray(capacity, dtype=float)
    over = used > cap
    if over.any():
        scale = np.where(over, cap / np.where(used > 0, used, 1.0) * (1 - 1e-12), 1.0)
        x *= scale[None, :]
    return x


def _pool_share(cap: np.ndarray, cap_g: np.ndarray, pool_group: np.ndarray) -> np.ndarray:
    """[P] each pool's part of its group's capacity (how a group's fractions are split)."""
    group_cap = cap_g[pool_group]
    return np.where(group_cap > 0, cap / np.where(group_cap > 0, group_cap, 1.0), 0.0)



def _usable(coef, chips, capacity) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients zeroed where they are not finite/positive or the pool has no capacity,
    as float arrays, with the indices of jobs that can run somewhere."""
    coef = np.asarray(coef, dtype=float)
    cap = np.asarray(capacity, dtype=float)
    coef = np.where(np.isfinite(coef) & (coef > 0) & (cap[None, :] > 0), coef, 0.0)
    active = np.flatnonzero(coef.max(axis=1, initial=0.0) > 0)
    return coef, np.asarray(chips, dtype=float), cap, active

def max_min(
    coef: np.ndarray,
    chips: np.ndarray,
    capacity: np.ndarray,
    *,
    efficient: bool = True,
    aggregate: bool = True,
) -> MaxMinResult:
    """Maximise the minimum over jobs of sum_p coef[j, p] x[j, p] (see the module docstring).

    Jobs whose row is all zero cannot run anywhere and are left out of the minimum.
    """
    coef, chips, cap, active = _usable(coef, chips, capacity)
    n_jobs, n_pools = coef.shape
    out = np.zeros((n_jobs, n_pools))
    if active.size == 0:
        return MaxMinResult(out, 0.0, 0, 0)
    scale = coef[active].max()
    c_act = coef[active] / scale
    if aggregate:
        rep, job_class = group_rows(np.column_stack([chips[active], c_act]))
    else:
        rep, job_class = np.arange(active.size), np.arange(active.size)
    n_class = np.bincount(job_class, minlength=rep.size).astype(float)
    c_k = c_act[rep]
    chips_k = chips[active][rep]
    if aggregate:
        col_rep, pool_group = group_columns(c_k)
    else:
        col_rep, pool_group = np.arange(n_pools), np.arange(n_pools)
    cap_g = np.bincount(pool_group, weights=cap, minlength=col_rep.size)
    c_kg = c_k[:, col_rep]
    keep = (c_kg > 0) & (cap_g[None, :] > 0)
    kk, gg = np.nonzero(keep)
    n_k, n_g, n_v = rep.size, col_rep.size, kk.size
    vals = c_kg[kk, gg]
    t_col = n_v
    start, index, value = max_min_columns(kk, gg, vals, chips_k[kk] * n_class[kk] / cap_g[gg],
                                          n_k, np.arange(n_k))
    row_upper = np.concatenate([np.zeros(n_k), np.ones(n_k), np.ones(n_g)])
    row_lower = np.full(row_upper.size, -INF)
    col_upper = np.append(np.ones(n_v), INF)
    cost = np.zeros(n_v + 1)
    cost[t_col] = 1.0
    h, sol, ok = _solve_csc(
        cost, (start, index, value), 2 * n_k + n_g, row_lower, row_upper,
        np.zeros(n_v + 1), col_upper, maximize=True,
    )
    if not ok:
        return MaxMinResult(out, 0.0, n_k, n_g)
    t_opt = float(sol[t_col])
    if efficient and t_opt > 0:
        sol = efficiency_pass(h, t_col, t_opt, np.append(vals * n_class[kk], 0.0), sol)
    s_kg = np.zeros((n_k, n_g))
    s_kg[kk, gg] = sol[:n_v]
    share = _pool_share(cap, cap_g, pool_group)
    x_act = s_kg[job_class][:, pool_group] * share[None, :]
    out[active] = x_act
    return MaxMinResult(repair(out, chips, cap), t_opt * scale, n_k, n_g)


def max_min_columns(
    job: np.ndarray, group: np.ndarray, utility: np.ndarray, chip_share: np.ndarray,
    n_jobs: int, t_rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The max-min LP's matrix column-wise, as `_solve_csc` takes it: (start, index, value).

    Rows: [0, n_jobs) utility (t - sum c x <= 0), [n_jobs, 2 n_jobs) time share,
    [2 n_jobs, ...) capacity. Variable v (job[v] on group[v]) has -utility[v], 1 and
    chip_share[v] in those three rows, in row order; then t has a 1 in each row of `t_rows`.
    Built directly: a COO build and its sort cost as much as a small solve.
    """
    n_v = job.size
    index = np.empty(3 * n_v + t_rows.size, dtype=np.int64)
    value = np.empty(index.size)
    index[0:3 * n_v:3] = job
    index[1:3 * n_v:3] = n_jobs + job
    index[2:3 * n_v:3] = 2 * n_jobs + group
    index[3 * n_v:] = t_rows
    value[0:3 * n_v:3] = -utility
    value[1:3 * n_v:3] = 1.0
    value[2:3 * n_v:3] = chip_share
    value[3 * n_v:] = 1.0
    start = np.append(np.arange(0, 3 * n_v + 1, 3), index.size)
    return start, index, value


def efficiency_pass(
    h: highspy.Highs, t_col: int, t_opt: float, weights: np.ndarray, sol: np.ndarray
) -> np.ndarray:
    """Re-solve a max-min LP with t held at its optimum (less round-off), maximising
    `weights` (one per column, 0 for t): the module docstring's second pass. Primal simplex,
    since the old optimum stays feasible. The new solution, or `sol` if HiGHS fails."""
    h.changeColsCost(weights.size, np.arange(weights.size, dtype=np.int32), weights)
    h.changeColBounds(t_col, t_opt * (1 - 1e-7), INF)
    h.setOptionValue("simplex_strategy", 4)
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
        return np.asarray(h.getSolution().col_value, dtype=float)
    return sol


def max_linear(
    weight: np.ndarray, chips: np.ndarray, capacity: np.ndarray, *, aggregate: bool = True,
    transport: bool = False,
) -> np.ndarray:
    """Maximise sum_jp weight[j, p] x[j, p] over the same constraints as `max_min`.

    The objective is linear and the constraints symmetric, so the class grouping is exact here
    too; jobs of a class share the class's fractions evenly.

    `transport`: when the pools form two groups, solve the LP with `_transport` (exact and
    certified, ~10x faster than HiGHS) instead of HiGHS. Both return an optimum; where the LP
    has several, they may return different ones, so it is opt-in per caller.
    """
    weight, chips, cap, active = _usable(weight, chips, capacity)
    n_jobs, n_pools = weight.shape
    out = np.zeros((n_jobs, n_pools))
    if active.size == 0:
        return out
    w_act = weight[active] / weight[active].max()
    if aggregate:
        rep, job_class = group_rows(np.column_stack([chips[active], w_act]))
        col_rep, pool_group = group_columns(w_act[rep])
    else:
        rep, job_class = np.arange(active.size), np.arange(active.size)
        col_rep, pool_group = np.arange(n_pools), np.arange(n_pools)
    n_class = np.bincount(job_class, minlength=rep.size).astype(float)
    chips_k = chips[active][rep]
    cap_g = np.bincount(pool_group, weights=cap, minlength=col_rep.size)
    w_kg = w_act[rep][:, col_rep]
    s_kg = None
    if transport:
        s_kg = _transport_fractions(w_kg, chips_k, n_class, cap_g)
    if s_kg is None:
        s_kg = _highs_fractions(w_kg, chips_k, n_class, cap_g)
    if s_kg is None:
        return out
    share = _pool_share(cap, cap_g, pool_group)
    out[active] = s_kg[job_class][:, pool_group] * share[None, :]
    return repair(out, chips, cap)


def _highs_fractions(
    w_kg: np.ndarray, chips_k: np.ndarray, n_class: np.ndarray, cap_g: np.ndarray
) -> np.ndarray | None:
    """[K, G] optimal class fractions of `max_linear`'s grouped LP by HiGHS, None if it fails."""
    kk, gg = np.nonzero((w_kg > 0) & (cap_g[None, :] > 0))
    n_k, n_g, n_v = w_kg.shape[0], w_kg.shape[1], kk.size
    columns = linear_columns(kk, gg, chips_k[kk] * n_class[kk] / cap_g[gg], n_k)
    _, sol, ok = _solve_csc(
        w_kg[kk, gg] * n_class[kk], columns, n_k + n_g, np.full(n_k + n_g, -INF),
        np.ones(n_k + n_g), np.zeros(n_v), np.ones(n_v), maximize=True,
    )
    if not ok:
        return None
    s_kg = np.zeros((n_k, n_g))
    s_kg[kk, gg] = sol
    return s_kg


def linear_columns(
    job: np.ndarray, group: np.ndarray, chip_share: np.ndarray, n_jobs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`max_linear`'s matrix column-wise, as `_solve_csc` takes it: (start, index, value).

    Variable v (job[v] on group[v]) has a 1 in row job[v] (time share) and chip_share[v] in row
    n_jobs + group[v] (capacity), in row order: the arrays scipy's COO-to-CSC build gave,
    without its construction and checks (~0.2 ms a solve)."""
    n_v = job.size
    index = np.empty(2 * n_v, dtype=np.int32)
    value = np.empty(2 * n_v)
    index[0::2], index[1::2] = job, n_jobs + group
    value[0::2], value[1::2] = 1.0, chip_share
    return np.arange(0, 2 * n_v + 1, 2, dtype=np.int32), index, value


def _transport_fractions(
    w_kg: np.ndarray, chips_k: np.ndarray, n_class: np.ndarray, cap_g: np.ndarray
) -> np.ndarray | None:
    """[K, 2] optimal class fractions by `_transport.solve_two_sinks`, or None when the pools
    do not form two groups of positive capacity, a class has no chips, or the solution is not
    certified (then HiGHS solves it). In chips, a class supplies chips_k n_k and earns
    w / chips_k per chip: w n s = (w / chips) (chips n s)."""
    if cap_g.size != 2 or (cap_g <= 0).any() or (chips_k <= 0).any():
        return None
    supply_chips = chips_k * n_class
    per_chip = np.where(w_kg > 0, w_kg / chips_k[:, None], -np.inf)
    solved = solve_two_sinks(per_chip[:, 0], per_chip[:, 1], supply_chips,
                             float(cap_g[0]), float(cap_g[1]))
    if solved is None:
        return None
    return np.column_stack(solved) / supply_chips[:, None]


def utility(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    """[J] sum_p coef[j, p] x[j, p]."""
    return np.einsum("jp,jp->j", coef, x)

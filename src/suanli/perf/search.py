"""The vectorised layout search shared by `estimate` and `estimate_grid`.

For each chip and each number of chips m actually used, try every layout (tp, pp, variant) with
dp = m / (tp·pp) and keep the fastest that fits; then allow leaving chips idle, so the duration
on n chips is the best over m <= n. That makes duration non-increasing in n by construction.
Both public functions go through `solve`, so they agree exactly.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from suanli.catalog import Accelerator, Catalog, builtin_catalog
from suanli.errors import SuanliError
from suanli.jobs import JobSpec
from suanli.perf.chips import ChipArrays, chip_arrays
from suanli.perf.efficiency import DEFAULT_EFFICIENCY, Efficiency
from suanli.perf.generic import GenericKernel
from suanli.perf.inference import DECODE_BOUND_POWER, InferenceKernel
from suanli.perf.kernel import Kernel, power_and_bound, running_min
from suanli.perf.training import TrainingKernel
from suanli.perf.types import BOUND_CODE, beyond_useful_range

_CHIP_FIELDS = ("bf16_flops", "peak_flops", "sustained_flops", "ridge_ratio", "mem_bw",
                "mem_bytes", "mem_physical_gb", "up_bw", "mesh", "chips_per_node", "out_bw",
                "tdp_w", "has_fp8")


def make_kernel(job: JobSpec, eff: Efficiency, catalog: Catalog | None = None) -> Kernel:
    if job.kind in ("train", "finetune"):
        return TrainingKernel.from_job(job, eff)
    if job.kind in ("inference", "batch_inference"):
        return InferenceKernel.from_job(job, eff)
    cat = catalog or builtin_catalog()
    ref = cat.get(job.work.reference_accelerator, field="work.reference_accelerator")
    return GenericKernel.from_job(job, eff, ref)


def _expand(c: ChipArrays, tail: int) -> SimpleNamespace:
    return SimpleNamespace(**{f: c.column(f, tail) for f in _CHIP_FIELDS})


_FLOAT_FIELDS = tuple(f for f in _CHIP_FIELDS if f not in ("mesh", "chips_per_node",
                                                             "has_fp8"))


def _take(c: ChipArrays, idx: np.ndarray) -> SimpleNamespace:
    """The chip fields of each entry in `idx`: one gather of a stacked float table."""
    table = c.__dict__.get("_table")
    if table is None:
        table = np.stack([getattr(c, f) for f in _FLOAT_FIELDS])
        object.__setattr__(c, "_table", table)
    rows = table[:, idx]
    out = {f: rows[i] for i, f in enumerate(_FLOAT_FIELDS)}
    for f in ("mesh", "chips_per_node", "has_fp8"):
        out[f] = getattr(c, f)[idx]
    return SimpleNamespace(**out)


@dataclass
class Solution:
    """Per (chip, count) entries, flattened to [A*N] (row-major), plus the search tables."""

    kernel: object
    chips: ChipArrays
    counts: np.ndarray  # [N]
    acc_index: np.ndarray  # [M]
    count: np.ndarray  # [M]
    duration_s: np.ndarray
    model_duration_s: np.ndarray
    fits: np.ndarray
    used: np.ndarray
    tp: np.ndarray
    pp: np.ndarray
    var: np.ndarray
    dp: np.ndarray
    detail: dict[str, np.ndarray]
    measured: np.ndarray  # bool: a measurement set this entry's duration
    measured_factor: np.ndarray
    tokens_per_s: np.ndarray
    mfu: np.ndarray
    power_w: np.ndarray
    bound: np.ndarray  # int codes into BOUNDS
    zero_stage: np.ndarray


# The most chips the search looks at. Past a kernel's useful limit (its largest data-parallel
# degree x its widest layout) no chip can take part; below it, 2^18 chips bound the search's
# tables (a few MB per chip type) for any count asked, so an absurd count costs what this does.
SEARCH_CAP_CHIPS = 1 << 18


def search_limit(kernel) -> int:
    """The largest chip count worth searching for `kernel` (see SEARCH_CAP_CHIPS)."""
    widest = max(t * p for t, p in kernel.layouts())
    return int(min(SEARCH_CAP_CHIPS, max(int(kernel.max_dp), 1) * widest))


LADDER_EXACT = 128  # every data-parallel degree up to this is tried ...
LADDER_MANTISSA = 64  # ... then 64 evenly spaced per octave (steps of at most 1/64)


@functools.lru_cache(maxsize=64)
def dp_ladder(d_max: int) -> np.ndarray:
    """Data-parallel degrees the search tries: all up to 128, then steps of <= 1.6%.

    Fixed (it does not depend on the counts asked for), so estimate and grid agree; a count
    between two rungs uses the rung below it and leaves the few chips beyond it idle.
    """
    out = set(range(1, min(d_max, LADDER_EXACT) + 1))
    scale = LADDER_EXACT // LADDER_MANTISSA
    while LADDER_MANTISSA * scale < d_max:
        out.update(m * scale for m in range(LADDER_MANTISSA, 2 * LADDER_MANTISSA + 1)
                   if m * scale <= d_max)
        scale *= 2
    ladder = np.array(sorted(set(out)), dtype=np.int64)
    ladder.flags.writeable = False  # cached: shared by every call
    return ladder


@dataclass
class _Tables:
    """One search's tables: the (layout, dp) slots of `_slots` for these chips, the best
    duration and variant found per slot so far, and (with pruning) the best duration per
    exact count and the best on fewer chips, which bound what a variant can still win."""

    kernel: Kernel
    chips: ChipArrays
    n_max: int
    layouts: tuple
    variants: tuple
    cfgs: np.ndarray
    plan: tuple
    n_slots: int
    slot_tp: np.ndarray
    slot_pp: np.ndarray
    slot_dp: np.ndarray
    slot_lay: np.ndarray
    work: _Work
    dur: np.ndarray  # [A, S] best duration per slot
    var: np.ndarray | None  # [A, S] index of its variant (several variants only)
    primary: np.ndarray | None  # [A, n_max] best duration on exactly m chips (pruning)
    before: np.ndarray | None  # [A, n_max] best duration on fewer than m chips (pruning)


@dataclass
class _Group:
    """The layouts with one tp x pp, over their data-parallel ladder: a view of the slots."""

    lay: np.ndarray
    ladder: np.ndarray
    off: int
    dur: np.ndarray  # [A, K, D] view into _Tables.dur
    m_idx: np.ndarray  # chips used - 1, per dp


@dataclass
class _PrimaryFit:
    """Where the primary variant is valid and fits, per slot, and its count-independent rows
    (fast kernels; None otherwise)."""

    valid: np.ndarray
    fits: np.ndarray
    rows: dict[str, np.ndarray]


def _search(kernel: Kernel, chips: ChipArrays, n_max: int, prune: bool = True):
    """Best duration for exactly m chips [A, n_max], its config index, and the configs.

    The primary variant (least communication and recomputation) is evaluated everywhere; the
    other variants (ZeRO-3, full recomputation, wider expert parallelism) only where the
    primary does not fit, and each only where its memory fits and no variant with a subset of
    its costly features fits (such a variant is never slower).

    With `prune`, a variant is also skipped where a lower bound on its duration (compute and
    bubble alone) already loses: it is above a primary layout's duration on the same m (so it
    is not the best on m), or at least the best primary duration on fewer chips (so m is not
    where the running minimum improves). Either way the running minimum, the counts where it
    improves and the layouts there are unchanged; only `exact` and its layouts at counts the
    running minimum skips may differ, so callers that read those (measurement scaling) pass
    prune=False.

    Passes: `_tables` (index tables and buffers), `_primary_pass` (the primary variant on
    every slot), `_missed_cells` (where it does not fit), `_variant_pass` (the other variants
    there, cheapest first), `_best_per_count` (the best layout per exact count).
    """
    t = _tables(kernel, chips, n_max, prune)
    groups, primary_fit = _primary_pass(t)
    if len(t.variants) > 1 and primary_fit is not None:
        cells = _missed_cells(t, primary_fit)
        if cells is not None:
            _variant_pass(t, cells)
    exact, exact_cfg = _best_per_count(t, groups)
    return exact, exact_cfg, t.cfgs


def _tables(kernel: Kernel, chips: ChipArrays, n_max: int, prune: bool) -> _Tables:
    """The slots and reused buffers of one search. Only a fast kernel may have several
    variants (kernel.FastKernel): the variant pass uses its memory, bound and rows."""
    a_count = len(chips)
    layouts = tuple(kernel.layouts())
    variants = tuple(kernel.variants())
    if len(variants) > 1 and not kernel.fast_path:
        raise TypeError(f"{type(kernel).__name__}: several variants need kernel.FastKernel")
    cfgs, plan, n_slots, slot_tp, slot_pp, slot_dp, slot_lay = _slots(
        layouts, variants, int(kernel.max_dp), n_max)
    prune = prune and len(variants) > 1 and kernel.lower_bound_is_safe()
    work = _Work()  # reused buffers for what stays inside the search
    primary = work.get("primary", (a_count, n_max), np.inf) if prune else None
    before = work.get("before", (a_count, n_max)) if prune else None
    var = work.get("var", (a_count, n_slots), 0, np.int8) if len(variants) > 1 else None
    return _Tables(kernel=kernel, chips=chips, n_max=n_max, layouts=layouts,
                   variants=variants, cfgs=cfgs, plan=plan, n_slots=n_slots, slot_tp=slot_tp,
                   slot_pp=slot_pp, slot_dp=slot_dp, slot_lay=slot_lay, work=work,
                   dur=work.get("dur", (a_count, n_slots)), var=var, primary=primary,
                   before=before)


def _primary_pass(t: _Tables) -> tuple[list[_Group], _PrimaryFit | None]:
    """Pass 1: the primary variant of every layout, on the full (chip, layout, dp) grid. A
    fast kernel evaluates every slot of every group in one call (elementwise, so the values
    are those of one call per group, without the fixed cost of each call); the others are
    evaluated per group. Records the best primary duration per exact count for pruning."""
    kernel, chips, a_count = t.kernel, t.chips, len(t.chips)
    v0 = np.int64(t.variants[0])
    primary_fit = None
    if kernel.fast_path:
        nodes = _node_kinds(chips)
        c1 = _expand(chips, 1)
        nodes1 = (SimpleNamespace(chips_per_node=nodes[0].chips_per_node.reshape(-1, 1),
                                  mesh=nodes[0].mesh.reshape(-1, 1)), nodes[1])
        valid_all = np.broadcast_to(kernel.valid(c1, t.slot_tp[None, :]), (a_count, t.n_slots))
        # the terms that do not depend on dp, once per (chip, layout), gathered to the slots
        lay_rows = kernel.duration_rows(c1, np.array([tp for tp, _ in t.layouts])[None, :],
                                        np.array([pp for _, pp in t.layouts])[None, :], v0)
        slot_rows = {k: np.take(np.broadcast_to(x, (a_count, len(t.layouts))), t.slot_lay,
                                axis=1, out=t.work.get("row_" + k, (a_count, t.n_slots)),
                                mode="clip")
                     for k, x in lay_rows.items()}
        _, fits_all = kernel.duration(c1, t.slot_tp[None, :], t.slot_pp[None, :], v0,
                                      t.slot_dp[None, :], nodes=nodes1, out=t.dur,
                                      rows=slot_rows)
        fits_all = np.broadcast_to(fits_all, (a_count, t.n_slots))
        primary_fit = _PrimaryFit(valid=valid_all, fits=fits_all, rows=slot_rows)
    else:
        c = _expand(chips, 2)
    groups = []
    for lay, ladder, off in t.plan:
        tp_k = np.array([t.layouts[i][0] for i in lay], dtype=np.int64).reshape(1, -1, 1)
        span = slice(off, off + lay.size * ladder.size)
        shape = (a_count, len(lay), ladder.size)
        dur = t.dur[:, span].reshape(shape)  # a view
        if primary_fit is not None:
            valid = primary_fit.valid[:, span].reshape(shape)
        else:
            valid = kernel.valid(c, tp_k)
        if not valid.any():
            continue
        if primary_fit is None:
            pp_k = np.array([t.layouts[i][1] for i in lay], dtype=np.int64).reshape(1, -1, 1)
            out = kernel.evaluate(c, tp_k, pp_k, v0, ladder.reshape(1, 1, -1),
                                  duration_only=True)
            np.copyto(dur, out["duration_s"])
        np.copyto(dur, np.inf, where=~valid)
        m_idx = _group_chips(t.layouts, lay) * ladder - 1
        if t.primary is not None:
            t.primary[:, m_idx] = np.minimum(t.primary[:, m_idx], dur.min(axis=1))
        groups.append(_Group(lay=lay, ladder=ladder, off=off, dur=dur, m_idx=m_idx))
    if t.before is not None:
        _refresh_before(t)
    return groups, primary_fit


def _refresh_before(t: _Tables) -> None:
    """The best primary duration on fewer chips than m (a running minimum shifted by one)."""
    t.before[:, 0] = np.inf
    np.minimum.accumulate(t.primary[:, :-1], axis=1, out=t.before[:, 1:])


@dataclass
class _Cells:
    """The slots where the primary does not fit, as flat lists: chip, slot, exact-count
    index (chip x n_max + m - 1) and cell (chip x S + slot)."""

    ai: np.ndarray
    slot: np.ndarray
    mflat: np.ndarray
    cell: np.ndarray


def _missed_cells(t: _Tables, pf: _PrimaryFit) -> _Cells | None:
    """The cells where the primary does not fit. With pruning, those whose lower bound for
    the primary's recomputation (no variant has less, so no variant's bound is lower)
    already loses are left out: the bounds only tighten, so every variant would skip them."""
    slot_m = t.slot_tp * t.slot_pp * t.slot_dp - 1
    miss = pf.valid & ~pf.fits  # False in the groups left out (no valid layout)
    if t.primary is not None:
        lb = t.kernel.lower_bound_at(pf.rows["comp_row"], pf.rows["t_bubble"],
                                     t.slot_dp[None, :])
        miss = miss & ~((lb > t.primary[:, slot_m]) | (lb >= t.before[:, slot_m]))
    ai, slot = np.divmod(np.flatnonzero(miss), t.n_slots)
    if not ai.size:
        return None
    return _Cells(ai=ai, slot=slot, mflat=ai * t.n_max + slot_m[slot],
                  cell=ai * t.n_slots + slot)


def _variant_pass(t: _Tables, cells: _Cells) -> None:
    """Pass 2: the other variants where the primary does not fit, cheapest first; each
    variant's results tighten the bounds for the next. Each variant works on the part of
    the list where no variant with a subset of its costs fits (a list that shrinks), with
    one evaluation of memory, lower bound and duration for all of them."""
    fit_of: dict[int, np.ndarray] = {}
    lb_rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    order = sorted(range(1, len(t.variants)), key=lambda i: bin(t.variants[i]).count("1"))
    for vi in order:
        v = t.variants[vi]
        todo = None
        for u, f in fit_of.items():
            if u & v == u:
                todo = ~f if todo is None else todo & ~f
        sel = np.arange(cells.ai.size) if todo is None else np.flatnonzero(todo)
        fit_v = fit_of[v] = np.zeros(cells.ai.size, dtype=bool)
        if sel.size == 0:
            continue
        sel = sel[_variant_fits(t, cells, sel, v)]
        fit_v[sel] = True
        if sel.size and _try_variant(t, cells, sel, vi, lb_rows) and vi != order[-1]:
            _refresh_before(t)


def _variant_fits(t: _Tables, cells: _Cells, sel: np.ndarray, v: int) -> np.ndarray:
    """Whether variant v fits in memory on the selected cells. Memory per chip depends on
    the chip only through chips_per_node: tabulated per node size and slot when that is
    smaller than the selection, else computed per cell."""
    chips, kernel = t.chips, t.kernel
    mem = chips.mem_bytes[cells.ai[sel]]
    cpn_u, cpn_kind = np.unique(chips.chips_per_node, return_inverse=True)
    if sel.size > cpn_u.size * t.n_slots:
        cpn_col = SimpleNamespace(chips_per_node=cpn_u.reshape(-1, 1))
        total = kernel.memory_total(cpn_col, t.slot_tp[None, :], t.slot_pp[None, :],
                                    np.int64(v), t.slot_dp[None, :])
        total = np.broadcast_to(total, (cpn_u.size, t.n_slots)).reshape(-1)
        table = cpn_kind.reshape(-1)[cells.ai[sel]] * t.n_slots + cells.slot[sel]
        return total[table] <= mem
    slot = cells.slot[sel]
    cn = SimpleNamespace(chips_per_node=chips.chips_per_node[cells.ai[sel]])
    total = kernel.memory_total(cn, t.slot_tp[slot], t.slot_pp[slot], np.int64(v),
                                t.slot_dp[slot])
    return total <= mem


def _try_variant(t: _Tables, cells: _Cells, sel: np.ndarray, vi: int,
                 lb_rows: dict[int, tuple[np.ndarray, np.ndarray]]) -> bool:
    """Evaluate variant `vi` on the selected cells (which fit its memory) and keep it where
    it is faster. With pruning, first drop the cells its lower bound rules out, then run the
    cells with the least bound on their (chip, m) first: they tighten the bound on m for
    the others, most of which it then rules out. True if the primary table changed."""
    kernel, v = t.kernel, np.int64(t.variants[vi])
    n_lay = len(t.layouts)
    a_count = len(t.chips)
    lay_tp = np.array([tp for tp, _ in t.layouts], dtype=np.int64).reshape(1, -1)
    lay_pp = np.array([pp for _, pp in t.layouts], dtype=np.int64).reshape(1, -1)
    c2 = _expand(t.chips, 1)
    # the terms that do not depend on dp, per (chip, layout), looked up per cell
    v_rows = {k: np.broadcast_to(x, (a_count, n_lay)).reshape(-1)
              for k, x in kernel.duration_rows(c2, lay_tp, lay_pp, v).items()}
    lay_row = cells.ai[sel] * n_lay + t.slot_lay[cells.slot[sel]]
    if t.primary is None:
        return _keep_faster(t, cells, sel, vi, lay_row, v_rows)
    rows = lb_rows.get(int(v) & 4)  # the bound depends on the variant only via bit 2
    if rows is None:
        rows = lb_rows[int(v) & 4] = tuple(
            np.broadcast_to(r, (a_count, n_lay)).reshape(-1)
            for r in kernel.lower_bound_rows(c2, lay_tp, lay_pp, v))
    lb = kernel.lower_bound_at(rows[0][lay_row], rows[1][lay_row],
                               t.slot_dp[cells.slot[sel]])
    p_flat, b_flat = t.primary.reshape(-1), t.before.reshape(-1)
    m_flat = cells.mflat[sel]
    keep = ~((lb > p_flat[m_flat]) | (lb >= b_flat[m_flat]))
    sel, lb, m_flat, lay_row = sel[keep], lb[keep], m_flat[keep], lay_row[keep]
    if sel.size == 0:
        return False
    least_lb = t.work.get("least_lb", p_flat.shape, np.inf)
    np.minimum.at(least_lb, m_flat, lb)
    first = lb <= least_lb[m_flat]
    changed = _keep_faster(t, cells, sel[first], vi, lay_row[first], v_rows)
    rest = ~first
    rest[rest] = lb[rest] <= p_flat[m_flat[rest]]
    if rest.any():
        changed |= _keep_faster(t, cells, sel[rest], vi, lay_row[rest], v_rows)
    return changed


def _keep_faster(t: _Tables, cells: _Cells, sel: np.ndarray, vi: int, lay_row: np.ndarray,
                 v_rows: dict[str, np.ndarray]) -> bool:
    """Variant `vi`'s duration on the cells `sel` (they passed its memory check), kept where
    faster than the best so far; True if the primary table changed."""
    ai, slot = cells.ai[sel], cells.slot[sel]
    dur = t.kernel.duration(_take(t.chips, ai), t.slot_tp[slot], t.slot_pp[slot],
                            np.int64(t.variants[vi]), t.slot_dp[slot], fit=True,
                            rows={k: x[lay_row] for k, x in v_rows.items()})[0]
    cell = cells.cell[sel]
    dur_flat, var_flat = t.dur.reshape(-1), t.var.reshape(-1)
    better = dur < dur_flat[cell]
    if not better.any():
        return False
    cell, dur = cell[better], dur[better]
    dur_flat[cell] = dur
    var_flat[cell] = vi
    if t.primary is None:
        return False
    np.minimum.at(t.primary.reshape(-1), cells.mflat[sel[better]], dur)
    return True


def _best_per_count(t: _Tables, groups: list[_Group]) -> tuple[np.ndarray, np.ndarray]:
    """The best layout per exact count m: first layout of the group on ties, earlier groups
    on ties. Returns (duration [A, n_max], config index [A, n_max], -1 where none)."""
    a_count, nvar = len(t.chips), len(t.variants)
    exact = np.full((a_count, t.n_max), np.inf)
    exact_cfg = np.full((a_count, t.n_max), -1, dtype=np.int64)
    for g in groups:
        var_idx = None if t.var is None else \
            t.var[:, g.off:g.off + g.lay.size * g.ladder.size].reshape(g.dur.shape)
        k, tk, vk = _first_min(g.dur, var_idx)  # [A, D]
        better = tk < exact[:, g.m_idx]
        exact[:, g.m_idx] = np.where(better, tk, exact[:, g.m_idx])
        cfg = g.lay[k] * nvar
        if var_idx is not None:
            cfg = cfg + vk
        exact_cfg[:, g.m_idx] = np.where(better, cfg, exact_cfg[:, g.m_idx])
    return exact, exact_cfg


def clear_caches() -> None:
    """Forget the cached count-independent tables (benchmarks time a cold search with it)."""
    dp_ladder.cache_clear()
    _slots.cache_clear()


@functools.lru_cache(maxsize=64)
def _slots(layouts: tuple, variants: tuple, max_dp: int, n_max: int):
    """The search's index tables, which depend only on the layouts, variants, the batch
    limit and the largest count (not on the model's numbers or the chips), cached read-only:
    the configs (tp, pp, variant), and the (layout, dp) pairs of every group of layouts with
    the same tp·pp side by side on one axis of S "slots" (group g holds slots off..off+K·D of
    the [A, S] tables, its [A, K, D] grid in row-major order)."""
    cfgs = np.array([(t, p) + (v,) for t, p in layouts for v in variants],
                    dtype=np.int64).reshape(-1, 3)
    groups: dict[int, list[int]] = defaultdict(list)
    for i, (tp, pp) in enumerate(layouts):
        groups[int(tp * pp)].append(i)
    plan = []
    n_slots = 0
    for p_chips in sorted(groups):
        d_max = min(n_max // p_chips, max_dp)
        if d_max < 1:
            continue
        lay = np.array(groups[p_chips])
        ladder = dp_ladder(d_max)
        plan.append((lay, ladder, n_slots))
        n_slots += lay.size * ladder.size
    slot_tp = np.concatenate([np.repeat([layouts[i][0] for i in lay], ladder.size)
                              for lay, ladder, _ in plan]).astype(np.int64)
    slot_pp = np.concatenate([np.repeat([layouts[i][1] for i in lay], ladder.size)
                              for lay, ladder, _ in plan]).astype(np.int64)
    slot_dp = np.concatenate([np.tile(ladder, lay.size) for lay, ladder, _ in plan])
    slot_lay = np.concatenate([np.repeat(lay, ladder.size) for lay, ladder, _ in plan])
    for x in (cfgs, slot_tp, slot_pp, slot_dp, slot_lay, *(lay for lay, _, _ in plan)):
        x.flags.writeable = False
    return cfgs, tuple(plan), n_slots, slot_tp, slot_pp, slot_dp, slot_lay


def _group_chips(layouts, lay) -> int:
    tp, pp = layouts[int(lay[0])]
    return int(tp * pp)


POOL_MAX_ENTRIES = 1 << 21  # per reused buffer (16 MiB of float64)


class _Work:
    """Per-thread reused buffers for arrays that never leave `_search` (fresh arrays of this
    size cost a page fault per 4 KiB on every call)."""

    _local = threading.local()

    def get(self, name: str, shape, fill=None, dtype=np.float64) -> np.ndarray:
        pool = self._local.__dict__.setdefault("pool", {})
        size = shape if isinstance(shape, int) else math.prod(shape)
        buf = pool.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = np.empty(size, dtype=dtype)
            if size <= POOL_MAX_ENTRIES:  # larger ones are not kept
                pool[name] = buf
        out = buf[:size].reshape(shape)
        if fill is not None:
            out.fill(fill)
        return out


def _first_min(dur: np.ndarray, var_idx: np.ndarray | None):
    """argmin over axis 1 (the first on ties), the minimum, and var_idx there: a few
    comparisons of [A, D] slices instead of a strided argmin and gathers."""
    if np.isnan(dur).any():  # argmin picks the first NaN; keep its exact semantics
        k = dur.argmin(axis=1)
        tk = np.take_along_axis(dur, k[:, None, :], axis=1)[:, 0, :]
        vk = None if var_idx is None else \
            np.take_along_axis(var_idx, k[:, None, :], axis=1)[:, 0, :]
        return k, tk, vk
    tk = dur[:, 0].copy()
    k = np.zeros(tk.shape, dtype=np.int64)
    vk = None if var_idx is None else var_idx[:, 0].copy()
    for j in range(1, dur.shape[1]):
        b = dur[:, j] < tk
        np.copyto(tk, dur[:, j], where=b)
        np.copyto(k, j, where=b)
        if vk is not None:
            np.copyto(vk, var_idx[:, j], where=b)
    return k, tk, vk


def _node_kinds(chips: ChipArrays):
    """(columns chips_per_node and mesh [U, 1, 1] of the distinct node kinds, kind of each
    chip [A]): what `kernel.duration` computes once per node kind."""
    key = chips.chips_per_node * 2 + chips.mesh
    _, first, kinds = np.unique(key, return_index=True, return_inverse=True)
    cn = SimpleNamespace(chips_per_node=chips.chips_per_node[first].reshape(-1, 1, 1),
                         mesh=chips.mesh[first].reshape(-1, 1, 1))
    return cn, kinds.reshape(-1)


def _cummin(exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Running minimum along counts and the (earliest) count index achieving it."""
    best, improve = running_min(exact)
    n = exact.shape[1]
    arg = np.maximum.accumulate(np.where(improve, np.arange(n), 0), axis=1)
    return best, arg


def _measurements(job: JobSpec, chips: ChipArrays, catalog: Catalog, kernel, limit: int):
    """{acc index: [(count, duration_s)]} from job.measured, for chips in this solve (counts
    past the search limit are left out: no layout can use those chips)."""
    out: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for i, m in enumerate(job.measured):
        acc = catalog.get(m.accelerator, field=f"measured.{i}.accelerator")
        if acc.id not in chips.ids or m.count > limit:
            continue
        if m.duration_s is not None:
            dur = m.duration_s
        else:
            dur = kernel.tokens_per_s(1.0) / m.tokens_per_s  # work / rate
        out[chips.ids.index(acc.id)].append((m.count, float(dur)))
    return out


def solve(job: JobSpec, accelerators: list[Accelerator], counts: np.ndarray, *,
          catalog: Catalog | None = None, efficiency: Efficiency | None = None,
          details: bool = True) -> Solution:
    """Search every chip and count; `details` adds memory breakdowns and layouts per entry."""
    eff = efficiency or DEFAULT_EFFICIENCY
    cat = catalog or builtin_catalog()
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    if counts.size == 0:
        raise SuanliError("no chip counts given", field="count", value=[])
    if counts.min() < 1:
        raise SuanliError(f"chip count must be at least 1 (got {int(counts.min())})",
                          field="count", value=int(counts.min()))
    kernel = make_kernel(job, eff, cat)
    chips = chip_arrays(accelerators, job.precision, eff)
    limit = search_limit(kernel)
    meas = _measurements(job, chips, cat, kernel, limit)
    n_max = int(min(max(counts.max(), max((c for v in meas.values() for c, _ in v),
                                          default=1)), limit))
    exact, exact_cfg, cfgs = _search(kernel, chips, n_max, prune=not meas)
    best, arg = _cummin(exact)

    # Measurements override the model at their count and scale it at the others.
    model_best = best
    factor_tab = np.ones_like(best)
    measured_tab = np.zeros(best.shape, dtype=bool)
    if meas:
        best = best.copy()
        n_axis = np.arange(1, n_max + 1)
        for a, entries in meas.items():
            entries = sorted(entries)
            factors = []
            for cnt, dur in entries:
                model = model_best[a, cnt - 1]
                factors.append(dur / model if np.isfinite(model) else np.nan)
            # nearest measured count by ratio (exact integer comparison)
            dist = np.stack([np.maximum(n_axis * 1.0 / cnt, cnt * 1.0 / n_axis)
                             for cnt, _ in entries])
            near = dist.argmin(axis=0)
            f = np.array(factors)[near]
            scaled = np.where(np.isnan(f), model_best[a], model_best[a] * np.nan_to_num(f, nan=1))
            factor_tab[a] = np.where(np.isnan(f), 1.0, f)
            for cnt, dur in entries:
                scaled[cnt - 1] = dur
                measured_tab[a, cnt - 1] = True
            best[a] = np.minimum.accumulate(scaled)
            # the count actually used follows the scaled curve
            prev = np.concatenate([[np.inf], best[a, :-1]])
            improve = scaled < prev
            arg[a] = np.maximum.accumulate(np.where(improve, np.arange(n_max), 0))

    a_count, n_c = len(chips), counts.size
    a_idx = np.repeat(np.arange(a_count), n_c)
    cnt = np.tile(counts, a_count)
    col = np.minimum(counts, n_max) - 1  # counts past the search limit use its last column
    dur = best[:, col].reshape(-1)
    fits = np.isfinite(dur)
    used = np.where(fits, arg[:, col].reshape(-1) + 1, cnt)

    def at(table: np.ndarray) -> np.ndarray:
        return np.take_along_axis(table, (used - 1).reshape(a_count, n_c), axis=1).reshape(-1)

    if meas:
        meas_flag = at(measured_tab) & fits
        factor = at(factor_tab)
    else:
        meas_flag = np.zeros(fits.shape, dtype=bool)
        factor = np.ones(fits.shape)
    cfg = at(exact_cfg)
    model_ok = fits & (cfg >= 0)
    safe = np.maximum(cfg, 0)
    tp, pp, var = cfgs[safe, 0], cfgs[safe, 1], cfgs[safe, 2]
    if not model_ok.all():
        bad = np.nonzero(~model_ok)[0]
        tp, pp, var = tp.copy(), pp.copy(), var.copy()
        tp[bad], pp[bad], var[bad] = _fallback_layout(kernel, chips, a_idx[bad],
                                                      np.minimum(cnt[bad], n_max), cfgs)
    layout_chips = np.where(model_ok, used, np.minimum(cnt, n_max))
    dp = np.maximum(np.minimum(layout_chips // (tp * pp), kernel.max_dp), 1)
    # Evaluate each distinct (chip, layout, chips used) once; many counts share one.
    key = ((a_idx * 8 + np.minimum(var, 7)) * (n_max + 1) + layout_chips) * 4096 \
        + tp * 64 + pp
    change = np.empty(key.shape, dtype=bool)  # runs of equal keys (counts share a layout)
    change[:1] = True
    np.not_equal(key[1:], key[:-1], out=change[1:])
    first = np.nonzero(change)[0]
    inverse = np.cumsum(change) - 1
    c = _take(chips, a_idx[first])
    detail = kernel.evaluate(c, tp[first], pp[first], var[first], dp[first],
                             lean=not details)
    needed = detail.keys() if details else ("busy", "mem_busy", "t_compute", "t_bubble",
                                             "t_memory", "t_link", "t_network")
    detail = {k: np.broadcast_to(np.asarray(detail[k]), first.shape)[inverse]
              for k in needed}
    c = _take(chips, a_idx) if details else c
    if details:
        stage = _zero_stage(kernel, c, tp, pp, dp, var, detail)
        detail = _restage(kernel, c, tp, pp, dp, var, detail, stage)
    else:
        stage = np.zeros_like(dp)

    with np.errstate(divide="ignore", invalid="ignore"):
        tps = np.where(fits, kernel.tokens_per_s(dur), 0.0)
        mfu = np.where(fits, kernel.model_flops() / dur / (cnt * chips.peak_flops[a_idx]), 0.0)
    mfu = np.nan_to_num(mfu)
    e = eff
    busy = np.where(model_ok, detail["busy"], 1.0)
    mem_busy = np.where(model_ok, detail["mem_busy"], 0.0)
    tdp = chips.tdp_w[a_idx]
    chip_power, bound = power_and_bound(e, tdp, busy, mem_busy, detail, DECODE_BOUND_POWER)
    power = used * chip_power + (cnt - used) * tdp * e.power_idle
    bound = np.where(fits, bound, BOUND_CODE["memory_capacity"])
    return Solution(
        kernel=kernel, chips=chips, counts=counts, acc_index=a_idx, count=cnt, duration_s=dur,
        model_duration_s=model_best[a_idx, np.minimum(cnt, n_max) - 1], fits=fits, used=used,
        tp=tp, pp=pp,
        var=var, dp=dp, detail=detail, measured=meas_flag, measured_factor=factor,
        tokens_per_s=tps, mfu=mfu, power_w=power, bound=bound.astype(np.int64),
        zero_stage=stage,
    )


@dataclass
class GridSolution:
    """What estimate_grid reports, each of shape [A, N]."""

    duration_s: np.ndarray
    tokens_per_s: np.ndarray
    mfu: np.ndarray
    power_w: np.ndarray
    fits: np.ndarray
    bound: np.ndarray
    used: np.ndarray
    beyond_useful_range: np.ndarray  # bool: more chips than make the job faster


def solve_grid(job: JobSpec, accelerators: list[Accelerator], counts: np.ndarray, *,
               catalog: Catalog | None = None,
               efficiency: Efficiency | None = None) -> GridSolution:
    """`solve(..., details=False)` reshaped to [A, N], computed without per-entry work.

    Every entry that fits runs on the count where the running minimum of `exact` last
    improved, with the layout found there; so the layout, its busy fractions, power per chip
    and binding bound are evaluated once per such improvement point and gathered. Entries
    that do not fit report the idle/busy constants `solve` gives them. The arithmetic per
    entry is the same as in `solve`, so the values are identical. Jobs with measurements go
    through `solve`.
    """
    eff = efficiency or DEFAULT_EFFICIENCY
    cat = catalog or builtin_catalog()
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    if job.measured or counts.size == 0 or counts.min() < 1:
        return _grid_from_solution(solve(job, accelerators, counts, catalog=cat,
                                         efficiency=eff, details=False), len(accelerators))
    kernel = make_kernel(job, eff, cat)
    chips = chip_arrays(accelerators, job.precision, eff)
    n_max = int(min(counts.max(), search_limit(kernel)))
    exact, exact_cfg, cfgs = _search(kernel, chips, n_max)

    best, improve = running_min(exact)

    # The layout at each improvement point, evaluated once.
    ai, ji = np.nonzero(improve)
    cfg = exact_cfg[ai, ji]
    tp, pp, var = cfgs[cfg, 0], cfgs[cfg, 1], cfgs[cfg, 2]
    dp = np.maximum(np.minimum((ji + 1) // (tp * pp), kernel.max_dp), 1)
    if kernel.fast_path:  # the same terms, with less work
        detail = kernel.lean_terms(_take(chips, ai), tp, pp, var, dp)
    else:
        detail = kernel.evaluate(_take(chips, ai), tp, pp, var, dp, lean=True)
    shape = ai.shape

    def col(key: str) -> np.ndarray:
        return np.broadcast_to(np.asarray(detail[key]), shape)

    e = eff
    power_at, bound_at = power_and_bound(e, chips.tdp_w[ai], col("busy"), col("mem_busy"),
                                         detail, DECODE_BOUND_POWER)

    # Each entry that fits runs at the last improvement point at or before its count: the
    # number of improvement points so far (row-major order) minus one indexes it. Entries
    # that do not fit have none in their row yet; their index is overwritten below.
    work = _Work()
    point = np.cumsum(improve.reshape(-1), out=work.get("point", improve.size, dtype=np.int64))
    point = point.reshape(exact.shape)
    point -= 1
    # Gather per (chip, count); counts 1..n_max in order (the usual grid) need no gather.
    if counts.size == n_max and counts[0] == 1 and bool((np.diff(counts) == 1).all()):
        dur = best
    else:
        colx = np.minimum(counts, n_max) - 1
        dur, point = best[:, colx], point[:, colx]
    fits = np.isfinite(dur)
    no_fit = ~fits
    cnt = np.broadcast_to(counts, dur.shape)
    # a last sentinel entry keeps the indices valid when nothing fits at all
    used = np.append(ji + 1, 0)[point]
    np.copyto(used, cnt, where=no_fit)
    tdp = chips.tdp_w[:, None]
    # Entries that do not fit: busy 1, memory-busy 0, as in solve.
    no_fit_power = tdp * (e.power_idle + (e.power_busy - e.power_idle)
                          * np.clip(1.0 + DECODE_BOUND_POWER * 0.0, 0.0, 1.0))
    power = np.append(power_at, 0.0)[point]
    np.copyto(power, np.broadcast_to(no_fit_power, power.shape), where=no_fit)
    power *= used  # used * chip_power
    idle = np.subtract(cnt, used, out=work.get("idle", dur.shape, dtype=np.int64))
    idle_power = np.multiply(idle, tdp, out=work.get("idle_power", dur.shape))
    idle_power *= e.power_idle
    power += idle_power
    bound = np.append(bound_at, 0)[point]
    np.copyto(bound, BOUND_CODE["memory_capacity"], where=no_fit)
    with np.errstate(divide="ignore", invalid="ignore"):
        tps = kernel.tokens_per_s(dur)
        if np.shape(tps) != dur.shape:
            tps = np.array(np.broadcast_to(tps, dur.shape), dtype=float)
        np.copyto(tps, 0.0, where=no_fit)
        mfu = np.divide(kernel.model_flops(), dur)
        mfu /= np.multiply(cnt, chips.peak_flops[:, None], out=idle_power)
        np.copyto(mfu, 0.0, where=no_fit)
    np.nan_to_num(mfu, copy=False)
    layout = np.append(tp * pp, 1)[point]
    beyond = fits & beyond_useful_range(cnt, used, layout)
    return GridSolution(duration_s=dur, tokens_per_s=tps, mfu=mfu, power_w=power, fits=fits,
                        bound=bound, used=used, beyond_useful_range=beyond)


def _grid_from_solution(sol: Solution, a_count: int) -> GridSolution:
    shape = (a_count, sol.counts.size)
    return GridSolution(
        duration_s=sol.duration_s.reshape(shape), tokens_per_s=sol.tokens_per_s.reshape(shape),
        mfu=sol.mfu.reshape(shape), power_w=sol.power_w.reshape(shape),
        fits=sol.fits.reshape(shape), bound=sol.bound.reshape(shape),
        used=sol.used.reshape(shape),
        beyond_useful_range=(sol.fits & beyond_useful_range(sol.count, sol.used,
                                                            sol.tp * sol.pp)).reshape(shape))


def _fallback_layout(kernel, chips: ChipArrays, a_idx, cnt, cfgs):
    """For counts where nothing fits: the most memory-saving layout, to report its numbers."""
    cpn = chips.chips_per_node[a_idx]
    tps = np.unique(cfgs[:, 0])
    pps = np.unique(cfgs[:, 1])
    tp = np.ones_like(cnt)
    for t in tps:
        tp = np.where((t <= cpn) & (t <= cnt), t, tp)
    pp = np.ones_like(cnt)
    for p in pps:
        pp = np.where(p * tp <= cnt, p, pp)
    var = np.full_like(cnt, int(cfgs[:, 2].max()))
    return tp, pp, var


def _zero_stage(kernel, c, tp, pp, dp, var, detail) -> np.ndarray:
    """Lowest ZeRO stage that fits (variant 0 allows 0-2 at equal time; variant 1 is 3)."""
    if not isinstance(kernel, TrainingKernel):
        return np.zeros_like(dp)
    stage = np.where((var & 1) == 1, 3, 2)
    ep = detail["ep"]
    full = (var & 4) == 4
    for s in (1, 0):
        w, g, o, a = kernel.memory(c, tp, pp, dp, ep, np.full_like(dp, s), full)
        ok = (w + g + o + a <= c.mem_bytes) & (stage <= 2)
        stage = np.where(ok, s, stage)
    return np.where(dp > 1, stage, 0)


def _restage(kernel, c, tp, pp, dp, var, detail, stage):
    """Memory breakdown at the reported ZeRO stage."""
    if not isinstance(kernel, TrainingKernel):
        return detail
    w, g, o, a = kernel.memory(c, tp, pp, dp, detail["ep"], np.where(dp > 1, stage, 3),
                               (var & 4) == 4)
    out = dict(detail)
    out.update(weights=w, gradients=g, optimizer=o, activations=a, total=w + g + o + a)
    return out

"""Mixed-chip placements: one training job pipelined over two pools of different chips.

As in HetPipe and Metis, the model's layers are split into two pipeline stages, one per pool,
with layers allocated in proportion to each pool's throughput so that neither stage idles;
the pipeline runs at the pace of its slower stage, less a cross-pool penalty.

Per-chip speed and memory come from the homogeneous estimates: a pool of n chips holding a
fraction f of the layers does per chip what a pool of n/f chips does on the whole model, so its
per-chip rate and whether it fits are read off the grid at that equivalent count (the nearest
grid count at or below it, interpolated in log-count for the rate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Pipelining across two pools loses to bubbles and stage imbalance (layers are whole), and the
# stage boundary crosses the scale-out network rather than the scale-up link.
HETERO_EFFICIENCY = 0.9
# Activations forward plus their gradients backward cross the stage boundary: 2 x hidden x 2 B.
BOUNDARY_BYTES_PER_TOKEN_PER_HIDDEN = 4.0


@dataclass(frozen=True)
class Grid:
    """A homogeneous estimate grid as the split needs it: [accelerator, count] arrays."""

    counts: np.ndarray  # [G] ascending
    duration_s: np.ndarray  # [A, G]
    fits: np.ndarray  # [A, G]
    power_w: np.ndarray  # [A, G]


@dataclass(frozen=True)
class Splits:
    """Candidate two-pool splits, one per element."""

    pool_a: np.ndarray  # indices into the planner's candidate pool arrays
    pool_b: np.ndarray
    count_a: np.ndarray
    count_b: np.ndarray
    layers_a: np.ndarray
    layers_b: np.ndarray
    run_s: np.ndarray
    power_w: np.ndarray

    def __len__(self) -> int:
        return len(self.pool_a)


def _node_sizes(capacity: np.ndarray, cpn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole-node group sizes per pool: 1, 2, 4, ... nodes and every node it has. [P, K]."""
    nodes = capacity // cpn
    k = int(np.floor(np.log2(max(int(nodes.max(initial=1)), 1)))) + 2
    mult = np.concatenate([2 ** np.arange(k - 1), [0]])[None, :].repeat(len(nodes), 0)
    mult[:, -1] = nodes
    sizes = mult * cpn[:, None]
    ok = (mult >= 1) & (mult <= nodes[:, None])
    ok[:, -1] &= ~np.isin(nodes, 2 ** np.arange(k - 1))  # full pool already listed
    return sizes, ok


def _rate(grid: Grid, acc: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, ...]:
    """Jobs per chip-second, watts per chip and fits, at equivalent whole-model count m."""
    g = grid.counts
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.searchsorted(g, m, side="right") - 1
        ok = lo >= 0
        lo_c = np.clip(lo, 0, len(g) - 1)
        d_lo = grid.duration_s[acc, lo_c]
        ok &= grid.fits[acc, lo_c] & np.isfinite(d_lo) & (d_lo > 0)
        r_lo = 1.0 / (d_lo * g[lo_c])
        hi = np.clip(lo + 1, 0, len(g) - 1)
        d_hi = grid.duration_s[acc, hi]
        hi_ok = (lo + 1 < len(g)) & grid.fits[acc, hi] & np.isfinite(d_hi) & (hi > lo_c)
        r_hi = 1.0 / (d_hi * g[hi])
        t = (np.log(m) - np.log(g[lo_c])) / (np.log(g[hi]) - np.log(g[lo_c]))
        rate = np.where(hi_ok, r_lo + (r_hi - r_lo) * np.clip(t, 0, 1), r_lo)
        watts = grid.power_w[acc, lo_c] / g[lo_c]
    return np.where(ok, rate, 0.0), np.where(ok, watts, 0.0), ok


def split_candidates(
    *,
    pool_center: np.ndarray,
    pool_acc: np.ndarray,
    capacity: np.ndarray,
    chips_per_node: np.ndarray,
    scaleout_gbps: np.ndarray,
    min_count: int,
    max_count: int,
    grid: Grid,
    layers: int,
    hidden: int,
    tokens: float,
    prune: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    | None = None,
) -> Splits | None:
    """Every two-pool split in one center of distinct chips whose total is in the count range.

    `prune(pool_a, pool_b, count_a, count_b, run_lower_bound_s)` may return a mask of the
    splits worth the full estimate: run_lower_bound_s assumes each chip at its best per-chip
    rate on the grid, so a split whose bound is already beaten can be dropped early.
    """
    p = len(pool_center)
    if p < 2 or layers < 2:
        return None
    order = np.argsort(pool_center, kind="stable")
    pa_list, pb_list = [], []
    for d in range(1, p):
        i, j = order[:-d], order[d:]
        same = pool_center[i] == pool_center[j]
        if not same.any():
            break
        keep = same & (pool_acc[i] != pool_acc[j])
        pa_list.append(i[keep])
        pb_list.append(j[keep])
    pa = np.concatenate(pa_list) if pa_list else np.zeros(0, dtype=np.int64)
    pb = np.concatenate(pb_list) if pb_list else np.zeros(0, dtype=np.int64)
    if len(pa) == 0:
        return None
    sizes, size_ok = _node_sizes(capacity, chips_per_node)
    na = sizes[pa][:, :, None]
    nb = sizes[pb][:, None, :]
    total = na + nb
    ok = size_ok[pa][:, :, None] & size_ok[pb][:, None, :] & (total >= min_count) & (
        total <= max_count)
    q, ka, kb = np.nonzero(ok)
    if len(q) == 0:
        return None
    pa, pb = pa[q], pb[q]
    na, nb = sizes[pa, ka].astype(float), sizes[pb, kb].astype(float)
    aa, ab = pool_acc[pa], pool_acc[pb]
    if prune is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            per_chip = np.where(grid.fits, 1.0 / (grid.duration_s * grid.counts[None, :]), 0.0)
            best = per_chip.max(axis=1)
            run_lb = HETERO_EFFICIENCY ** -1 / (na * best[aa] + nb * best[ab])
        keep = prune(pa, pb, na, nb, run_lb)
        if not keep.any():
            return None
        pa, pb, na, nb, aa, ab = pa[keep], pb[keep], na[keep], nb[keep], aa[keep], ab[keep]

    frac_a = na / (na + nb)
    for _ in range(3):
        ra, _, _ = _rate(grid, aa, na / frac_a)
        rb, _, _ = _rate(grid, ab, nb / (1.0 - frac_a))
        speed_a, speed_b = na * ra, nb * rb
        both = speed_a + speed_b
        frac_a = np.where(both > 0, speed_a / np.where(both > 0, both, 1.0), frac_a)
        frac_a = np.clip(frac_a, 1.0 / layers, 1.0 - 1.0 / layers)
    layers_a = np.clip(np.rint(frac_a * layers), 1, layers - 1).astype(np.int64)
    frac_a = layers_a / layers
    ra, wa, ok_a = _rate(grid, aa, na / frac_a)
    rb, wb, ok_b = _rate(grid, ab, nb / (1.0 - frac_a))
    with np.errstate(divide="ignore", invalid="ignore"):
        stage_a = frac_a / (na * ra)  # seconds per job on stage a
        stage_b = (1.0 - frac_a) / (nb * rb)
        run_s = np.maximum(stage_a, stage_b) / HETERO_EFFICIENCY
    nodes = np.minimum(na // chips_per_node[pa], nb // chips_per_node[pb])
    link_gbs = np.maximum(nodes, 1) * np.minimum(scaleout_gbps[aa], scaleout_gbps[ab]) / 8.0
    boundary_s = tokens * BOUNDARY_BYTES_PER_TOKEN_PER_HIDDEN * hidden / (link_gbs * 1e9)
    run_s = np.maximum(run_s, boundary_s)
    valid = ok_a & ok_b & np.isfinite(run_s) & (run_s > 0)
    if not valid.any():
        return None
    return Splits(
        pool_a=pa[valid], pool_b=pb[valid],
        count_a=na[valid].astype(np.int64), count_b=nb[valid].astype(np.int64),
        layers_a=layers_a[valid], layers_b=layers - layers_a[valid],
        run_s=run_s[valid], power_w=(na * wa + nb * wb)[valid],
    )

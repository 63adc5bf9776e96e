"""Whole-gang greedy placement shared by the priority policies (FIFO, SRTF, LAS, EDF, ...).

Jobs are taken in priority order; each gets its best-scoring pool that still has room for its
whole gang, with fraction 1. This is what a priority scheduler does each round, and it leaves
the engine's mechanism nothing to split.
"""

from __future__ import annotations

import numpy as np

NEG = -np.inf


def place_whole(
    order: np.ndarray,
    score: np.ndarray,
    chips: np.ndarray,
    capacity: np.ndarray,
    *,
    strict: bool = False,
    fixed: np.ndarray | None = None,
) -> np.ndarray:
    """X[j, p] in {0, 1}: jobs in `order` each take their highest-`score` pool with room.

    `score` is [J, P] with -inf where the job may not go. `strict` stops at the first job that
    fits nowhere (FIFO's head-of-line rule); otherwise later jobs backfill. `fixed` ([J] pool
    index or -1) pins jobs to a pool before anyone else is placed (non-preemptive FIFO).
    """
    n_jobs, n_pools = score.shape
    x = np.zeros((n_jobs, n_pools))
    free = np.asarray(capacity, dtype=float).copy()
    chips = np.asarray(chips, dtype=float)
    placed = np.zeros(n_jobs, dtype=bool)
    if fixed is not None:
        _pin(fixed, score, chips, free, x, placed)
    if n_jobs == 0 or n_pools == 0:
        return x
    min_chips = chips[order].min() if len(order) else 0.0
    for j in order:
        if placed[j]:
            continue
        if free.max() < min_chips:
            break
        row = np.where(free >= chips[j], score[j], NEG)
        p = int(np.argmax(row))
        if not np.isfinite(row[p]):
            if strict:
                break
            continue
        x[j, p] = 1.0
        free[p] -= chips[j]
        placed[j] = True
    return x


def _pin(fixed: np.ndarray, score: np.ndarray, chips: np.ndarray, free: np.ndarray,
         x: np.ndarray, placed: np.ndarray) -> None:
    """Place each job of `fixed` on its pool, in job order while the pool has room. When
    every pinned gang fits (the common case) that is one vectorised step."""
    rows = np.flatnonzero(fixed >= 0)
    pools = fixed[rows].astype(np.int64)
    ok = np.isfinite(score[rows, pools])
    rows, pools = rows[ok], pools[ok]
    need = np.bincount(pools, weights=chips[rows], minlength=len(free))
    if (need <= free).all():
        x[rows, pools] = 1.0
        free -= need
        placed[rows] = True
        return
    for j, p in zip(rows.tolist(), pools.tolist(), strict=True):
        if chips[j] <= free[p]:
            x[j, p] = 1.0
            free[p] -= chips[j]
            placed[j] = True


def hashed_preference(job_ids: np.ndarray, n_pools: int) -> np.ndarray:
    """[J, P] a fixed pseudo-random preference per (job, pool): Gavel's agnostic FIFO picks a
    random free worker type; this is the same choice made reproducible without a seed."""
    j = np.asarray(job_ids, dtype=np.uint64).reshape(-1, 1)
    p = np.arange(n_pools, dtype=np.uint64).reshape(1, -1)
    h = (j * np.uint64(0x9E3779B97F4A7C15) + p * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(
        0xFFFFFFFF
    )
    h = (h ^ (h >> np.uint64(15))) * np.uint64(0x2C1B3C6D) & np.uint64(0xFFFFFFFF)
    return h.astype(float) / 2.0**32


def sticky(score: np.ndarray, running_on: np.ndarray | None, bonus: float = 0.05) -> np.ndarray:
    """Raise a job's score on the pool it runs on now, so near-ties do not cause migrations."""
    if running_on is None:
        return score
    out = score.copy()
    rows = np.flatnonzero(np.asarray(running_on) >= 0)
    cols = np.asarray(running_on)[rows].astype(int)
    ok = cols < score.shape[1]
    rows, cols = rows[ok], cols[ok]
    vals = out[rows, cols]
    fin = np.isfinite(vals)
    out[rows[fin], cols[fin]] = vals[fin] + bonus * np.abs(vals[fin])
    return out

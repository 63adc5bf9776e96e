"""Shared views of a `PolicyState`: where each job can run, its agnostic and aware throughputs.

Gavel's heterogeneity-agnostic baselines replace the throughput matrix by one that treats every
accelerator alike; here that is each job's reference rate on every pool it can run on, which
keeps work units (and so remaining-time estimates) meaningful.
"""

from __future__ import annotations

import numpy as np

from suanli.policies.base import Allocation, PolicyState


def runnable(state: PolicyState) -> np.ndarray:
    """[J, P] bool: the job's whole gang fits the pool and the job has a throughput there."""
    thr = np.asarray(state.throughput, dtype=float).reshape(state.n_jobs, state.n_pools)
    chips = np.asarray(state.num_chips, dtype=float)
    cap = np.asarray(state.capacity, dtype=float)
    return (thr > 0) & (chips[:, None] <= cap[None, :]) & (cap[None, :] > 0)


def aware_throughput(state: PolicyState, ok: np.ndarray | None = None) -> np.ndarray:
    """[J, P] measured throughput, zero wherever the job cannot run."""
    ok = runnable(state) if ok is None else ok
    thr = np.asarray(state.throughput, dtype=float).reshape(ok.shape)
    return np.where(ok, thr, 0.0)


def reference_rate(state: PolicyState) -> np.ndarray:
    """[J] the job's rate on the reference pool, else the mean of its positive throughputs."""
    thr = np.asarray(state.throughput, dtype=float).reshape(state.n_jobs, state.n_pools)
    pos = thr > 0
    counts = pos.sum(axis=1)
    mean = np.where(counts > 0, np.where(pos, thr, 0.0).sum(axis=1) / np.maximum(counts, 1), 0.0)
    if state.reference_throughput is not None:
        ref = np.asarray(state.reference_throughput, dtype=float)
        return np.where(np.isfinite(ref) & (ref > 0), ref, mean)
    return mean


def agnostic_throughput(state: PolicyState, ok: np.ndarray | None = None) -> np.ndarray:
    """[J, P] every pool the job can run on at its reference rate (all chips treated alike)."""
    ok = runnable(state) if ok is None else ok
    return np.where(ok, reference_rate(state)[:, None], 0.0)


def equal_share_rate(thr: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """[J] throughput under an equal slice of every pool (Gavel's proportional share).

    x[j, p] = capacity[p] / sum(capacity) for every job, so the rate is the capacity-weighted
    mean of the job's row. It does not depend on the number of jobs, which only scales every
    job's share alike and so leaves a max-min solution unchanged.
    """
    cap = np.asarray(capacity, dtype=float)
    total = cap.sum()
    if total <= 0:
        return np.zeros(thr.shape[0])
    return thr @ (cap / total)


def chips_of(state: PolicyState) -> np.ndarray:
    return np.asarray(state.num_chips, dtype=float)


def priority_of(state: PolicyState) -> np.ndarray:
    w = np.asarray(state.priority, dtype=float)
    return np.where(np.isfinite(w) & (w > 0), w, 1.0)


def empty(state: PolicyState, note: str = "", rejected: frozenset[int] = frozenset()) -> Allocation:
    return Allocation(np.zeros((state.n_jobs, state.n_pools)), rejected=rejected, note=note)


def group_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group identical rows: (index of one representative per group, group of every row)."""
    m = np.ascontiguousarray(np.asarray(matrix, dtype=float) + 0.0)  # -0.0 -> 0.0
    if m.shape[0] == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    keys = m.view(np.dtype((np.void, m.dtype.itemsize * m.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def group_columns(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group identical columns, as `group_rows` on the transpose."""
    return group_rows(np.asarray(matrix).T)

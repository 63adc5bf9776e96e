"""Tiny policies the engine tests drive the engine with (plain functions of PolicyState)."""

from __future__ import annotations

import numpy as np

from suanli.policies.base import Allocation, PolicyState


def fastest_first(state: PolicyState) -> Allocation:
    """Arrival order; each job takes its fastest pool with room for the whole gang."""
    x = np.zeros((state.n_jobs, state.n_pools))
    cap = np.asarray(state.capacity, dtype=float).copy()
    for j in np.lexsort((state.job_ids, state.arrival_s)):
        for p in np.argsort(-state.throughput[j], kind="stable"):
            if state.throughput[j, p] > 0 and cap[p] >= state.num_chips[j]:
                x[j, p] = 1.0
                cap[p] -= state.num_chips[j]
                break
    return Allocation(x)


def equal_share(state: PolicyState) -> Allocation:
    """Every job asks for an equal time share of every pool it can run on (forces sharing,
    which exercises preemption)."""
    ok = state.throughput > 0
    x = np.where(ok, 1.0, 0.0)
    load = (x * state.num_chips[:, None]).sum(axis=0)
    scale = np.where(load > 0, np.minimum(1.0, state.capacity / np.maximum(load, 1e-9)), 0.0)
    x = x * scale[None, :]
    rows = x.sum(axis=1, keepdims=True)
    return Allocation(np.where(rows > 1, x / np.maximum(rows, 1e-9), x))


fastest_first.policy_name = "fastest_first"  # type: ignore[attr-defined]
equal_share.policy_name = "equal_share"  # type: ignore[attr-defined]

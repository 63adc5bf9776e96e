"""Synthetic scheduler states for tests and benchmarks (no I/O, deterministic by seed).

Jobs come from `n_job_types` types (a throughput per accelerator kind and gang size, as in
Gavel's table of 26 models x {1, 2, 4, 8} GPUs); pools each hold one of `n_accelerators` kinds,
and a job's throughput on a pool is its type's throughput on the pool's kind. With
`n_job_types=None` every job gets its own random row and every pool its own speed factor
(the worst case for grouping).
"""

from __future__ import annotations

import numpy as np

from suanli.policies.base import PolicyState

GANG_SIZES = np.array([1, 2, 4, 8])


def random_state(
    seed: int,
    n_jobs: int,
    n_pools: int,
    *,
    n_job_types: int | None = 26,
    n_accelerators: int = 8,
    chips_per_pool: tuple[int, int] = (8, 64),
    now_s: float = 86_400.0,
) -> PolicyState:
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, n_accelerators, n_pools)
    speed_of_kind = np.sort(rng.uniform(0.2, 1.0, n_accelerators))[::-1]
    capacity = rng.integers(chips_per_pool[0] // 8, chips_per_pool[1] // 8 + 1, n_pools) * 8
    price = 10.0 + 40.0 * speed_of_kind[kind] + rng.uniform(0, 2, n_pools).round(1)
    gang = GANG_SIZES[rng.integers(0, GANG_SIZES.size, n_jobs)]
    if n_job_types is None:
        base = rng.uniform(0.5, 20.0, n_jobs)
        affinity = rng.uniform(0.3, 1.0, (n_jobs, n_pools))
        thr = base[:, None] * affinity * rng.uniform(0.2, 1.0, n_pools)[None, :]
        thr *= gang[:, None] ** 0.8
    else:
        jtype = rng.integers(0, n_job_types, n_jobs)
        base = rng.uniform(0.5, 20.0, n_job_types)
        gain = rng.uniform(1.0, 10.0, n_job_types)  # speed-up from slowest to fastest kind
        rank = (speed_of_kind - speed_of_kind.min()) / max(np.ptp(speed_of_kind), 1e-9)
        per_kind = base[:, None] * gain[:, None] ** rank[None, :]  # [types, kinds]
        thr = per_kind[jtype][:, kind] * (gang[:, None] ** 0.8)
        # some job types cannot run on some kinds (memory), as a whole type
        cannot = rng.random((n_job_types, n_accelerators)) < 0.05
        thr = np.where(cannot[jtype][:, kind], 0.0, thr)
    arrival = np.sort(rng.uniform(0, now_s, n_jobs))
    remaining = rng.lognormal(np.log(5e4), 1.5, n_jobs)
    attained = rng.uniform(0, 1, n_jobs) * (now_s - arrival) * gang
    deadline = np.where(rng.random(n_jobs) < 0.3, now_s + rng.uniform(600, 3e5, n_jobs), np.inf)
    running_on = np.where(rng.random(n_jobs) < 0.3, rng.integers(0, n_pools, n_jobs), -1)
    return PolicyState(
        now_s=now_s,
        job_ids=np.arange(n_jobs) + 1000,
        num_chips=gang.astype(float),
        priority=np.where(rng.random(n_jobs) < 0.1, 2.0, 1.0),
        arrival_s=arrival,
        remaining_work=remaining,
        attained_service_s=attained,
        throughput=thr,
        pool_ids=[f"c{p // 4}/pool{p}" for p in range(n_pools)],
        pool_accelerators=[f"acc{k}" for k in kind],
        capacity=capacity.astype(float),
        price_per_chip_hour=price,
        deadline_s=deadline,
        tenant=[None] * n_jobs,
        running_on=running_on,
        reference_throughput=per_ref(thr),
    )


def per_ref(thr: np.ndarray) -> np.ndarray:
    pos = thr > 0
    return np.where(pos.any(axis=1), np.where(pos, thr, 0).sum(1) / np.maximum(pos.sum(1), 1), 0.0)

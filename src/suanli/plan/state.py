"""What the network is busy with, as the planner needs it: free chips and work ahead per pool."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job holding `chips` of a pool that will release them in `remaining_s`."""

    chips: int
    remaining_s: float


@dataclass(frozen=True)
class PoolState:
    """One pool's load.

    `free_chips` are free now (None: the pool's capacity less the running jobs' chips).
    `running` says when busy chips come free; busy chips not covered by `running` are out of
    service (down or held indefinitely) and never count. `queued_chip_s` is queued work ahead of
    a new job, in chip-seconds, spread over the whole pool.
    """

    free_chips: int | None = None
    running: tuple[RunningJob, ...] = ()
    queued_chip_s: float = 0.0

    def __post_init__(self) -> None:
        jobs = tuple(j if isinstance(j, RunningJob) else RunningJob(*j) for j in self.running)
        object.__setattr__(self, "running", jobs)

    def free_now(self, capacity: int) -> int:
        if self.free_chips is not None:
            return max(0, min(self.free_chips, capacity))
        return max(0, capacity - sum(j.chips for j in self.running))

    def wait_s(self, counts: np.ndarray, capacity: int) -> np.ndarray:
        """Seconds until `counts` chips can start: 0 if free now, else until enough running
        jobs end plus the queued work ahead spread over the pool; inf if never."""
        counts = np.asarray(counts)
        free = self.free_now(capacity)
        if self.running:
            ends = np.array(sorted((j.remaining_s, j.chips) for j in self.running))
            end_s, freed = ends[:, 0], free + np.cumsum(ends[:, 1])
        else:
            end_s, freed = np.zeros(0), np.zeros(0)
        if len(end_s):
            idx = np.searchsorted(freed, counts, side="left")
            until = np.where(idx < len(end_s), end_s[np.minimum(idx, len(end_s) - 1)], np.inf)
        else:
            until = np.full(counts.shape, np.inf)
        queue = self.queued_chip_s / capacity if capacity else np.inf
        wait = np.where(counts <= free, 0.0, until + queue)
        return np.where(counts <= capacity, wait, np.inf)


@dataclass(frozen=True)
class NetworkState:
    """The load of a network's pools, keyed "center/pool"; pools not named are idle.

    `dataset_copies`: dataset name -> regions that already hold a copy (besides its home);
    moving it to one of those is free, and from the nearest one otherwise."""

    pools: Mapping[str, PoolState] = field(default_factory=dict)
    dataset_copies: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def pool(self, center_id: str, pool_id: str) -> PoolState | None:
        return self.pools.get(f"{center_id}/{pool_id}")

    @classmethod
    def idle(cls) -> NetworkState:
        return cls()

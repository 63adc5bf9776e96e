"""The policy interface: a plain function of the scheduler's state that returns an allocation.

Columns are pools (a Gavel cluster `v100:36,p100:36,k80:36` is three pools; a network has one
column per center pool). A policy returns time fractions, as Gavel does: X[j, p] is the share
of wall time job j should spend on pool p, rows summing to at most 1 and the gang-weighted
column sums (X[:, p] * num_chips) within each pool's capacity. The engine's mechanism turns the
fractions into whole-gang placements round by round, so one mechanism serves every policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ElasticOptions:
    """The counts an elastic policy may give each job and the job's speed at each.

    Rows are the PolicyState's jobs; a fixed-count job has one option (its num_chips). Counts
    are padded with 0 (no option) to the widest job's number of candidates.
    """

    counts: np.ndarray  # [J, C] int chip counts, ascending per row, 0 = no option
    throughput: np.ndarray  # [J, C, P] work units/s on pool p at counts[j, c] (0 = cannot)
    restore_s: np.ndarray  # [J] what checkpoint + restore costs a running job that resizes
    elastic: np.ndarray  # [J] bool: the job allows more than its current count


@dataclass
class PolicyState:
    """What a policy may see. Arrays are indexed [job] or [job, pool]."""

    now_s: float
    job_ids: np.ndarray  # [J] int
    num_chips: np.ndarray  # [J] gang size
    priority: np.ndarray  # [J] weight (>0)
    arrival_s: np.ndarray  # [J]
    remaining_work: np.ndarray  # [J] in work units (steps)
    attained_service_s: np.ndarray  # [J] chip-seconds received so far (all pools)
    throughput: np.ndarray  # [J, P] work units/s on pool p at num_chips (0 = cannot run there)
    pool_ids: list[str]  # [P] "center/pool"
    pool_accelerators: list[str]  # [P] catalog id
    capacity: np.ndarray  # [P] chips available to the policy (up pools only)
    price_per_chip_hour: np.ndarray  # [P]
    deadline_s: np.ndarray  # [J] absolute deadline, inf = none
    tenant: list[str | None] = field(default_factory=list)  # [J]
    running_on: np.ndarray | None = None  # [J] pool index the job runs on now, -1 if not running
    reference_throughput: np.ndarray | None = None  # [J] work units/s on the reference pool
    # Elastic jobs' counts and speeds (None: no job is elastic). Fixed-count policies ignore
    # it and see every job at its current num_chips.
    elastic: ElasticOptions | None = None

    @property
    def n_jobs(self) -> int:
        return int(self.job_ids.shape[0])

    @property
    def n_pools(self) -> int:
        return len(self.pool_ids)


@dataclass
class Allocation:
    """Time fractions X[j, p] and the set of jobs the policy rejects (deadline admission).

    An elastic policy also returns the count each job runs at (`num_chips`, [J]; None or 0:
    keep the current count); its fractions are then for the job at that count.
    """

    fractions: np.ndarray  # [J, P]
    rejected: frozenset[int] = frozenset()  # job ids
    note: str = ""
    num_chips: np.ndarray | None = None  # [J] chosen gang size (elastic jobs), 0 = keep


Policy = Callable[[PolicyState], Allocation]


@dataclass(frozen=True, slots=True)
class PolicyTraits:
    """What the engine needs to know about a policy, declared where it is registered.

    agnostic: blind to chip types (Gavel shuffles the pool order for it each round, and the
    broker may place its jobs on any chip). work_conserving: a waiting job may run on chips
    the allocation leaves idle (False: strict, like FIFO). placement_aware: the policy's own
    pool choice is the placement (it already weighs price or speed per pool); the broker keeps it.
    elastic: chooses job counts (`Allocation.num_chips`); the engine offers it every job's
    candidate counts (`PolicyState.elastic`). head_of_queue: gives chips strictly in arrival
    order and to no job behind the first gang that fits nowhere (FIFO); the engine then shows
    it only the jobs on chips and the head of the queue (`RoundsMixin._policy_view`), so a
    queue of thousands costs it nothing.
    """

    agnostic: bool = False
    work_conserving: bool = True
    placement_aware: bool = False
    elastic: bool = False
    head_of_queue: bool = False

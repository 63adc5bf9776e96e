"""Records the engine trades with its callers: jobs, placements, transitions, backend events."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from suanli.jobs.spec import JobSpec
    from suanli.plan.vouchers import VoucherTerms


class JobState(StrEnum):
    """A job's lifecycle. Terminal states are final; every job ends in one."""

    PENDING = "pending"  # submitted, arrival time not reached
    QUEUED = "queued"  # arrived, waiting for chips
    STAGING = "staging"  # placed; its dataset is moving to the pool's region
    STARTING = "starting"  # placed; restoring from its checkpoint
    RUNNING = "running"
    CHECKPOINTING = "checkpointing"  # saving state before it is preempted
    PREEMPTED = "preempted"  # off its chips, waiting to be placed again
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def on_chips(self) -> bool:
        """Holds chips right now."""
        return self in ON_CHIPS_STATES


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
ON_CHIPS_STATES = frozenset({JobState.STAGING, JobState.STARTING, JobState.RUNNING,
                             JobState.CHECKPOINTING})
WAITING_STATES = frozenset({JobState.QUEUED, JobState.PREEMPTED})


@dataclass(frozen=True, slots=True)
class ElasticSpeed:
    """An elastic job's choices: the chip counts it may run on and its speed at each.

    `throughput_by_count[c]` maps pool id -> work units per second with `c` chips on that
    pool (same work units as `EngineJob.throughput`, so remaining work means the same at
    every count); a pool missing from a count's map cannot run the job at that count.
    """

    counts: tuple[int, ...]  # sorted, distinct, >= 1; the job's num_chips is one of them
    throughput_by_count: dict[int, dict[str, float]]

    def __post_init__(self) -> None:
        from suanli.errors import SuanliError

        if not self.counts or list(self.counts) != sorted(set(self.counts)) or self.counts[0] < 1:
            raise SuanliError(f"elastic counts must be sorted, distinct and >= 1, got "
                              f"{self.counts}", field="elastic.counts", value=self.counts)
        missing = [c for c in self.counts if c not in self.throughput_by_count]
        if missing:
            raise SuanliError(f"elastic: no throughput for counts {missing}",
                              field="elastic.throughput_by_count", value=missing)

    @property
    def min_count(self) -> int:
        return self.counts[0]

    @property
    def max_count(self) -> int:
        return self.counts[-1]


@dataclass(frozen=True, slots=True)
class EngineJob:
    """One job as the engine sees it: a gang of chips, an amount of work and its speed per pool.

    `throughput` maps pool id -> work units per second with `num_chips` chips on that pool;
    a pool missing from the map (or with 0) cannot run the job. Work units are whatever the
    source counts in: steps (Gavel), reference seconds (Philly), tokens (job specs).

    An elastic job (`elastic` set) may be re-sized by an elastic policy to any of its counts;
    `num_chips` and `throughput` are the count it starts from (`engine/elastic.py`).
    """

    job_id: str
    num_chips: int
    total_work: float
    throughput: dict[str, float]
    arrival_s: float
    priority: float = 1.0
    tenant: str | None = None
    deadline_s: float = math.inf
    checkpoint_interval_s: float = 3600.0
    restore_s: float = 0.0
    max_retries: int = 3
    meta: dict[str, Any] = field(default_factory=dict)
    spec: JobSpec | None = None  # a submitted job's spec: the broker plans it where it is placed
    objective: str = "time"  # the broker's ranking for a job without a spec (cost | time)
    dataset: DataNeed | None = None  # the data it reads, and where it lives
    vouchers: tuple[VoucherTerms, ...] = ()  # its tenant's: the broker ranks by the net price
    elastic: ElasticSpeed | None = None  # counts it may run on, and its speed at each


@dataclass(frozen=True, slots=True)
class DataNeed:
    """A job's dataset: moved to the pool's region before the job runs, once per region."""

    name: str
    size_gb: float
    region: str  # where the first copy lives


@dataclass(frozen=True, slots=True)
class PlacementPart:
    """One pool's share of a mixed-chip gang: its chips, the nodes they sit on, its layers."""

    pool_id: str
    accelerator: str
    count: int
    nodes: tuple[tuple[int, int], ...] = ()
    layers: int = 0

    def to_dict(self) -> dict[str, Any]:
        center, _, pool = self.pool_id.partition("/")
        return {"pool_id": self.pool_id, "center": center, "pool": pool or self.pool_id,
                "accelerator": self.accelerator, "count": self.count,
                "nodes": [list(n) for n in self.nodes], "layers": self.layers}


@dataclass(slots=True, eq=True, unsafe_hash=True)
class Placement:
    """Where a job runs: a whole gang in one pool, spread over named nodes, or a mixed-chip
    gang over two pools of one center (`parts`, the first is the primary: `pool_id`,
    `accelerator` and `nodes` are its; `count` is the whole gang). `count` is the word the
    planner, the store and the service use too (`num_chips` stays as a read-only alias).

    A value: never changed once built (a new run gets a new one). Not `frozen` because the
    engine builds one for every start, and a frozen dataclass's `__init__` costs 1.9 us to a
    plain one's 0.3 (1.2 s of a Philly replay under max-min fairness: 850,000 starts).

    `throughput`, `work_remaining` and `restore_s` describe the run the engine expects (the
    simulated backend runs exactly that; a real backend may ignore them).
    """

    pool_id: str
    count: int
    nodes: tuple[tuple[int, int], ...] = ()  # (node index in the pool, chips on it)
    accelerator: str = ""
    center: str = ""
    throughput: float = 0.0
    work_remaining: float = 0.0
    restore_s: float = 0.0
    planned_cost: float | None = None  # the broker's option: compute + egress, in currency
    planned_run_s: float | None = None
    egress_cost: float = 0.0  # of the dataset's move to this pool (charged at staging)
    note: str = ""  # why the broker placed it here and not where it planned (empty: as planned)
    staging_s: float = 0.0  # the dataset's transfer before the run (included in restore_s)
    parts: tuple[PlacementPart, ...] = ()  # a mixed-chip gang's pools (empty: one pool)

    @property
    def num_chips(self) -> int:
        """The engine's older name for `count` (the gang's chips)."""
        return self.count

    @property
    def mixed(self) -> bool:
        return len(self.parts) > 1

    def to_dict(self) -> dict[str, Any]:
        data = {
            "pool_id": self.pool_id,
            "count": self.count,
            "nodes": [list(n) for n in self.nodes],
            "accelerator": self.accelerator,
            "center": self.center,
        }
        if self.parts:
            data["parts"] = [part.to_dict() for part in self.parts]
        return data


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change, reported to the listener before the backend acts on it."""

    job_id: str
    old: JobState
    new: JobState
    at_s: float
    placement: Placement | None
    reason: str = ""


BackendEventKind = Literal["succeeded", "failed", "progress", "unplaceable"]
# progress: a note, no change; unplaceable: no live node for the placement (engine/avoid.py)


@dataclass(frozen=True, slots=True)
class BackendEvent:
    """What a backend reports about a job it runs."""

    job_id: str
    kind: BackendEventKind
    at_s: float
    detail: str = ""
    # A failure of the infrastructure (a node or process lost, a start that failed) is
    # retried; a job's own non-zero exit (False) ends it, unless the job listed the code.
    retryable: bool = True


@dataclass(slots=True)
class JobRecord:
    """The engine's view of one job: state, where it runs, and what it has received.

    `done_work` is the work the engine credits the job with at its last state change (an
    estimate from throughput x time; a real backend's `succeeded` event is what ends a job).
    """

    job: EngineJob
    state: JobState = JobState.PENDING
    placement: Placement | None = None
    done_work: float = 0.0
    checkpoint_work: float = 0.0
    start_s: float | None = None  # first time on chips
    finish_s: float | None = None  # terminal time
    retries: int = 0  # job failures retried
    interruptions: int = 0  # infrastructure failures that killed a run
    preemptions: int = 0
    resizes: int = 0  # runs checkpointed and restarted at another count (elastic jobs)
    chip_seconds: float = 0.0
    cost: float = 0.0  # chip time (staging excluded) + egress
    egress_cost: float = 0.0
    data_moved_gb: float = 0.0
    staging_s: float = 0.0
    energy_kwh: float = 0.0
    pools: list[str] = field(default_factory=list)  # pools it ran on, in order, deduplicated
    reason: str = ""
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (at_s, state, reason)

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def attained_work(self) -> float:
        """Work credited so far (same as done_work)."""
        return self.done_work

    @property
    def jct_s(self) -> float | None:
        if self.finish_s is None or self.state is not JobState.SUCCEEDED:
            return None
        return self.finish_s - self.job.arrival_s

    @property
    def queueing_delay_s(self) -> float | None:
        if self.start_s is None:
            return None
        return self.start_s - self.job.arrival_s

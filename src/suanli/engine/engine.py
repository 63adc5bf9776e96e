"""The scheduling engine: one event-driven core for the simulator and the live service.

The engine owns every job's state, decides placements round by round and tells a backend to
start and stop jobs. It never reads a clock other than the one it is given and never sleeps:
`step()` handles everything due at `clock.now()` and says when it next needs to be called.
The simulator calls it from `run()` on a SimClock; the live service calls it a few times
a second on the wall clock with a process backend.

Mechanism (Gavel's, Narayanan et al. OSDI 2020):
- A policy maps the active jobs to time fractions X[j, p] (share of wall time job j should
  spend on pool p). It is recomputed only when the job set or capacity changed, and at most
  once per `realloc_interval_s` (Gavel's 1920 s); in between, new jobs have no allocation and
  run only on chips the allocated jobs leave idle. Outside gavel_mode a strict policy (FIFO:
  it never places a job it did not allocate) is recomputed at the next round whenever a
  waiting job it gave no chips could use idle ones.
- Each round, every job gets priority X[j, p] / (share of pool p's time it received since the
  last reallocation), with received time starting at round_s / 2 per job and pool as in Gavel.
  Whole gangs are placed greedily in priority order (ties: larger deficit, larger X, a job
  that already runs there, the faster pool, the earlier job) on pools with enough chips left.
  A job placed where it already runs keeps running; one that moves or loses its chips is
  checkpointed and pays `restore_s` when it next starts (never on its first start).
- Progress is throughput x time; a checkpoint is taken every `checkpoint_interval_s` of
  productive time and on preemption; a failure (of the job or of its chips) loses the work
  since the last checkpoint. Job failures use up `max_retries`; outages do not.
- Rounds sit on a grid of `round_s` from the first arrival into an idle engine. A round in
  which nothing changed and no job waits (or none runs) is skipped, so the clock jumps from
  event to event when there is nothing to decide. A step that comes after a round was due
  (the wall clock never lands on the grid) runs it then, and the next one `round_s` later.

Placement (Blox's split: the policy decides who, placement decides where): outside gavel_mode,
each job a round starts is placed by a `Placer` (default `BrokerPlacer`, `placement.py`): the
planner's best option that can start now on the live state, within the pools the policy allows
(any chip for a chip-agnostic policy, the chip class it chose otherwise). A placement-aware
policy (declared at registration) keeps its own pool. A job whose dataset lives in another
region first moves it (STAGING, `staging.py`): link-model time, egress charged, once per region.
When the broker's option is a mixed-chip split, the job runs as one gang over both pools
(`mixed.py`): both parts' chips at once, the split's throughput, each part at its own price.

`gavel_mode=True` reproduces Gavel's simulator: rounds run back to back and a round ends
when its longest micro-task ends (at most round_s), pool types are visited in a fixed order
(shuffled each round for heterogeneity-agnostic policies, as Gavel does), a job's priority
is looked up per pool type in that order, and there is no preemption cost.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np

from suanli.engine.avoid import AvoidMixin
from suanli.engine.backend import Backend, run_end_s
from suanli.engine.cluster import Cluster
from suanli.engine.elastic import ElasticMixin, ElasticRows
from suanli.engine.events import EventsMixin
from suanli.engine.failures import FailureScope, FailuresMixin, parse_failure
from suanli.engine.mixed import MixedMixin
from suanli.engine.placement import BrokerPlacer, Choice, PlacementMixin, Placer
from suanli.engine.policy_lookup import policy_name, resolve_policy, resolve_traits
from suanli.engine.priority import PriorityMixin
from suanli.engine.records import RecordsMixin
from suanli.engine.reshape import ReshapeMixin
from suanli.engine.restore import RestoreMixin
from suanli.engine.rounds import DEFAULT_REALLOC_INTERVAL_S, RoundsMixin
from suanli.engine.runs import RunsMixin
from suanli.engine.staging import StagingMixin
from suanli.engine.timers import TimerQueue
from suanli.engine.types import (
    ON_CHIPS_STATES,
    WAITING_STATES,
    EngineJob,
    JobRecord,
    JobState,
    Transition,
)
from suanli.errors import SuanliError
from suanli.policies.base import Policy

__all__ = ["DEFAULT_REALLOC_INTERVAL_S", "Engine", "policy_name", "resolve_policy"]


class Engine(
    EventsMixin, RoundsMixin, PriorityMixin, PlacementMixin, StagingMixin, RunsMixin,
    FailuresMixin, RestoreMixin, RecordsMixin, ReshapeMixin, MixedMixin, AvoidMixin,
    ElasticMixin,
):
    """Drives jobs through their lifecycle against a clock and a backend.

    This class is the facade: construction, the public API and the step loop. The mechanism
    lives in one module per job: records (job columns, state changes), events (timers,
    backend reports), runs (chips, progress, accounting), rounds (allocation and applying
    it), priority (Gavel's placement rule), failures (outages), restore and reshape (a
    network change: `set_cluster`), elastic (re-sizing jobs with a count range).
    """

    def __init__(
        self,
        cluster: Cluster,
        policy: str | Policy,
        clock: Any,
        backend: Backend,
        *,
        round_s: float = 360.0,
        gavel_mode: bool = False,
        listener: Callable[[Transition], None] | None = None,
        seed: int = 0,
        realloc_interval_s: float | None = None,
        work_conserving: bool | None = None,
        record_events: bool = True,
        record_timeline: bool = True,
        placement: str | Placer = "auto",
    ) -> None:
        if round_s <= 0:
            raise SuanliError("round_s must be positive", field="round_s", value=round_s)
        self.cluster = cluster
        self.policy_name = policy_name(policy)
        self.policy: Policy = resolve_policy(policy)
        self.clock = clock
        self.backend = backend
        self.round_s = float(round_s)
        self.gavel_mode = gavel_mode
        self.listener = listener
        self.seed = seed
        if realloc_interval_s is None:
            realloc_interval_s = DEFAULT_REALLOC_INTERVAL_S
        self.realloc_interval_s = float(realloc_interval_s)
        self.traits = resolve_traits(policy)
        if work_conserving is None:
            # Gavel: FIFO jobs without an allocation on a pool are never placed there.
            work_conserving = self.traits.work_conserving
        self.work_conserving = bool(work_conserving)
        self.record_events = record_events
        self.record_timeline = record_timeline
        self._shuffle_pools = gavel_mode and self.traits.agnostic
        self.placer = self._choose_placer(placement)
        self._planned: dict[int, Choice] = {}  # job index -> the broker's choice this round
        self._mixed_thr: dict[int, float] = {}  # running mixed-chip gang -> its split's rate
        self._split_only: set[int] = set()  # fits no single pool, only a mixed-chip split
        self._data_at: dict[str, set[str]] = {}  # dataset name -> regions holding a copy
        self._pool_rng = random.Random(seed + 5)  # Gavel's worker-type shuffler seed
        self._half_round = self.round_s / 2.0

        self._init_pools(cluster)
        self._down_links: dict[frozenset[str], int] = {}
        self._avoid: dict[int, dict[str, float]] = {}  # job index -> pool id -> until (avoid.py)
        self._elastic_rows: dict[int, ElasticRows] = {}  # job index -> speeds (elastic.py)

        # Jobs: records plus NumPy columns indexed by an internal job index.
        self.jobs: dict[str, JobRecord] = {}
        self._has_tenants = False  # some job names a tenant (else policies see None for all)
        self._records: list[JobRecord] = []
        self._index: dict[str, int] = {}
        self._n = 0
        self._grow(1024)
        self._active: dict[int, None] = {}  # arrived, not terminal (insertion ordered)
        self._on_chips: dict[int, None] = {}
        self._active_cache: np.ndarray | None = None
        self._active_added: list[int] = []  # arrived since the cache was brought up to date
        self._active_left = False  # some job left `_active` since then
        # `_active` is in FIFO order (arrival time, then index): true unless a job joined it
        # behind a later arrival since it was last empty (`_policy_view` then sorts).
        self._active_in_order = True
        self._last_arrived: tuple[float, int] = (-math.inf, -1)
        self._n_terminal = 0

        # Time.
        self._timers = TimerQueue()
        self._next_round_s: float | None = None
        # The round at _next_round_s was due (needed when the last step ended, or it starts a
        # new grid): a step that comes late runs it at once instead of skipping it.
        self._round_promised = False
        self._dirty = False  # something changed since the last round
        self._alloc_dirty = False  # the job set or capacity changed since the last allocation
        self._last_realloc_s = 0.0
        self._ever_realloc = False
        self._force_realloc = False
        self._forced_last = False
        self._stuck = False
        self._pending: set[int] = set()  # submitted, arrival still ahead
        self.rounds = 0
        self.reallocations = 0

        # Timelines for metrics and plots.
        self.timeline_t: list[float] = []
        self.timeline_used: list[np.ndarray] = []
        self.timeline_waiting: list[int] = []
        self.active_t: list[float] = []
        self.active_n: list[int] = []


    def _choose_placer(self, placement: str | Placer) -> Placer | None:
        """Where placed jobs go: "gavel" or "policy" (the priority rule's pool), "broker"
        (the planner's best option with room, among the pools the policy allows), "auto"
        (gavel in gavel_mode; the policy's own choice for a placement-aware policy; else
        the broker), or a Placer."""
        if not isinstance(placement, str):
            return placement
        if placement == "auto":
            if self.gavel_mode or self.traits.placement_aware:
                return None
            return BrokerPlacer()
        if placement in ("gavel", "policy"):
            return None
        if placement == "broker":
            return BrokerPlacer()
        raise SuanliError(f"placement: must be auto, broker, policy or gavel (got {placement!r})",
                          field="placement", value=placement)

    def _init_pools(self, cluster: Cluster) -> None:
        """The per-pool columns: capacity, price, power, regions, chip classes and nodes."""
        self.cluster = cluster
        P = len(cluster)
        self._P = P
        self._pool_ids = cluster.pool_ids
        self._pool_acc = [p.accelerator for p in cluster.pools]
        self._price = np.array([p.price_per_chip_hour for p in cluster.pools], dtype=float)
        self._watts = np.array([p.tdp_w * p.pue for p in cluster.pools], dtype=float)
        self._static_cap = np.array([p.capacity for p in cluster.pools], dtype=np.int64)
        regions = sorted({p.region for p in cluster.pools})
        self._region_index = {r: i for i, r in enumerate(regions)}
        self._pool_region = np.array(
            [self._region_index[p.region] for p in cluster.pools], dtype=np.int64
        )
        # Pools of the same chip are interchangeable for the priority rule (see _assign).
        class_of: dict[str, int] = {}
        self._pool_class = np.array(
            [class_of.setdefault(p.accelerator, len(class_of)) for p in cluster.pools],
            dtype=np.int64,
        )
        self._class_members = [
            [k for k in range(P) if self._pool_class[k] == c] for c in range(len(class_of))
        ]
        self._class_onehot = np.zeros((P, len(class_of)))
        self._class_onehot[np.arange(P), self._pool_class] = 1.0
        self._node_chips = [
            np.array([p.node_chips(n) for n in range(p.nodes)], dtype=np.int64)
            for p in cluster.pools
        ]
        self._node_down = [np.zeros(p.nodes, dtype=np.int64) for p in cluster.pools]
        self._node_free = [c.copy() for c in self._node_chips]
        self._cap_up = self._static_cap.copy()  # chips on nodes that are up
        self._used = np.zeros(P, dtype=np.int64)
        self._pool_time = np.zeros(P)  # Gavel's worker_time_so_far
        self._busy_chip_s = np.zeros(P)

    # ------------------------------------------------------------------ public API

    def submit(self, job: EngineJob) -> JobRecord:
        """Add a job. It waits (PENDING) until its arrival time, then queues for chips.

        A job no pool can ever run fails at once with the reason (gang larger than every pool
        that has a throughput for it, or no throughput anywhere).
        """
        if job.job_id in self._index:
            raise SuanliError(f"duplicate job id {job.job_id!r}", field="job_id", value=job.job_id)
        if not (job.total_work > 0) or not math.isfinite(job.total_work):
            raise SuanliError(
                f"job {job.job_id}: total_work must be a positive number, got {job.total_work}",
                field="total_work", value=job.total_work,
            )
        if job.num_chips < 1:
            raise SuanliError(
                f"job {job.job_id}: num_chips must be at least 1, got {job.num_chips}",
                field="num_chips", value=job.num_chips,
            )
        self._check_elastic(job)
        i = self._n
        self._grow(i + 1)
        self._n += 1
        rec = JobRecord(job=job)
        self._records.append(rec)
        self._has_tenants = self._has_tenants or job.tenant is not None
        self._index[job.job_id] = i
        self.jobs[job.job_id] = rec
        self._chips[i] = job.num_chips
        self._total[i] = job.total_work
        self._prio[i] = job.priority
        self._arrival[i] = job.arrival_s
        self._tenant[i] = job.tenant
        self._deadline[i] = job.deadline_s
        self._ckpt_iv[i] = job.checkpoint_interval_s if job.checkpoint_interval_s > 0 else math.inf
        self._restore[i] = max(0.0, job.restore_s)
        row = self._thr[i]
        for pool_id, rate in job.throughput.items():
            k = self.cluster._index.get(pool_id)
            if k is not None and rate and rate > 0 and math.isfinite(rate):
                row[k] = rate
        self._ref_thr[i] = float((job.meta or {}).get("reference_throughput", 0.0) or 0.0)
        data_region = job.meta.get("data_region") if job.meta else None
        if data_region is not None and data_region in self._region_index:
            self._data_region[i] = self._region_index[data_region]
        now = self.clock.now()
        self._event(rec, JobState.PENDING, now, "submitted")
        reason = self._unrunnable_reason(i)
        if reason:
            self._finish(i, JobState.FAILED, now, reason)
            return rec
        if job.arrival_s <= now:
            self._arrive(i, now)
        else:
            self._pending.add(i)
            self._push_timer(job.arrival_s, "arrive", i)
        return rec

    def cancel(self, job_id: str) -> bool:
        """Cancel a job in any state; returns False if it had already ended."""
        i = self._job_index(job_id)
        rec = self._records[i]
        if rec.state.terminal:
            return False
        now = self.clock.now()
        if rec.state in ON_CHIPS_STATES:
            self._end_run(i, now, keep="full")
            self._finish(i, JobState.CANCELLED, now, "cancelled")
            self.backend.stop(rec.job.job_id, now, "cancel")
        else:
            self._finish(i, JobState.CANCELLED, now, "cancelled")
        return True

    def inject_failure(
        self, scope: FailureScope, target: str, at_s: float, duration_s: float
    ) -> None:
        """Schedule an outage: a node (`center/pool/<n>`), a pool (`center/pool`), a center,
        or a WAN link between two regions (`regionA~regionB`), down from at_s for duration_s.

        Jobs on failed chips lose the work since their last checkpoint and are placed again.
        A link outage stops jobs whose data lives (meta `data_region`) across that link.
        """
        f = parse_failure(self.cluster, self._node_chips, scope, target, at_s, duration_s)
        self._push_timer(at_s, "fail", f)
        if self.clock.now() >= at_s:
            self._drain_timers(self.clock.now())

    def progress(self, job_id: str, now_s: float | None = None) -> float:
        """Estimated work done (throughput x productive time) at now_s."""
        i = self._job_index(job_id)
        now = self.clock.now() if now_s is None else now_s
        return float(self._work_at(i, now))

    @property
    def done(self) -> bool:
        return self._n_terminal == self._n

    # ------------------------------------------------------------------ the loop

    def step(self) -> float | None:
        """Handle everything due now: backend events, arrivals, failures, a round if due.

        Returns when the engine next needs to run (None: nothing will ever happen on its own).
        """
        now = self.clock.now()
        for ev in self.backend.poll(now):
            self._on_backend_event(ev)
        self._drain_timers(now)
        self._round_if_due(now)
        return self.next_wake_s()

    def next_wake_s(self) -> float | None:
        times = []
        t = self._timers.next_s()
        if t is not None:
            times.append(t)
        b = self.backend.next_event_s()
        if b is not None:
            times.append(b)
        if self._next_round_s is not None and self._round_needed():
            times.append(self._next_round_s)
        return min(times) if times else None

    def run(self, until_s: float | None = None, progress: Callable[[int, int], None] | None = None):
        """Simulate on a SimClock from event to event until every job ends (or until_s).

        Jobs that can never be placed (no event can change that) fail with a reason, so every
        job ends in a terminal state.
        """
        from suanli.sim.metrics import SimResult

        if not hasattr(self.clock, "advance_to"):
            raise SuanliError("Engine.run needs a SimClock; call step() on the wall clock",
                              field="clock")
        last_report = -1
        while True:
            nxt = self.step()
            if progress is not None and self._n_terminal != last_report:
                last_report = self._n_terminal
                progress(self._n_terminal, self._n)
            if nxt is None:
                break
            if until_s is not None and nxt > until_s:
                self.clock.advance_to(until_s)
                self.step()
                break
            self.clock.advance_to(nxt)
        if until_s is None:
            now = self.clock.now()
            for i in list(self._active) + sorted(self._pending):
                if not self._records[i].state.terminal:
                    self._finish(i, JobState.FAILED, now, self._stranded_reason(i))
        if progress is not None:
            progress(self._n_terminal, self._n)
        return SimResult.from_engine(self)

    # ------------------------------------------------------------------ validation

    def _unrunnable_reason(self, i: int) -> str:
        thr = self._thr[i]
        runnable = thr > 0
        c = int(self._chips[i])
        if not runnable.any():
            return "no pool can run it: no throughput for it on any pool"
        fits = runnable & (self._static_cap >= c)
        if not fits.any() and self.placer is not None and self._may_split(i):
            # Only the broker places a gang over two pools.
            self._split_only.add(i)
        elif not fits.any():
            largest = int(self._static_cap[runnable].max())
            return (
                f"gang of {c} chips does not fit: the largest pool that can run it has "
                f"{largest} chips"
            )
        return ""

    def _stranded_reason(self, i: int) -> str:
        rec = self._records[i]
        if rec.state is JobState.PENDING:
            return "never arrived before the simulation ended"
        c = int(self._chips[i])
        ok = (self._thr[i] > 0) & (self._cap_up >= c)
        if not ok.any():
            return f"stranded: no pool that can run it has {c} chips up"
        return "stranded: the policy never gave it chips"

    # ------------------------------------------------------------------ introspection

    def expected_end_s(self, job_id: str) -> float | None:
        """When the running job should finish at its current throughput (None if not running)."""
        i = self._job_index(job_id)
        rec = self._records[i]
        if rec.state not in ON_CHIPS_STATES or rec.placement is None:
            return None
        return run_end_s(self._seg_start[i], rec.placement)

    def waiting_jobs(self) -> list[str]:
        return [self._records[i].job.job_id for i in self._active
                if self._records[i].state in WAITING_STATES]

    @property
    def used_chips(self) -> dict[str, int]:
        return {pid: int(u) for pid, u in zip(self._pool_ids, self._used, strict=True)}

    @property
    def up_capacity(self) -> dict[str, int]:
        return {pid: int(c) for pid, c in zip(self._pool_ids, self._cap_up, strict=True)}

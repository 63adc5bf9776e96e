"""The scheduling engine: one event-driven core for the simulator and the live service.

The engine owns every job's state, decides placements round by round and tells a backend to
start and stop jobs. It never reads a clock other than the one it is given and never sleeps:
`step()` handles everything due at `clock.now()` and says when it next needs to be called.
The simulator calls it from `run()` on a SimClock; the live service calls it every half
second on the wall clock with a process backend.

Mechanism (Gavel's, Narayanan et al. OSDI 2020):
- A policy maps the active jobs to time fractions X[j, p] (share of wall time job j should
  spend on pool p). It is recomputed only when the job set or capacity changed, and at most
  once per `realloc_interval_s` (Gavel's 1920 s); in between, new jobs have no allocation and
  run only on chips the allocated jobs leave idle. A strict policy (FIFO: it never places a
  job it did not allocate) is recomputed early when a new job could use idle chips.
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
  event to event when there is nothing to decide.

`gavel_mode=True` reproduces Gavel's simulator: rounds run back to back and a round ends
when its longest micro-task ends (at most round_s), pool types are visited in a fixed order
(shuffled each round for heterogeneity-agnostic policies, as Gavel does), a job's priority
is looked up per pool type in that order, and there is no preemption cost.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from typing import Any

import numpy as np

from suanli.engine.backend import Backend, run_end_s
from suanli.engine.cluster import Cluster
from suanli.engine.types import (
    ON_CHIPS_STATES,
    WAITING_STATES,
    BackendEvent,
    EngineJob,
    JobRecord,
    JobState,
    Placement,
    Transition,
)
from suanli.errors import SuanliError
from suanli.policies.base import Allocation, Policy, PolicyState

_EPS = 1e-9
# Gavel's minimum_time_between_allocation_resets: the allocation is recomputed at most this
# often (when something changed); jobs that arrive in between run on chips left idle.
DEFAULT_REALLOC_INTERVAL_S = 1920.0
FailureScope = str  # "node" | "pool" | "center" | "link"

# Heterogeneity-agnostic policies: Gavel shuffles the pool order for them each round.
_AGNOSTIC_POLICIES = frozenset(
    {"fifo", "max_min_fairness", "finish_time_fairness", "min_total_duration", "las", "srtf"}
)


def policy_name(policy: str | Policy) -> str:
    """A policy's registered name (a callable's `policy_name`, `name` or function name)."""
    if isinstance(policy, str):
        try:
            from suanli.policies import canonical_name

            return canonical_name(policy)
        except ImportError:
            return policy
    for attr in ("policy_name", "name", "__name__"):
        value = getattr(policy, attr, None)
        if isinstance(value, str):
            return value
    return type(policy).__name__


def resolve_policy(policy: str | Policy) -> Policy:
    if not isinstance(policy, str):
        return policy
    from suanli.policies import get_policy  # the registry is owned by the policies package

    return get_policy(policy)


class _Failure:
    __slots__ = ("scope", "target", "at_s", "duration_s", "nodes", "link")

    def __init__(self, scope: str, target: str, at_s: float, duration_s: float) -> None:
        self.scope = scope
        self.target = target
        self.at_s = at_s
        self.duration_s = duration_s
        self.nodes: list[tuple[int, int]] = []  # (pool index, node index)
        self.link: frozenset[str] | None = None


class Engine:
    """Drives jobs through their lifecycle against a clock and a backend."""

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
        if work_conserving is None:
            work_conserving = getattr(self.policy, "work_conserving", None)
        if work_conserving is None:
            # Gavel: FIFO jobs without an allocation on a pool are never placed there.
            work_conserving = not self.policy_name.lower().startswith("fifo")
        self.work_conserving = bool(work_conserving)
        self.record_events = record_events
        self.record_timeline = record_timeline
        base_name = self.policy_name.lower()
        self._shuffle_pools = gavel_mode and base_name in _AGNOSTIC_POLICIES
        self._pool_rng = random.Random(seed + 5)  # Gavel's worker-type shuffler seed
        self._half_round = self.round_s / 2.0

        # Pools.
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
        self._down_links: dict[frozenset[str], int] = {}

        # Jobs: records plus NumPy columns indexed by an internal job index.
        self.jobs: dict[str, JobRecord] = {}
        self._tenants: list[str | None] = []
        self._records: list[JobRecord] = []
        self._index: dict[str, int] = {}
        self._n = 0
        self._grow(1024)
        self._active: dict[int, None] = {}  # arrived, not terminal (insertion ordered)
        self._on_chips: dict[int, None] = {}
        self._active_cache: np.ndarray | None = None
        self._n_terminal = 0

        # Time.
        self._timers: list[tuple[float, int, str, Any]] = []
        self._timer_seq = 0
        self._next_round_s: float | None = None
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

    # ------------------------------------------------------------------ storage

    def _grow(self, need: int) -> None:
        P = self._P
        old = getattr(self, "_cap_jobs", 0)
        if need <= old:
            return
        cap = max(need, 2 * old, 1024)

        def grow(name: str, shape: tuple[int, ...], dtype: Any, fill: Any) -> None:
            new = np.full(shape, fill, dtype=dtype)
            if old:
                new[:old] = getattr(self, name)
            setattr(self, name, new)

        grow("_chips", (cap,), np.int64, 0)
        grow("_total", (cap,), float, 0.0)
        grow("_prio", (cap,), float, 1.0)
        grow("_arrival", (cap,), float, 0.0)
        grow("_deadline", (cap,), float, math.inf)
        grow("_ckpt_iv", (cap,), float, 3600.0)
        grow("_restore", (cap,), float, 0.0)
        grow("_thr", (cap, P), float, 0.0)
        grow("_data_region", (cap,), np.int64, -1)
        grow("_base", (cap,), float, 0.0)  # work committed at the start of the current run
        grow("_seg_start", (cap,), float, 0.0)
        grow("_seg_restore", (cap,), float, 0.0)  # restore paid in the current run
        grow("_run_pool", (cap,), np.int64, -1)
        grow("_acct", (cap,), float, 0.0)
        grow("_attained", (cap,), float, 0.0)  # chip-seconds received
        grow("_recv", (cap, P), float, 0.0)  # time received per pool since reallocation
        grow("_deficit", (cap, P), float, 0.0)
        grow("_alloc", (cap, P), float, 0.0)
        grow("_has_alloc", (cap,), bool, False)
        grow("_ref_thr", (cap,), float, 0.0)
        self._cap_jobs = cap

    def _active_array(self) -> np.ndarray:
        if self._active_cache is None:
            self._active_cache = np.fromiter(self._active, dtype=np.int64, count=len(self._active))
        return self._active_cache

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
        i = self._n
        self._grow(i + 1)
        self._n += 1
        rec = JobRecord(job=job)
        self._records.append(rec)
        self._tenants.append(job.tenant)
        self._index[job.job_id] = i
        self.jobs[job.job_id] = rec
        self._chips[i] = job.num_chips
        self._total[i] = job.total_work
        self._prio[i] = job.priority
        self._arrival[i] = job.arrival_s
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
        if duration_s <= 0:
            raise SuanliError("failure duration_s must be positive", field="duration_s",
                              value=duration_s)
        f = _Failure(scope, target, at_s, duration_s)
        if scope == "node":
            pool_id, _, node_text = target.rpartition("/")
            p = self.cluster.index(pool_id)
            try:
                node = int(node_text)
            except ValueError:
                raise SuanliError(f"node target must be center/pool/<index>, got {target!r}",
                                  field="target", value=target) from None
            if not 0 <= node < len(self._node_chips[p]):
                raise SuanliError(
                    f"pool {pool_id} has nodes 0..{len(self._node_chips[p]) - 1}, got {node}",
                    field="target", value=target,
                )
            f.nodes = [(p, node)]
        elif scope == "pool":
            p = self.cluster.index(target)
            f.nodes = [(p, n) for n in range(len(self._node_chips[p]))]
        elif scope == "center":
            f.nodes = [
                (p, n)
                for p in self.cluster.pools_in_center(target)
                for n in range(len(self._node_chips[p]))
            ]
        elif scope == "link":
            a, sep, b = target.partition("~")
            if not sep:
                raise SuanliError(f"link target must be regionA~regionB, got {target!r}",
                                  field="target", value=target)
            f.link = frozenset((a.strip(), b.strip()))
        else:
            raise SuanliError(
                f"failure scope must be node, pool, center or link, got {scope!r}",
                field="scope", value=scope,
            )
        self._push_timer(at_s, "fail", f)
        if self.clock.now() >= at_s:
            self._drain_timers(self.clock.now())

    def restore(
        self, job: EngineJob, state: JobState, placement: Placement | None, done_work: float
    ) -> JobRecord:
        """Rebuild a job from the service's database after a restart (no backend calls).

        A job restored on chips keeps them (the service re-attaches to its process) and is
        credited `done_work` from now on; a waiting one queues again.
        """
        state = JobState(state)
        listener, self.listener = self.listener, None  # the database already has this state
        try:
            return self._restore_job(job, state, placement, done_work)
        finally:
            self.listener = listener

    def _restore_job(
        self, job: EngineJob, state: JobState, placement: Placement | None, done_work: float
    ) -> JobRecord:
        rec = self.submit(job) if job.job_id not in self._index else self.jobs[job.job_id]
        i = self._index[job.job_id]
        now = self.clock.now()
        done_work = min(max(0.0, done_work), job.total_work)
        self._base[i] = done_work
        rec.done_work = rec.checkpoint_work = done_work
        if rec.state.terminal and not state.terminal:
            return rec  # it failed validation on submit
        if state.terminal:
            if not rec.state.terminal:
                self._finish(i, state, now, "restored")
            return rec
        if state is JobState.PENDING:
            return rec
        if rec.state is JobState.PENDING:
            self._arrive(i, now)
        if state in ON_CHIPS_STATES and placement is not None:
            p = self.cluster.index(placement.pool_id)
            self._take_chips(i, p, placement.nodes or None)
            rec.start_s = rec.start_s if rec.start_s is not None else now
            self._begin_run(i, p, now, restore_s=0.0, nodes=placement.nodes or None)
            self._set_state(i, JobState.RUNNING, now, "restored")
        elif state is JobState.PREEMPTED:
            rec.start_s = rec.start_s if rec.start_s is not None else now
            self._set_state(i, JobState.PREEMPTED, now, "restored")
        return rec

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
        if self._next_round_s is not None and self._round_needed():
            if self._next_round_s < now - _EPS and not self.gavel_mode:
                # Rounds were skipped while nothing changed: return to the round grid.
                k = math.ceil((now - self._next_round_s) / self.round_s - _EPS)
                self._next_round_s += k * self.round_s
            if self._next_round_s <= now + _EPS:
                self._round(now)
        return self.next_wake_s()

    def next_wake_s(self) -> float | None:
        times = []
        if self._timers:
            times.append(self._timers[0][0])
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

    # ------------------------------------------------------------------ events

    def _push_timer(self, at_s: float, kind: str, payload: Any) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (at_s, self._timer_seq, kind, payload))

    def _drain_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now + _EPS:
            at, _seq, kind, payload = heapq.heappop(timers)
            if kind == "arrive":
                if self._records[payload].state is JobState.PENDING:
                    self._arrive(payload, at)
            elif kind == "restored":
                i, token = payload
                rec = self._records[i]
                if rec.state is JobState.STARTING and self._seg_start[i] == token:
                    self._set_state(i, JobState.RUNNING, at, "restored from checkpoint")
            elif kind == "fail":
                self._fail_start(payload, at)
            elif kind == "recover":
                self._fail_end(payload, at)

    def _arrive(self, i: int, now: float) -> None:
        self._pending.discard(i)
        self._active[i] = None
        self._active_cache = None
        self._recv[i] = self._half_round
        self._deficit[i] = 0.0
        self._has_alloc[i] = False
        self._set_state(i, JobState.QUEUED, now, "arrived")
        self._note_active(now)
        self._changed(now)

    def _changed(self, now: float) -> None:
        """The job set or capacity changed: reallocate and replan at the next round."""
        self._dirty = True
        self._alloc_dirty = True
        self._stuck = False
        if self._next_round_s is None:
            self._next_round_s = now

    def _on_backend_event(self, ev: BackendEvent) -> None:
        i = self._index.get(ev.job_id)
        if i is None:
            return
        rec = self._records[i]
        if rec.state not in ON_CHIPS_STATES:
            return  # a late report for a run the engine already stopped
        at = ev.at_s
        if ev.kind == "succeeded":
            self._end_run(i, at, keep="all")
            self._finish(i, JobState.SUCCEEDED, at, ev.detail or "finished")
        else:
            self._end_run(i, at, keep="checkpoint")
            detail = ev.detail or "job failed"
            if rec.retries < rec.job.max_retries:
                rec.retries += 1
                self._set_state(
                    i, JobState.QUEUED, at,
                    f"{detail}; retry {rec.retries} of {rec.job.max_retries}",
                )
                self._changed(at)
            else:
                self._finish(
                    i, JobState.FAILED, at,
                    f"{detail}; retries exhausted ({rec.job.max_retries})",
                )

    # ------------------------------------------------------------------ failures

    def _fail_start(self, f: _Failure, now: float) -> None:
        self._push_timer(now + f.duration_s, "recover", f)
        reason = f"failure: {f.scope} {f.target} down"
        victims: dict[int, None] = {}
        if f.link is not None:
            self._down_links[f.link] = self._down_links.get(f.link, 0) + 1
            for i in list(self._on_chips):
                if self._link_blocked(i, int(self._run_pool[i])):
                    victims[i] = None
        touched = set()
        for p, n in f.nodes:
            self._node_down[p][n] += 1
            if self._node_down[p][n] == 1:
                touched.add(p)
                for i in list(self._on_chips):
                    pl = self._records[i].placement
                    if int(self._run_pool[i]) == p and pl is not None:
                        if any(node == n for node, _ in pl.nodes):
                            victims[i] = None
        for i in victims:
            rec = self._records[i]
            self._end_run(i, now, keep="checkpoint")
            rec.interruptions += 1
            self._set_state(i, JobState.PREEMPTED, now, reason)
            self.backend.stop(rec.job.job_id, now, "failure")
        for p in touched:
            self._refresh_pool(p)
        self._changed(now)
        self._sample(now)

    def _fail_end(self, f: _Failure, now: float) -> None:
        if f.link is not None:
            left = self._down_links.get(f.link, 0) - 1
            if left > 0:
                self._down_links[f.link] = left
            else:
                self._down_links.pop(f.link, None)
        touched = set()
        for p, n in f.nodes:
            self._node_down[p][n] -= 1
            if self._node_down[p][n] == 0:
                touched.add(p)
        for p in touched:
            self._refresh_pool(p)
        self._changed(now)

    def _refresh_pool(self, p: int) -> None:
        """Recompute a pool's up capacity and free chips per node from scratch."""
        up = self._node_down[p] == 0
        free = np.where(up, self._node_chips[p], 0)
        for i in self._on_chips:
            if int(self._run_pool[i]) == p:
                pl = self._records[i].placement
                if pl is not None:
                    for node, chips in pl.nodes:
                        free[node] -= chips
        self._node_free[p] = np.maximum(free, 0)
        self._cap_up[p] = int(self._node_chips[p][up].sum())

    def _link_blocked(self, i: int, p: int) -> bool:
        r = int(self._data_region[i])
        if r < 0 or not self._down_links:
            return False
        rp = int(self._pool_region[p])
        if r == rp:
            return False
        names = self._region_names()
        return frozenset((names[r], names[rp])) in self._down_links

    def _region_names(self) -> list[str]:
        return sorted(self._region_index, key=self._region_index.__getitem__)

    def _blocked_mask(self, idx: np.ndarray) -> np.ndarray | None:
        """[len(idx), P] True where a link outage cuts a job from its data."""
        if not self._down_links:
            return None
        names = self._region_names()
        R = len(names)
        down = np.zeros((R, R), dtype=bool)
        for link in self._down_links:
            ends = [self._region_index[r] for r in link if r in self._region_index]
            if len(ends) == 2:
                down[ends[0], ends[1]] = down[ends[1], ends[0]] = True
        dr = self._data_region[idx]
        mask = np.zeros((len(idx), self._P), dtype=bool)
        has = dr >= 0
        if has.any():
            mask[has] = down[dr[has]][:, self._pool_region]
        return mask

    # ------------------------------------------------------------------ runs

    def _work_at(self, i: int, now: float) -> float:
        rec = self._records[i]
        if rec.state not in ON_CHIPS_STATES:
            return float(self._base[i])
        p = int(self._run_pool[i])
        productive = now - self._seg_start[i] - self._seg_restore[i]
        if productive <= 0:
            return float(self._base[i])
        return float(min(self._total[i], self._base[i] + productive * self._thr[i, p]))

    def _work_now(self, idx: np.ndarray, now: float) -> np.ndarray:
        """Estimated work done by each job in idx at `now` (vectorised _work_at)."""
        work = self._base[idx].copy()
        pools = self._run_pool[idx]
        on = pools >= 0
        if on.any():
            j = idx[on]
            productive = np.maximum(now - self._seg_start[j] - self._seg_restore[j], 0.0)
            work[on] = np.minimum(self._total[j], work[on] + productive * self._thr[j, pools[on]])
        return work

    def _checkpoint_at(self, i: int, now: float) -> float:
        p = int(self._run_pool[i])
        productive = now - self._seg_start[i] - self._seg_restore[i]
        if productive <= 0:
            return float(self._base[i])
        iv = self._ckpt_iv[i]
        saved = math.floor(productive / iv) * iv if math.isfinite(iv) else 0.0
        return float(min(self._total[i], self._base[i] + saved * self._thr[i, p]))

    def _take_chips(self, i: int, p: int, nodes: tuple[tuple[int, int], ...] | None) -> tuple:
        c = int(self._chips[i])
        free = self._node_free[p]
        if nodes is None:
            nodes = self._pick_nodes(free, c, self.cluster.pools[p].chips_per_node)
        for node, chips in nodes:
            free[node] -= chips
        self._used[p] += c
        return nodes

    @staticmethod
    def _pick_nodes(free: np.ndarray, c: int, per_node: int) -> tuple[tuple[int, int], ...]:
        """Whole gang on as few nodes as possible: best fit for a gang within one node, else
        the emptiest nodes first."""
        if per_node == 1:
            idx = np.flatnonzero(free)[:c]
            if len(idx) < c:
                raise RuntimeError("not enough free chips for a gang the round placed")
            return tuple((n, 1) for n in idx.tolist())
        if c <= per_node:
            fit = np.where(free >= c, free, per_node + 1)
            n = int(fit.argmin())
            if fit[n] <= per_node:
                return ((n, c),)
        order = np.argsort(-free, kind="stable")
        out = []
        need = c
        for n in order:
            f = int(free[n])
            if f <= 0:
                break
            take = min(f, need)
            out.append((int(n), take))
            need -= take
            if need == 0:
                break
        if need:
            raise RuntimeError("not enough free chips for a gang the round placed")
        return tuple(out)

    def _begin_run(self, i: int, p: int, now: float, restore_s: float, nodes) -> Placement:
        rec = self._records[i]
        self._run_pool[i] = p
        self._seg_start[i] = now
        self._seg_restore[i] = restore_s
        self._acct[i] = now
        self._on_chips[i] = None
        pool = self.cluster.pools[p]
        placement = Placement(
            pool_id=pool.pool_id,
            num_chips=int(self._chips[i]),
            nodes=tuple(nodes),
            accelerator=pool.accelerator,
            center=pool.center,
            throughput=float(self._thr[i, p]),
            work_remaining=float(self._total[i] - self._base[i]),
            restore_s=restore_s,
        )
        rec.placement = placement
        if not rec.pools or rec.pools[-1] != pool.pool_id:
            if pool.pool_id not in rec.pools:
                rec.pools.append(pool.pool_id)
        return placement

    def _end_run(self, i: int, now: float, keep: str) -> None:
        """Take a job off its chips: account its time and commit its progress.

        keep: "all" (it finished), "full" (checkpointed on preemption/cancel), or
        "checkpoint" (killed: only the last periodic checkpoint survives).
        """
        rec = self._records[i]
        p = int(self._run_pool[i])
        if keep == "all":
            work = float(self._total[i])
        elif keep == "full":
            work = self._work_at(i, now)
        else:
            work = self._checkpoint_at(i, now)
        self._account_one(i, now)
        dur = max(0.0, now - self._seg_start[i])
        chips = int(self._chips[i])
        chip_s = dur * chips
        rec.chip_seconds += chip_s
        rec.cost += chip_s / 3600.0 * float(self._price[p])
        rec.energy_kwh += chip_s * float(self._watts[p]) / 3.6e6
        self._busy_chip_s[p] += chip_s
        self._attained[i] += chip_s
        self._base[i] = work
        rec.done_work = rec.checkpoint_work = work
        pl = rec.placement
        if pl is not None:
            free = self._node_free[p]
            for node, c in pl.nodes:
                if self._node_down[p][node] == 0:
                    free[node] += c
        self._used[p] -= chips
        self._run_pool[i] = -1
        self._on_chips.pop(i, None)
        rec.placement = None
        self._dirty = True

    def _account_one(self, i: int, now: float) -> None:
        p = int(self._run_pool[i])
        dt = now - self._acct[i]
        if dt > 0:
            self._recv[i, p] += dt
            self._pool_time[p] += dt
        self._acct[i] = now

    def _account_all(self, now: float) -> None:
        if not self._on_chips:
            return
        idx = np.fromiter(self._on_chips, dtype=np.int64, count=len(self._on_chips))
        pools = self._run_pool[idx]
        dt = np.maximum(now - self._acct[idx], 0.0)
        self._recv[idx, pools] += dt
        np.add.at(self._pool_time, pools, dt)
        self._acct[idx] = now

    # ------------------------------------------------------------------ state changes

    def _event(self, rec: JobRecord, state: JobState, at: float, reason: str) -> None:
        if self.record_events:
            rec.events.append((at, state.value, reason))

    def _set_state(self, i: int, new: JobState, at: float, reason: str = "") -> None:
        rec = self._records[i]
        old = rec.state
        rec.state = new
        rec.reason = reason
        self._event(rec, new, at, reason)
        if self.listener is not None:
            self.listener(Transition(rec.job.job_id, old, new, at, rec.placement, reason))

    def _finish(self, i: int, state: JobState, at: float, reason: str) -> None:
        rec = self._records[i]
        rec.finish_s = at
        if state is JobState.SUCCEEDED:
            rec.done_work = rec.checkpoint_work = float(self._total[i])
        self._set_state(i, state, at, reason)
        self._n_terminal += 1
        self._pending.discard(i)
        if i in self._active:
            del self._active[i]
            self._active_cache = None
            self._has_alloc[i] = False
            self._note_active(at)
            self._dirty = True
            self._alloc_dirty = True
        if not self._active and not self._on_chips:
            self._next_round_s = None
        self._sample(at)

    def _note_active(self, now: float) -> None:
        if self.record_timeline:
            self.active_t.append(now)
            self.active_n.append(len(self._active))

    def _sample(self, now: float) -> None:
        if not self.record_timeline:
            return
        if self.timeline_t and self.timeline_t[-1] == now:
            self.timeline_used[-1] = self._used.copy()
            self.timeline_waiting[-1] = len(self._active) - len(self._on_chips)
            return
        self.timeline_t.append(now)
        self.timeline_used.append(self._used.copy())
        self.timeline_waiting.append(len(self._active) - len(self._on_chips))

    # ------------------------------------------------------------------ validation

    def _job_index(self, job_id: str) -> int:
        try:
            return self._index[job_id]
        except KeyError:
            raise SuanliError(f"unknown job {job_id!r}", field="job_id", value=job_id) from None

    def _unrunnable_reason(self, i: int) -> str:
        thr = self._thr[i]
        runnable = thr > 0
        c = int(self._chips[i])
        if not runnable.any():
            return "no pool can run it: no throughput for it on any pool"
        fits = runnable & (self._static_cap >= c)
        if not fits.any():
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

    # ------------------------------------------------------------------ rounds

    def _round_needed(self) -> bool:
        if self._stuck and not self._dirty:
            return False
        if self._dirty:
            return True
        waiting = len(self._active) > len(self._on_chips)
        if self.gavel_mode:
            return bool(self._on_chips) or waiting
        return waiting and bool(self._on_chips)

    def _realloc_allowed(self, now: float, A: np.ndarray) -> bool:
        if self._force_realloc or not self._ever_realloc:
            return True
        if self.gavel_mode:
            # Gavel's test: `time since last reset >= minimum interval or last reset == 0`
            # (the second clause keeps recomputing until a reset happens at a time > 0).
            return (now - self._last_realloc_s >= self.realloc_interval_s
                    or self._last_realloc_s == 0)
        if now - self._last_realloc_s >= self.realloc_interval_s - _EPS:
            return True
        if self.work_conserving:
            return False
        # A strict policy places only allocated jobs: do not leave chips idle for a waiting
        # job the last allocation has not seen.
        new = A[~self._has_alloc[A] & (self._run_pool[A] < 0)]
        if len(new) == 0:
            return False
        free = self._cap_up - self._used
        fits = (self._thr[new] > 0) & (self._chips[new][:, None] <= free[None, :])
        return bool(fits.any())

    def _round(self, now: float) -> None:
        self.rounds += 1
        self._account_all(now)
        A = self._active_array()
        if self._alloc_dirty and len(A) and self._realloc_allowed(now, A):
            self._reallocate(now, A)
            A = self._active_array()  # rejected jobs leave
        self._force_realloc = False
        placed_any = False
        if len(A):
            target = self._assign(A)
            placed_any = self._apply(target, A, now)
        self._dirty = False
        self._sample(now)
        running = bool(self._on_chips)
        if not self._active:
            self._next_round_s = None
            return
        if self.gavel_mode:
            if running:
                self._next_round_s = min(now + self.round_s, self._last_end_s())
            elif self._pending:
                self._next_round_s = None  # Gavel jumps to the next arrival
            elif not self._forced_last:
                # No arrivals left and nothing runs: Gavel forces a reallocation.
                self._force_realloc = True
                self._alloc_dirty = True
                self._forced_last = True
                self._next_round_s = now
            else:
                self._next_round_s = None
                self._stuck = True
            if running or placed_any:
                self._forced_last = False
        else:
            self._next_round_s = now + self.round_s
            if not running and not placed_any:
                self._stuck = True  # nothing can change until an event arrives

    def _last_end_s(self) -> float:
        """When the last running job would finish (the backend's own formula, bit for bit)."""
        last = 0.0
        for i in self._on_chips:
            pl = self._records[i].placement
            if pl is not None:
                end = run_end_s(float(self._seg_start[i]), pl)
                if end > last:
                    last = end
        return last

    def _policy_state(self, now: float, A: np.ndarray) -> PolicyState:
        thr = self._thr[A].copy()
        blocked = self._blocked_mask(A)
        if blocked is not None:
            thr[blocked] = 0.0
        done = self._work_now(A, now)
        running_on = self._run_pool[A].copy()
        attained = self._attained[A].copy()
        on = running_on >= 0
        if on.any():
            attained[on] += (now - self._seg_start[A[on]]) * self._chips[A[on]]
        ref = self._ref_thr[A].copy()
        missing = ref <= 0
        if missing.any():
            ref[missing] = thr[missing].max(axis=1)
        return PolicyState(
            now_s=now,
            job_ids=A.copy(),
            num_chips=self._chips[A].copy(),
            priority=self._prio[A].copy(),
            arrival_s=self._arrival[A].copy(),
            remaining_work=np.maximum(self._total[A] - done, 0.0),
            attained_service_s=attained,
            throughput=thr,
            pool_ids=list(self._pool_ids),
            pool_accelerators=list(self._pool_acc),
            capacity=self._cap_up.astype(float),
            price_per_chip_hour=self._price.copy(),
            deadline_s=self._deadline[A].copy(),
            tenant=[self._tenants[int(i)] for i in A],
            running_on=running_on,
            reference_throughput=ref,
        )

    def _reallocate(self, now: float, A: np.ndarray) -> None:
        # Gavel's reset: credit each job's deficit with the time it should have had under the
        # old allocation minus what it received, then restart the received-time counters.
        elapsed = now - self._last_realloc_s if self._ever_realloc else 0.0
        received = self._recv[A] - self._half_round
        should = np.where(self._has_alloc[A][:, None], self._alloc[A] * elapsed, 0.0)
        self._deficit[A] += should - received
        self._recv[A] = self._half_round
        self._pool_time[:] = self._half_round * len(A)
        state = self._policy_state(now, A)
        alloc: Allocation = self.policy(state)
        X = np.asarray(alloc.fractions, dtype=float)
        if X.shape != (len(A), self._P):
            raise SuanliError(
                f"policy {self.policy_name} returned fractions of shape {X.shape}, "
                f"expected {(len(A), self._P)}",
                field="policy", value=self.policy_name,
            )
        X = np.where(np.isfinite(X) & (X > 0), X, 0.0)
        self._alloc[A] = X
        self._has_alloc[A] = True
        self._last_realloc_s = now
        self._ever_realloc = True
        self._alloc_dirty = False
        self.reallocations += 1
        if alloc.rejected:
            note = f": {alloc.note}" if alloc.note else ""
            for i in sorted(int(j) for j in alloc.rejected):
                if 0 <= i < self._n and i in self._active:
                    rec = self._records[i]
                    if rec.state in ON_CHIPS_STATES:
                        self._end_run(i, now, keep="full")
                        self._finish(i, JobState.FAILED, now, f"rejected by policy{note}")
                        self.backend.stop(rec.job.job_id, now, "cancel")
                    else:
                        self._finish(i, JobState.FAILED, now, f"rejected by policy{note}")

    def _assign(self, A: np.ndarray) -> np.ndarray:
        """Gavel's priority rule: whole gangs, greedily, in priority order.

        Returns the pool index for each job of A (-1: not placed this round).
        """
        P = self._P
        X = self._alloc[A]
        thr = self._thr[A]
        blocked = self._blocked_mask(A)
        if blocked is not None:
            thr = np.where(blocked, 0.0, thr)
        recv = self._recv[A]
        pool_time = self._pool_time
        if not self.gavel_mode and len(self._class_members) < P:
            return self._assign_by_class(A, X, thr, recv)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(pool_time > 0, recv / np.where(pool_time > 0, pool_time, 1.0), 0.0)
            prio = np.where(frac > 0, X / np.where(frac > 0, frac, 1.0), X * 1e9)
        prio[(X <= 0) | (thr <= 0)] = 0.0
        chips = self._chips[A]
        cap = self._cap_up
        ok = (thr > 0) & (chips[:, None] <= cap[None, :])
        if not self.work_conserving:
            ok &= prio > 0
        jj, pp = np.nonzero(ok)
        if len(jj) == 0:
            return np.full(len(A), -1, dtype=np.int64)
        pr = prio[jj, pp]
        de = self._deficit[A][jj, pp]
        xx = X[jj, pp]
        if self.gavel_mode:
            order_pools = list(range(P))
            if self._shuffle_pools:
                self._pool_rng.shuffle(order_pools)
            rank = np.empty(P, dtype=np.int64)
            rank[order_pools] = np.arange(P)
            # Per pool in `order_pools`, by priority, deficit, allocation (all descending);
            # the sort is stable, so equal keys keep job order as in Gavel.
            order = np.lexsort((jj, -xx, -de, -pr, rank[pp]))
        else:
            # Ties (jobs the allocation has not seen yet have priority 0): keep running jobs
            # where they are, then prefer the faster pool, then the earlier job.
            running_here = self._run_pool[A][jj] == pp
            order = np.lexsort((pp, jj, -thr[jj, pp], ~running_here, -xx, -de, -pr))
        js = jj[order].tolist()
        ps = pp[order].tolist()
        left = cap.tolist()
        chips_l = chips.tolist()
        min_chips = int(chips.min())
        assigned: dict[int, int] = {}
        n_jobs = len(A)
        full = [c < min_chips for c in left]
        n_full = sum(full)
        for j, p in zip(js, ps, strict=True):
            if j in assigned or full[p]:
                continue
            c = chips_l[j]
            if c > left[p]:
                continue
            left[p] -= c
            assigned[j] = p
            if len(assigned) == n_jobs:
                break
            if left[p] < min_chips:
                full[p] = True
                n_full += 1
                if n_full == P:
                    break
        target = np.full(len(A), -1, dtype=np.int64)
        if assigned:
            target[np.fromiter(assigned.keys(), dtype=np.int64, count=len(assigned))] = \
                np.fromiter(assigned.values(), dtype=np.int64, count=len(assigned))
        return target

    def _assign_by_class(
        self, A: np.ndarray, X: np.ndarray, thr: np.ndarray, recv: np.ndarray
    ) -> np.ndarray:
        """The priority rule over classes of identical chips, then a pool within the class.

        A network often has several pools of one chip (three H800 pools in three centers).
        Spreading a job's time over them would move it between centers every round for
        nothing, so priorities use the class's summed fraction and received time; within the
        class a job stays on the pool it runs on if it can, else takes the pool where its
        allocation is largest, then the one with the most chips left.
        """
        M = self._class_onehot
        members = self._class_members
        C = len(members)
        cap = self._cap_up
        Xc = X @ M
        recv_c = recv @ M
        pool_time_c = self._pool_time @ M
        thr_c = np.column_stack([thr[:, m].max(axis=1) for m in members])
        cap_c = np.array([cap[m].max() for m in members])
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(pool_time_c > 0,
                            recv_c / np.where(pool_time_c > 0, pool_time_c, 1.0), 0.0)
            prio = np.where(frac > 0, Xc / np.where(frac > 0, frac, 1.0), Xc * 1e9)
        prio[(Xc <= 0) | (thr_c <= 0)] = 0.0
        chips = self._chips[A]
        ok = (thr_c > 0) & (chips[:, None] <= cap_c[None, :])
        if not self.work_conserving:
            ok &= prio > 0
        jj, cc = np.nonzero(ok)
        target = np.full(len(A), -1, dtype=np.int64)
        if len(jj) == 0:
            return target
        run_pool = self._run_pool[A]
        run_class = np.where(run_pool >= 0, self._pool_class[np.maximum(run_pool, 0)], -1)
        running_here = run_class[jj] == cc
        order = np.lexsort((cc, jj, -thr_c[jj, cc], ~running_here,
                            -Xc[jj, cc], -(self._deficit[A] @ M)[jj, cc], -prio[jj, cc]))
        js = jj[order].tolist()
        cs = cc[order].tolist()
        left = cap.tolist()
        chips_l = chips.tolist()
        run_l = run_pool.tolist()
        min_chips = int(chips.min())
        class_left = [max(left[p] for p in m) for m in members]
        n_full = sum(1 for v in class_left if v < min_chips)
        placed = 0
        n_jobs = len(A)
        for j, c in zip(js, cs, strict=True):
            if target[j] >= 0 or class_left[c] < chips_l[j]:
                continue
            need = chips_l[j]
            cur = run_l[j]
            best = -1
            if cur >= 0 and self._pool_class[cur] == c and left[cur] >= need and thr[j, cur] > 0:
                best = cur
            else:
                best_key = None
                for p in members[c]:
                    if left[p] >= need and thr[j, p] > 0:
                        key = (X[j, p], left[p], -p)
                        if best_key is None or key > best_key:
                            best, best_key = p, key
            if best < 0:
                continue
            left[best] -= need
            target[j] = best
            placed += 1
            if placed == n_jobs:
                break
            was_full = class_left[c] < min_chips
            class_left[c] = max(left[p] for p in members[c])
            if not was_full and class_left[c] < min_chips:
                n_full += 1
                if n_full == C:
                    break
        return target

    def _apply(self, target: np.ndarray, A: np.ndarray, now: float) -> bool:
        """Stop the jobs that lose or change chips, then start the newly placed ones.

        target[k] is the pool chosen for job A[k] this round (-1: none).
        """
        current = self._run_pool[A]
        stop = A[(current >= 0) & (current != target)].tolist()
        start_mask = (target >= 0) & (current != target)
        starts = zip(A[start_mask].tolist(), target[start_mask].tolist(), strict=True)
        for i in stop:
            rec = self._records[i]
            if rec.state not in ON_CHIPS_STATES:
                continue  # a listener cancelled it meanwhile
            rec.preemptions += 1
            self._set_state(i, JobState.CHECKPOINTING, now, "preempted by the round")
            if rec.state is not JobState.CHECKPOINTING:
                continue  # the listener cancelled it
            self.backend.stop(rec.job.job_id, now, "preempt")
            self._end_run(i, now, keep="full")
            self._set_state(i, JobState.PREEMPTED, now, "checkpointed")
        started = False
        for i, p in starts:
            rec = self._records[i]
            if rec.state not in WAITING_STATES:
                continue  # cancelled by a listener during this round
            first = rec.start_s is None
            restore = 0.0 if (first or self.gavel_mode) else float(self._restore[i])
            nodes = self._take_chips(i, p, None)
            placement = self._begin_run(i, p, now, restore, nodes)
            if first:
                rec.start_s = now
            self._set_state(i, JobState.STARTING, now, f"placed on {placement.pool_id}")
            if rec.state is not JobState.STARTING:
                continue  # the listener cancelled it before the backend was told
            self.backend.start(rec.job, placement, now)
            if restore > 0:
                self._push_timer(now + restore, "restored", (i, now))
            else:
                self._set_state(i, JobState.RUNNING, now, "running")
            started = True
        return started or bool(self._on_chips)

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

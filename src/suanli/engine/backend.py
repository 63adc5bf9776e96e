"""The backend interface, and the simulated backend that runs jobs in virtual time.

A backend starts and stops jobs and reports when they end. The engine tells it what to do
only after the listener has recorded the transition. The simulated backend runs each job at
the throughput in its placement: it ends `restore_s + work_remaining / throughput` seconds
after it starts, unless it is stopped first or (optionally) fails.
"""

from __future__ import annotations

import heapq
import math
import random
from typing import Protocol, runtime_checkable

from suanli.engine.types import BackendEvent, EngineJob, Placement


@runtime_checkable
class Backend(Protocol):
    def start(self, job: EngineJob, placement: Placement, now_s: float) -> None: ...

    def stop(self, job_id: str, now_s: float, reason: str) -> None: ...

    def poll(self, now_s: float) -> list[BackendEvent]: ...

    def next_event_s(self) -> float | None: ...


def run_end_s(now_s: float, placement: Placement) -> float:
    """When a run that starts now ends if nothing stops it (the engine uses the same formula)."""
    if placement.throughput <= 0:
        return float("inf")
    return now_s + placement.restore_s + max(placement.work_remaining, 0.0) / placement.throughput


class SimBackend:
    """Virtual-time backend. Deterministic for a seed.

    `failure_rate_per_hour`: each run fails at an exponential random time with this rate (per
    job, not per chip); `fail_first`: job id -> number of runs that fail half-way (for tests);
    `no_node_until`: pool id -> virtual time before which the pool has no live node, so a run
    placed there is reported "unplaceable" at once (as the Ray backend does).
    """

    def __init__(
        self,
        *,
        failure_rate_per_hour: float = 0.0,
        fail_first: dict[str, int] | None = None,
        seed: int = 0,
        no_node_until: dict[str, float] | None = None,
    ) -> None:
        self.no_node_until = dict(no_node_until or {})
        self.failure_rate_per_hour = failure_rate_per_hour
        self.fail_first = dict(fail_first or {})
        self._rng = random.Random(seed)
        self._heap: list[tuple[float, int, str, str]] = []  # (at_s, run id, job_id, kind)
        self._live: dict[str, int] = {}  # job_id -> current run id
        self._run_counter = 0

    def start(self, job: EngineJob, placement: Placement, now_s: float) -> None:
        if job.job_id in self._live:
            raise RuntimeError(f"sim backend: job {job.job_id} is already running")
        self._run_counter += 1
        run = self._run_counter
        end = run_end_s(now_s, placement)
        kind = "succeeded"
        if self.no_node_until and now_s < self.no_node_until.get(placement.pool_id, -math.inf):
            end, kind = now_s, "unplaceable"
        elif self.fail_first and self.fail_first.get(job.job_id, 0) > 0:
            self.fail_first[job.job_id] -= 1
            end = now_s + (end - now_s) / 2 if end != float("inf") else now_s + 1.0
            kind = "failed"
        elif self.failure_rate_per_hour > 0:
            fail_at = now_s + self._rng.expovariate(self.failure_rate_per_hour / 3600.0)
            if fail_at < end:
                end, kind = fail_at, "failed"
        self._live[job.job_id] = run
        heapq.heappush(self._heap, (end, run, job.job_id, kind))

    def stop(self, job_id: str, now_s: float, reason: str) -> None:
        if self._live.pop(job_id, None) is None:
            return
        # Its heap entry goes stale and is skipped when it reaches the top; a preempted run's
        # end is usually far off, so under heavy preemption stale entries pile up and every
        # push and pop pays for them: rebuild the heap from the live runs once they are most
        # of it (the order of what is left, and so of events, is unchanged).
        if len(self._heap) > 64 and len(self._heap) > 4 * len(self._live):
            live = self._live
            self._heap = [e for e in self._heap if live.get(e[2]) == e[1]]
            heapq.heapify(self._heap)

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and self._live.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)

    def poll(self, now_s: float) -> list[BackendEvent]:
        events = []
        self._drop_stale()
        heap = self._heap
        while heap and heap[0][0] <= now_s:
            at, _run, job_id, kind = heapq.heappop(heap)
            del self._live[job_id]
            detail = {"succeeded": "", "unplaceable": "no live node in the pool"}.get(
                kind, "simulated job failure")
            events.append(BackendEvent(job_id, kind, at, detail))  # type: ignore[arg-type]
            self._drop_stale()
        return events

    def next_event_s(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    @property
    def running(self) -> set[str]:
        return set(self._live)

"""The simulated backend's run-end heap: stale entries of stopped runs are dropped in bulk once
they are most of it, without changing which events come out or when."""

from __future__ import annotations

import random

from suanli.engine import SimBackend
from suanli.engine.types import EngineJob, Placement


class _NeverCompacts(SimBackend):
    """The backend as it was: a stopped run's entry stays until it reaches the top."""

    def stop(self, job_id: str, now_s: float, reason: str) -> None:
        self._live.pop(job_id, None)


def _churn(backend: SimBackend, seed: int) -> tuple[list[tuple[str, str, float]], int]:
    """Start, stop and poll 40 jobs at random, most runs preempted (a time-sharing policy):
    the events, and the largest the heap grew."""
    rng = random.Random(seed)
    live: set[int] = set()
    events = []
    now = 0.0
    largest = 0
    for _ in range(3000):
        now += rng.uniform(0.0, 5.0)
        n = rng.randrange(40)
        if n in live and rng.random() < 0.8:
            backend.stop(f"j{n}", now, "preempt")
            live.discard(n)
        elif n not in live:
            job = EngineJob(f"j{n}", 1, 100.0, {"p": 1.0}, 0.0)
            work = rng.uniform(1.0, 200.0) if rng.random() < 0.3 else 20_000.0  # most preempted
            backend.start(job, Placement("p", 1, throughput=1.0, work_remaining=work), now)
            live.add(n)
        for e in backend.poll(now):
            live.discard(int(e.job_id[1:]))
            events.append((e.job_id, e.kind, e.at_s))
        largest = max(largest, len(backend._heap))
    return events, largest


def test_compaction_keeps_the_heap_small_and_the_events_unchanged():
    for seed in range(3):
        got, largest = _churn(SimBackend(), seed)
        want, largest_before = _churn(_NeverCompacts(), seed)
        assert len(got) > 100
        assert got == want
        assert largest <= 4 * 40 + 1 < largest_before

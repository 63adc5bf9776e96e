"""The engine's timer queue: arrivals, end of restores, outages and recoveries, in time order.

Timers due at the same time come out in the order they were pushed (a sequence number breaks
ties), so a replay is deterministic.
"""

from __future__ import annotations

import heapq
from typing import Any

EPS = 1e-9  # times closer than this are the same instant


class TimerQueue:
    """A heap of (at_s, seq, kind, payload)."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, at_s: float, kind: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at_s, self._seq, kind, payload))

    def next_s(self) -> float | None:
        """When the earliest timer is due (None: no timers)."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> tuple[float, int, str, Any] | None:
        """The earliest timer if it is due at `now`, else None. Timers pushed while draining
        are seen by the next call, so one due at once is handled in the same drain."""
        heap = self._heap
        if heap and heap[0][0] <= now + EPS:
            return heapq.heappop(heap)
        return None

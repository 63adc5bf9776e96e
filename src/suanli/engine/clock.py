"""Clocks: virtual time for simulation, the wall clock for the live service.

The engine only ever asks a clock for `now()`; `Engine.run` (the simulation loop) also moves
a SimClock forward from event to event.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float: ...


class SimClock:
    """Virtual seconds, moved only by `advance_to` (never backwards)."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._now = float(start_s)

    def now(self) -> float:
        return self._now

    def advance_to(self, t_s: float) -> None:
        if t_s > self._now:
            self._now = float(t_s)


class WallClock:
    """Seconds since the Unix epoch (or since `origin_s` if given), from time.time()."""

    def __init__(self, origin_s: float = 0.0) -> None:
        self.origin_s = origin_s

    def now(self) -> float:
        return time.time() - self.origin_s

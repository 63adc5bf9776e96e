"""Run one policy over a job list on a simulated clock and backend: the simulator's entry point.

Used by `suanli simulate`, the benchmarks and the tests, so all three replay the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from suanli.engine.backend import SimBackend
from suanli.engine.clock import SimClock
from suanli.engine.cluster import Cluster
from suanli.engine.engine import Engine
from suanli.engine.types import EngineJob
from suanli.errors import SuanliError
from suanli.policies.base import Policy
from suanli.sim.metrics import SimResult


@dataclass(frozen=True)
class FailureSpec:
    """An outage to inject: scope node|pool|center|link, its target, start and length."""

    scope: str
    target: str
    at_s: float
    duration_s: float

    @classmethod
    def parse(cls, text: str) -> FailureSpec:
        """`center:wuhu@3600+7200` (scope:target@start+duration, seconds)."""
        try:
            scope, rest = text.split(":", 1)
            target, when = rest.rsplit("@", 1)
            at, dur = when.split("+", 1)
            return cls(scope.strip(), target.strip(), float(at), float(dur))
        except ValueError:
            raise SuanliError(
                f"failure: expected SCOPE:TARGET@START+DURATION (e.g. center:wuhu@3600+7200), "
                f"got {text!r}",
                field="failure", value=text,
            ) from None


def simulate(
    jobs: Sequence[EngineJob],
    cluster: Cluster,
    policy: str | Policy,
    *,
    seed: int = 0,
    round_s: float = 360.0,
    gavel_mode: bool = False,
    realloc_interval_s: float | None = None,
    failures: Iterable[FailureSpec] = (),
    backend: SimBackend | None = None,
    window: tuple[int | None, int | None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    record_events: bool = True,
) -> SimResult:
    """Replay `jobs` under `policy`; deterministic for a seed."""
    engine = Engine(
        cluster,
        policy,
        SimClock(0.0),
        backend or SimBackend(seed=seed),
        round_s=round_s,
        gavel_mode=gavel_mode,
        seed=seed,
        realloc_interval_s=realloc_interval_s,
        record_events=record_events,
    )
    for job in jobs:
        engine.submit(job)
    for f in failures:
        engine.inject_failure(f.scope, f.target, f.at_s, f.duration_s)
    result = engine.run(progress=progress)
    result.window = window
    return result

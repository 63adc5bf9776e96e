"""A job's cost estimate at admission, cached per job shape so submission stays fast.

The estimate is the broker's answer (the planner's chosen option, cost objective), priced at
the database's prices. Jobs that differ only in name, command, environment or priority share a
shape, so a burst of similar submissions plans once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from suanli.errors import SuanliError
from suanli.jobs.spec import GenericWork, JobSpec
from suanli.network import Network
from suanli.plan.state import NetworkState
from suanli.store.types import money

log = logging.getLogger("suanli.service.estimate")

# Fields that do not change where a job can run or what it costs.
_NOT_SHAPE = frozenset({"name", "run", "setup", "env", "tenant", "priority", "max_retries",
                        "checkpoint_interval_s", "checkpoint_restore_s"})


@dataclass(frozen=True, slots=True)
class Estimate:
    cost: Decimal
    accelerator: str | None
    count: int
    run_s: float | None
    center: str | None = None
    pool: str | None = None
    source: str = "plan"
    price_per_chip_hour: Decimal | None = None  # of the pool priced (spot where allowed)


class NotPlaceable(SuanliError):
    """No pool of the network can run the job; the reasons say why."""

    status = 422


def shape_key(raw: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in raw.items() if k not in _NOT_SHAPE}, sort_keys=True,
                      default=str)


class Estimator:
    """Plans a job shape once; the network can be swapped when the admin edits it."""

    def __init__(self, network: Network, max_entries: int = 4096) -> None:
        self._network = network
        self._cache: OrderedDict[str, Estimate] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    @property
    def network(self) -> Network:
        return self._network

    def set_network(self, network: Network) -> None:
        with self._lock:
            self._network = network
            self._cache.clear()

    def cached(self, key: str) -> Estimate | None:
        with self._lock:
            return self._cache.get(key)

    def estimate(self, spec: JobSpec, key: str) -> Estimate:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            network = self._network
        est = estimate_job(spec, network)
        with self._lock:
            if network is self._network:
                self._cache[key] = est
                if len(self._cache) > self._max:
                    self._cache.popitem(last=False)
        return est


def estimate_job(spec: JobSpec, network: Network, state: NetworkState | None = None
                 ) -> Estimate:
    """The option the broker picks for the job on `state` (default: an idle network), under
    the job's own objective: the same call the engine makes when it places the job."""
    try:
        from suanli.plan import plan
    except ImportError:  # the planner has not landed: a generic job can still be priced
        return _reference_estimate(spec, network)
    try:
        result = plan(spec, network, state, objective=spec.objective)
    except SuanliError:
        raise
    except Exception as exc:  # a planner bug must not become a 500 for the client
        log.exception("planner failed on a valid job spec")
        raise NotPlaceable(f"the planner could not price this job ({type(exc).__name__}: "
                           f"{exc}); the error is logged", field="<job>") from None
    chosen = getattr(result, "chosen", None)
    if chosen is None:
        reasons = getattr(result, "infeasible", None) or []
        text = "; ".join(str(r) for r in list(reasons)[:5]) or "no feasible placement"
        raise NotPlaceable(f"no pool can run this job: {text}", field="resources",
                           value=list(spec.resources.accelerators))
    return Estimate(cost=money(repr(float(chosen.cost))), accelerator=chosen.accelerator,
                    count=int(chosen.count), run_s=float(chosen.run_s), center=chosen.center,
                    pool=chosen.pool, source="plan",
                    price_per_chip_hour=money(repr(float(chosen.price_per_chip_hour)), 4))


def _reference_estimate(spec: JobSpec, network: Network) -> Estimate:
    """Without the planner: a generic job runs its measured time on the cheapest allowed pool."""
    if not isinstance(spec.work, GenericWork):
        raise NotPlaceable("cost estimate needs the planner for this kind of job",
                           field="kind", value=spec.kind)
    allowed = set(spec.resources.accelerators) or {spec.work.reference_accelerator}
    count = max(spec.min_count, spec.work.reference_count)
    best: tuple[Decimal, str, str, str, Decimal] | None = None
    for c, p in network.pools():
        if p.accelerator not in allowed and p.accelerator.lower() not in {
                a.lower() for a in allowed}:
            continue
        if p.chips < count:
            continue
        price = money(repr(p.price(spec.resources.spot)), 4)
        cost = money(Decimal(count) * price
                     * Decimal(repr(spec.work.reference_duration_s)) / Decimal(3600))
        if best is None or cost < best[0]:
            best = (cost, p.accelerator, c.id, p.id, price)
    if best is None:
        raise NotPlaceable(f"no pool offers {', '.join(sorted(allowed))} x {count}",
                           field="resources.accelerators", value=sorted(allowed))
    return Estimate(cost=best[0], accelerator=best[1], count=count,
                    run_s=spec.work.reference_duration_s, center=best[2], pool=best[3],
                    source="reference", price_per_chip_hour=best[4])

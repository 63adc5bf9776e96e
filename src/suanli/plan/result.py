"""What the planner answers: placement options, the chosen one, the Pareto front, and why."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from suanli.plan.units import format_duration, format_money


@dataclass(frozen=True, slots=True)
class PoolShare:
    """One pool's part of a heterogeneous (mixed-chip) placement: its chips and layers."""

    pool: str
    accelerator: str
    count: int
    layers: int

    def describe(self) -> str:
        return f"{self.layers} layers on {self.count} {self.accelerator}"


@dataclass(frozen=True)
class PlacementOption:
    """One way to run the job: where, on what, and what it takes.

    Times are seconds from now: the dataset moves while the job waits for chips, so
    finish_s = max(wait_s, transfer_s) + run_s. cost = compute_cost (chip-hours x price) +
    egress_cost (GB moved x price per GB along the route). Energy includes the center's PUE.
    """

    center: str
    region: str
    pool: str
    accelerator: str
    count: int
    transfer_s: float
    wait_s: float
    run_s: float
    finish_s: float
    cost: float
    compute_cost: float
    egress_cost: float
    price_per_chip_hour: float
    spot: bool
    energy_kwh: float
    carbon_kg: float
    power_w: float
    mfu: float | None = None
    bound: str | None = None
    route: tuple[str, ...] = ()
    route_kind: str = "none"
    heterogeneous: bool = False
    split: tuple[PoolShare, ...] = ()
    preference_rank: int = 0
    pareto: bool = False
    chosen: bool = False
    estimate_source: Callable[[], Any] | None = field(default=None, repr=False, compare=False)

    @property
    def estimate(self) -> Any:
        """The performance model's full estimate (single-pool options; asked on first use)."""
        return self.estimate_source() if self.estimate_source is not None else None

    @property
    def parallelism(self) -> Any:
        """dp/tp/pp/ZeRO of a single-pool option; a mixed-chip option has its `split`."""
        return getattr(self.estimate, "parallelism", None)

    @property
    def start_s(self) -> float:
        """When the job starts running: after the wait and the transfer."""
        return max(self.wait_s, self.transfer_s)

    @property
    def chips_label(self) -> str:
        if self.heterogeneous:
            return " + ".join(f"{s.count} {s.accelerator}" for s in self.split)
        return f"{self.count} {self.accelerator}"

    @property
    def label(self) -> str:
        """'64 H800 at horinger' or '16 H800 + 16 910B at yrd-demo-zone'."""
        return f"{self.chips_label} at {self.center}"

    @property
    def split_text(self) -> str:
        return ", ".join(s.describe() for s in self.split)

    def to_dict(self) -> dict[str, Any]:
        data = {
            k: getattr(self, k)
            for k in (
                "center", "region", "pool", "accelerator", "count", "transfer_s", "wait_s",
                "run_s", "finish_s", "cost", "compute_cost", "egress_cost",
                "price_per_chip_hour", "spot", "energy_kwh", "carbon_kg", "power_w", "mfu",
                "bound", "route_kind", "heterogeneous", "preference_rank", "pareto", "chosen",
            )
        }
        data["start_s"] = self.start_s
        data["route"] = list(self.route)
        data["split"] = [asdict(s) for s in self.split]
        p = self.parallelism
        if p is None:
            data["parallelism"] = None
        elif hasattr(p, "model_dump"):
            data["parallelism"] = p.model_dump()
        elif hasattr(p, "__dataclass_fields__"):
            data["parallelism"] = asdict(p)
        else:
            data["parallelism"] = str(p)
        return {k: _finite(v) for k, v in data.items()}


@dataclass
class PlanResult:
    """Every feasible placement of one job, best first, with the reasons when there is none."""

    job: str
    network: str
    objective: str
    currency: str
    options_source: list[PlacementOption] | Callable[[], list[PlacementOption]]
    chosen: PlacementOption | None
    pareto: list[PlacementOption]
    infeasible: list[str] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)
    deadline_s: float | None = None
    budget: float | None = None
    weights: dict[str, float] | None = None
    total_options: int = 0

    @property
    def chosen_estimate(self) -> Any:
        """The performance model's estimate behind the chosen option, with its explanation."""
        return self.chosen.estimate if self.chosen is not None else None

    @functools.cached_property
    def options(self) -> list[PlacementOption]:
        """Every listed option, best first (built on first use: there may be many)."""
        src = self.options_source
        return list(src() if callable(src) else src)

    @property
    def feasible(self) -> bool:
        return self.chosen is not None

    def explain(self) -> list[str]:
        """Sentences saying why the winner wins, or why nothing can run."""
        return list(self.explanation) if self.feasible else list(self.infeasible)

    def money(self, amount: float) -> str:
        return format_money(amount, self.currency)

    def to_dict(self) -> dict[str, Any]:
        chosen_index = next((i for i, o in enumerate(self.options) if o.chosen), None)
        return {
            "job": self.job,
            "network": self.network,
            "objective": self.objective,
            "currency": self.currency,
            "deadline_s": self.deadline_s,
            "budget": self.budget,
            "weights": self.weights,
            "total_options": self.total_options,
            "options": [o.to_dict() for o in self.options],
            "chosen": self.chosen.to_dict() if self.chosen else None,
            "chosen_index": chosen_index,
            "pareto": [o.to_dict() for o in self.pareto],
            "infeasible": list(self.infeasible),
            "explanation": self.explain(),
            "perf_explanation": list(getattr(self.chosen_estimate, "explanation", ()) or ()),
        }


def best_count_per_placement(options: list[PlacementOption]) -> list[PlacementOption]:
    """The first (best) option of each distinct placement: one row per pool (or per pair of
    pools for a mixed-chip split), so a table is not six chip counts of one pool."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for o in options:
        key = (o.center, *(s.pool for s in o.split)) if o.heterogeneous else (o.center, o.pool)
        if key not in seen:
            seen.add(key)
            out.append(o)
    return out


def describe_option(option: PlacementOption, currency: str) -> str:
    """'64 H800 at horinger: 5h 24m, 3,100 CNY'."""
    return (f"{option.label}: finishes in {format_duration(option.finish_s)}, "
            f"{format_money(option.cost, currency)}")


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v

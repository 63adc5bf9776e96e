"""Objectives: what "best" means for a placement, given finish time and cost.

- ``cost``: cheapest (ties: sooner). With a deadline: cheapest that finishes by it.
- ``time``: soonest finish (ties: cheaper). With a budget: fastest within it.
- ``mix``: lowest weighted sum of finish time and cost, each divided by the best value among
  the options (so 1.0 is the best on that axis); weights {"time": w, "cost": w} are normalised
  to sum to 1 (default 0.5 each).

Deadline and budget are hard constraints under every objective. With a preference-ordered
accelerator list (resources.prefer_order), options are ranked lexicographically: first by the
rank of their accelerator in the list (a mixed-chip option takes its worse chip's rank), then by
the objective — the most preferred chip that can run the job wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from suanli.errors import SpecError

OBJECTIVES = ("cost", "time", "mix")


@dataclass(frozen=True)
class Objective:
    name: str
    time_weight: float = 0.5
    cost_weight: float = 0.5

    def keys(self, finish_s: np.ndarray, cost: np.ndarray, best_finish: float,
             best_cost: float) -> tuple[np.ndarray, np.ndarray]:
        """(primary, secondary) sort keys, lower is better."""
        if self.name == "cost":
            return cost, finish_s
        if self.name == "time":
            return finish_s, cost
        return self.score(finish_s, cost, best_finish, best_cost), finish_s

    def score(self, finish_s: np.ndarray, cost: np.ndarray, best_finish: float,
              best_cost: float) -> np.ndarray:
        f0 = best_finish if best_finish > 0 else 1.0
        c0 = best_cost if best_cost > 0 else 1.0
        return self.time_weight * finish_s / f0 + self.cost_weight * cost / c0

    @property
    def weights(self) -> dict[str, float] | None:
        if self.name != "mix":
            return None
        return {"time": self.time_weight, "cost": self.cost_weight}


def resolve_objective(name: str, weights: Mapping[str, float] | None = None) -> Objective:
    """An Objective by name; weights only for 'mix', normalised to sum 1."""
    if name not in OBJECTIVES:
        raise SpecError(f"objective: must be one of {', '.join(OBJECTIVES)} (got {name!r})",
                        field="objective", value=name)
    if name != "mix":
        return Objective(name)
    w = dict(weights or {"time": 0.5, "cost": 0.5})
    unknown = set(w) - {"time", "cost"}
    if unknown:
        raise SpecError(f"weights: only 'time' and 'cost' (got {sorted(unknown)})",
                        field="weights", value=w)
    t, c = float(w.get("time", 0.0)), float(w.get("cost", 0.0))
    if t < 0 or c < 0 or t + c <= 0:
        raise SpecError(f"weights: must be non-negative and not both zero (got {w})",
                        field="weights", value=w)
    return Objective("mix", t / (t + c), c / (t + c))

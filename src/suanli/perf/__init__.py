"""The performance model: how fast a job runs on n chips of type X, does it fit, and why."""

from suanli.perf.efficiency import DEFAULT_EFFICIENCY, Efficiency, load_calibration
from suanli.perf.estimate import estimate, estimate_grid
from suanli.perf.types import (
    BOUNDS,
    Bound,
    Estimate,
    EstimateGrid,
    MemoryBreakdown,
    Parallelism,
)

__all__ = [
    "BOUNDS",
    "DEFAULT_EFFICIENCY",
    "Bound",
    "Efficiency",
    "Estimate",
    "EstimateGrid",
    "MemoryBreakdown",
    "Parallelism",
    "estimate",
    "estimate_grid",
    "load_calibration",
]

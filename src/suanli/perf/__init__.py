"""The performance model: how fast a job runs on n chips of type X, does it fit, and why."""

from suanli.perf.calibrate import calibrate
from suanli.perf.compare import Comparison, Equivalence, compare
from suanli.perf.efficiency import DEFAULT_EFFICIENCY, Efficiency, load_calibration
from suanli.perf.estimate import estimate, estimate_grid, min_fitting_count
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
    "Comparison",
    "Equivalence",
    "Efficiency",
    "Estimate",
    "EstimateGrid",
    "MemoryBreakdown",
    "Parallelism",
    "calibrate",
    "compare",
    "estimate",
    "estimate_grid",
    "load_calibration",
    "min_fitting_count",
]

"""The result shapes of the performance model: the contract the planner and the CLI read."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

Bound = Literal["compute", "memory_bandwidth", "scaleup_link", "scaleout_network",
                "memory_capacity"]
BOUNDS: tuple[Bound, ...] = ("compute", "memory_bandwidth", "scaleup_link", "scaleout_network",
                             "memory_capacity")
BOUND_CODE: dict[str, int] = {b: i for i, b in enumerate(BOUNDS)}


@dataclass(frozen=True)
class Parallelism:
    """How `count` chips split the job: data x tensor x pipeline (x expert inside data)."""

    dp: int
    tp: int
    pp: int
    ep: int = 1
    zero_stage: int = 0

    @property
    def chips(self) -> int:
        return self.dp * self.tp * self.pp

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def __str__(self) -> str:
        text = f"dp={self.dp} tp={self.tp} pp={self.pp}"
        if self.ep > 1:
            text += f" ep={self.ep}"
        if self.zero_stage:
            text += f" ZeRO-{self.zero_stage}"
        return text


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per chip, in GB (1e9). capacity_gb is usable memory (physical less a reserve)."""

    weights_gb: float
    gradients_gb: float
    optimizer_gb: float
    activations_gb: float
    kv_cache_gb: float
    total_gb: float
    capacity_gb: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Estimate:
    """How fast a job runs on `count` chips of one type, whether it fits, and why.

    tokens_per_s: training tokens/s; inference output tokens/s; generic work units/s where a
    unit is a step (when the work gives steps) or one second of the reference run.
    """

    accelerator: str
    count: int
    fits: bool
    duration_s: float
    tokens_per_s: float
    memory: MemoryBreakdown
    bound: Bound
    mfu: float
    parallelism: Parallelism
    power_w: float
    energy_kwh: float
    explanation: tuple[str, ...]
    reason: str | None = None
    ttft_s: float | None = None
    time_per_output_token_s: float | None = None
    chips_used: int = 0
    time_shares: dict[str, float] = field(default_factory=dict)
    measured: bool = False
    # More chips were asked for than make the job faster: only chips_used of count take part
    # (the global batch and the layouts cannot use the rest); set beyond the rounding the
    # data-parallel ladder and the layout leave idle.
    beyond_useful_range: bool = False

    @property
    def memory_per_chip_gb(self) -> float:
        return self.memory.total_gb

    @property
    def gpu_hours(self) -> float:
        return self.count * self.duration_s / 3600.0

    def to_dict(self) -> dict:
        """JSON-able (infinite durations become null)."""
        return {
            "accelerator": self.accelerator,
            "count": self.count,
            "chips_used": self.chips_used,
            "beyond_useful_range": self.beyond_useful_range,
            "fits": self.fits,
            "duration_s": _finite(self.duration_s),
            "tokens_per_s": self.tokens_per_s,
            "memory_per_chip_gb": self.memory_per_chip_gb,
            "memory": self.memory.to_dict(),
            "bound": self.bound,
            "mfu": self.mfu,
            "parallelism": self.parallelism.to_dict(),
            "power_w": self.power_w,
            "energy_kwh": _finite(self.energy_kwh),
            "ttft_s": self.ttft_s,
            "time_per_output_token_s": self.time_per_output_token_s,
            "time_shares": dict(self.time_shares),
            "measured": self.measured,
            "explanation": list(self.explanation),
            "reason": self.reason,
        }


@dataclass
class EstimateGrid:
    """Estimates for every (accelerator, count) pair as arrays of shape [A, N]."""

    accelerators: list[str]
    counts: np.ndarray
    duration_s: np.ndarray
    tokens_per_s: np.ndarray
    mfu: np.ndarray
    power_w: np.ndarray
    fits: np.ndarray
    bound: np.ndarray  # int codes into BOUNDS
    chips_used: np.ndarray | None = None
    beyond_useful_range: np.ndarray | None = None  # bool: see Estimate.beyond_useful_range

    @property
    def energy_kwh(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.where(self.fits, self.power_w * self.duration_s / 3.6e6, np.inf)

    def index(self, accelerator: str) -> int:
        return self.accelerators.index(accelerator)


def beyond_useful_range(count, used, layout_chips):
    """More chips idle than the data-parallel ladder (steps of 1/64) and a layout of
    `layout_chips` chips leave idle by rounding: the count is past what helps. Elementwise."""
    return count - used > used // 64 + layout_chips


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None

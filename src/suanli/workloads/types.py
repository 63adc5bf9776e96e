"""The records a workload loader produces and the engine consumes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job of a trace, independent of where it will run.

    Work is given either as `total_steps` (Gavel: steps, with per-chip-type throughput from a
    ThroughputTable keyed by `job_type`) or as `duration_s` measured on `reference_accelerator`
    at `num_chips` (Philly, Alibaba, generic CSV), which a performance model or a table scales
    to other chips.
    """

    job_id: int
    arrival_s: float
    num_chips: int
    job_type: str = "generic"
    total_steps: float | None = None
    duration_s: float | None = None
    reference_accelerator: str | None = None
    allowed_accelerators: tuple[str, ...] = ()
    priority: float = 1.0
    tenant: str | None = None
    deadline_s: float | None = None
    checkpoint_interval_s: float = 3600.0
    restore_s: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ThroughputTable:
    """Measured steps/s by (job_type, accelerator id, num_chips), as Gavel ships them."""

    steps_per_s: dict[tuple[str, str, int], float]

    def get(self, job_type: str, accelerator: str, num_chips: int) -> float | None:
        return self.steps_per_s.get((job_type, accelerator, num_chips))

    @property
    def accelerators(self) -> list[str]:
        return sorted({acc for _, acc, _ in self.steps_per_s})

    @property
    def job_types(self) -> list[str]:
        return sorted({jt for jt, _, _ in self.steps_per_s})


@dataclass(frozen=True)
class Workload:
    """A trace: its jobs, sorted by arrival, and the throughput table it came with, if any."""

    jobs: tuple[TraceJob, ...]
    throughputs: ThroughputTable | None = None
    source: str = ""

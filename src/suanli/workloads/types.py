"""The records a workload loader produces and the engine consumes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job of a trace, independent of where it will run.

    Work is given either as `total_steps` (Gavel: steps, with per-chip-type throughput from a
    ThroughputTable keyed by `job_type`) or as `duration_s` measured on `reference_accelerator`
    at `num_chips` (Philly, Alibaba, generic CSV), which a performance model or a table scales
    to other chips. LLM jobs (from `generate_llm_mix`) also carry `kind`, `model` (a preset id),
    `tokens` and `seq_len`, so the performance model can derive their duration on any chip.
    `deadline_s` is in seconds after `arrival_s`. `count_range` (min, max) makes the job
    elastic: a policy may run it on any count in the range (`workloads/elastic.py`).
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
    kind: str | None = None
    model: str | None = None
    tokens: float | None = None
    seq_len: int | None = None
    count_range: tuple[int, int] | None = None  # elastic: counts it may run on, inclusive


@dataclass(frozen=True)
class ThroughputTable:
    """Measured steps/s by (job_type, accelerator id, num_chips), as Gavel ships them.

    `steps_per_s` holds isolated throughputs on consolidated placements; 0.0 means the job does
    not run there (Gavel measured it out of memory). Optional extras for an engine that wants
    them: `unconsolidated` (same keys; the job's chips spread over servers) and `colocated`
    (space sharing: key (job_type, accelerator, num_chips, other_type, other_chips) -> the
    pair's steps/s (this job's, the other's) when the two share the chips).
    """

    steps_per_s: dict[tuple[str, str, int], float]
    unconsolidated: dict[tuple[str, str, int], float] = field(default_factory=dict)
    colocated: dict[tuple[str, str, int, str, int], tuple[float, float]] = field(
        default_factory=dict
    )

    def get(self, job_type: str, accelerator: str, num_chips: int) -> float | None:
        return self.steps_per_s.get((job_type, accelerator, num_chips))

    def get_unconsolidated(self, job_type: str, accelerator: str, num_chips: int) -> float | None:
        return self.unconsolidated.get((job_type, accelerator, num_chips))

    def get_colocated(
        self, job_type: str, accelerator: str, num_chips: int, other_type: str, other_chips: int
    ) -> tuple[float, float] | None:
        """(this job's steps/s, the other job's steps/s) when both share the chips."""
        return self.colocated.get((job_type, accelerator, num_chips, other_type, other_chips))

    @property
    def accelerators(self) -> list[str]:
        return sorted({acc for _, acc, _ in self.steps_per_s})

    @property
    def job_types(self) -> list[str]:
        return sorted({jt for jt, _, _ in self.steps_per_s})


@dataclass(frozen=True)
class Workload:
    """A trace: its jobs, sorted by arrival, and the throughput table it came with, if any.

    `metadata` says what a loader did to the file: rows read, rows dropped and why, the
    reference accelerator assumed, the time origin; JSON-friendly values only.
    """

    jobs: tuple[TraceJob, ...]
    throughputs: ThroughputTable | None = None
    source: str = ""
    metadata: dict[str, object] = field(default_factory=dict)

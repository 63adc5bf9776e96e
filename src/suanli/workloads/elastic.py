"""Elastic traces: give a trace's jobs a range of chip counts instead of one.

Traces record the count each job ran on; an elastic scheduler may choose another. The
option here turns a workload elastic the way the elastic-scheduling papers build their
workloads: a job that asked for n chips may run on [max(1, floor(n * min_factor)),
ceil(n * max_factor)] (default [n/2, 2n], capped at `max_count`), or, `gavel_range=True`,
on 1..8 as Gavel's throughput table measures every job type (Sia's setting). Work stays what
the trace says; the engine's adapters give each count its speed (the measured table for
Gavel traces, a strong-scaling curve for durations, `engine/adapters.py`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from suanli.errors import SuanliError
from suanli.workloads.types import TraceJob, Workload

GAVEL_COUNT_RANGE = (1, 8)  # the counts Gavel's table measured


def elastic_range(num_chips: int, min_factor: float, max_factor: float,
                  max_count: int) -> tuple[int, int]:
    """[max(1, floor(n * min_factor)), min(max_count, ceil(n * max_factor))], always holding n."""
    lo = max(1, math.floor(num_chips * min_factor + 1e-9))
    hi = max(num_chips, min(max_count, math.ceil(num_chips * max_factor - 1e-9)))
    return min(lo, num_chips), hi


def make_elastic(workload: Workload, *, min_factor: float = 0.5, max_factor: float = 2.0,
                 max_count: int = 64, gavel_range: bool = False) -> Workload:
    """The same jobs, each allowed a count range (see the module doc); metadata says so."""
    if not 0 < min_factor <= 1 <= max_factor or not math.isfinite(max_factor):
        raise SuanliError(f"elastic: need 0 < min_factor <= 1 <= max_factor, got {min_factor}, "
                          f"{max_factor}", field="min_factor", value=(min_factor, max_factor))
    if max_count < 1:
        raise SuanliError(f"elastic: max_count must be >= 1, got {max_count}",
                          field="max_count", value=max_count)

    def widen(job: TraceJob) -> TraceJob:
        if gavel_range:
            lo, hi = GAVEL_COUNT_RANGE
            span = (min(lo, job.num_chips), max(hi, job.num_chips))
        else:
            span = elastic_range(job.num_chips, min_factor, max_factor, max_count)
        return replace(job, count_range=span)

    meta = {**workload.metadata, "elastic": {"min_factor": min_factor, "max_factor": max_factor,
                                             "max_count": max_count, "gavel_range": gavel_range}}
    return replace(workload, jobs=tuple(widen(j) for j in workload.jobs),
                   source=f"elastic({workload.source})", metadata=meta)

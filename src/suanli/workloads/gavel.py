"""Gavel's job traces and measured throughput table (stanford-futuredata/gavel, OSDI 2020).

A trace line is tab-separated: job_type, command, working_dir, num_steps_arg, needs_data_dir,
total_steps, scale_factor, priority_weight, SLO, arrival_time. As in Gavel's `parse_trace`,
scale_factor is the number of GPUs (>= 1), arrival_time is seconds from the trace start, and
job ids are 0..n-1 in file order. SLO is a multiple of the job's duration on the reference
chip (Gavel: deadline = arrival + SLO x duration); -1 (or any value <= 0) means none.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from suanli.catalog import builtin_catalog
from suanli.errors import SuanliError
from suanli.workloads._parse import TraceError, open_text, parse_float, parse_int
from suanli.workloads.types import ThroughputTable, TraceJob, Workload

TRACE_COLUMNS = (
    "job_type",
    "command",
    "working_dir",
    "num_steps_arg",
    "needs_data_dir",
    "total_steps",
    "scale_factor",
    "priority",
    "SLO",
    "arrival_time",
)

# Gavel computes steps and SLO deadlines from the V100 throughput (generate_job's
# reference_worker_type='v100').
GAVEL_REFERENCE = "V100"

_KEY_RE = re.compile(r"^\('(.*)', (\d+)\)$")


def load_gavel_trace(
    path: str | Path, *, throughputs: ThroughputTable | str | Path | None = None
) -> Workload:
    """Read a Gavel .trace file; with `throughputs`, attach the table and turn SLOs into deadlines.

    Each job's work is `total_steps`; its steps/s on each chip comes from the throughput table
    keyed by (job_type, accelerator, num_chips).
    """
    source = str(path)
    table = (
        load_gavel_throughputs(throughputs)
        if isinstance(throughputs, str | Path)
        else throughputs
    )
    with open_text(path, what="Gavel trace") as f:
        lines = f.read().splitlines()
    jobs: list[TraceJob] = []
    for line_no, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) != len(TRACE_COLUMNS):
            raise TraceError(
                f"expected {len(TRACE_COLUMNS)} tab-separated columns "
                f"({', '.join(TRACE_COLUMNS)}), got {len(cells)}",
                field="<columns>", value=len(cells), line=line_no, source=source,
            )
        job = _trace_job(len(jobs), cells, line_no, source, table)
        jobs.append(job)
    jobs.sort(key=lambda j: j.arrival_s)  # Gavel's traces are already in arrival order
    return Workload(
        jobs=tuple(jobs),
        throughputs=table,
        source=source,
        metadata={"format": "gavel", "rows": len(jobs), "reference_accelerator": GAVEL_REFERENCE},
    )


def _trace_job(
    job_id: int, cells: list[str], line: int, source: str, table: ThroughputTable | None
) -> TraceJob:
    (job_type, command, working_dir, num_steps_arg, needs_data_dir, total_steps_text,
     scale_factor_text, priority_text, slo_text, arrival_text) = cells
    ctx = {"line": line, "source": source}
    total_steps = parse_float(total_steps_text, column="total_steps", **ctx)
    scale_factor = parse_int(scale_factor_text, column="scale_factor", **ctx)
    priority = parse_float(priority_text, column="priority", **ctx)
    slo = parse_float(slo_text, column="SLO", **ctx)
    arrival_s = parse_float(arrival_text, column="arrival_time", **ctx)
    if not job_type.strip():
        raise TraceError("job_type: empty", field="job_type", value=job_type, **ctx)
    if scale_factor < 1:
        raise TraceError(
            f"scale_factor: must be at least 1 GPU, got {scale_factor}",
            field="scale_factor", value=scale_factor, **ctx,
        )
    if total_steps <= 0:
        raise TraceError(
            f"total_steps: must be positive, got {total_steps_text}",
            field="total_steps", value=total_steps_text, **ctx,
        )
    if arrival_s < 0:
        raise TraceError(
            f"arrival_time: must not be negative, got {arrival_text}",
            field="arrival_time", value=arrival_text, **ctx,
        )
    deadline_s = None
    if slo > 0 and table is not None:
        rate = table.get(job_type, GAVEL_REFERENCE, scale_factor)
        if rate:
            deadline_s = slo * total_steps / rate
    return TraceJob(
        job_id=job_id,
        arrival_s=arrival_s,
        num_chips=scale_factor,
        job_type=job_type,
        total_steps=total_steps,
        priority=priority,
        deadline_s=deadline_s,
        extra={
            "command": command,
            "working_dir": working_dir,
            "num_steps_arg": num_steps_arg,
            "needs_data_dir": needs_data_dir,
            "slo": slo_text,
        },
    )


def load_gavel_throughputs(path: str | Path) -> ThroughputTable:
    """Read Gavel's simulation_throughputs.json into a ThroughputTable.

    Keys: worker type ('k80', 'p100', 'v100', optionally with '_unconsolidated') ->
    "('Job type', scale_factor)" -> {"null": isolated steps/s, "('Other', sf)": [this, other]}.
    Worker types resolve to catalog ids ('v100' -> 'V100').
    """
    source = str(path)
    with open_text(path, what="Gavel throughputs file") as f:
        try:
            raw = json.load(f)
        except json.JSONDecodeError as exc:
            raise TraceError(
                f"not valid JSON: {exc.msg}", field="<file>", line=exc.lineno, source=source
            ) from None
    if not isinstance(raw, dict):
        raise TraceError("expected a JSON object keyed by worker type", field="<root>",
                         source=source)
    catalog = builtin_catalog()
    isolated: dict[tuple[str, str, int], float] = {}
    unconsolidated: dict[tuple[str, str, int], float] = {}
    colocated: dict[tuple[str, str, int, str, int], tuple[float, float]] = {}
    for worker_type, by_job in raw.items():
        name, _, suffix = worker_type.partition("_")
        if suffix not in ("", "unconsolidated"):
            raise TraceError(f"unknown worker type {worker_type!r}", field=worker_type,
                             value=worker_type, source=source)
        accelerator = catalog.get(name, field=f"{source}: worker type").id
        target = isolated if not suffix else unconsolidated
        if not isinstance(by_job, dict):
            raise TraceError(f"{worker_type}: expected an object of job types",
                             field=worker_type, source=source)
        for key, measured in by_job.items():
            job_type, chips = _parse_key(key, f"{worker_type}.{key}", source)
            if not isinstance(measured, dict) or "null" not in measured:
                raise TraceError(
                    f"{worker_type}.{key}: expected an object with a 'null' (isolated) entry",
                    field=f"{worker_type}.{key}", source=source,
                )
            target[(job_type, accelerator, chips)] = _rate(
                measured["null"], f"{worker_type}.{key}.null", source
            )
            if suffix:
                continue
            for other_key, pair in measured.items():
                if other_key == "null":
                    continue
                where = f"{worker_type}.{key}.{other_key}"
                other_type, other_chips = _parse_key(other_key, where, source)
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise TraceError(f"{where}: expected a pair [this, other]", field=where,
                                     value=pair, source=source)
                colocated[(job_type, accelerator, chips, other_type, other_chips)] = (
                    _rate(pair[0], where, source),
                    _rate(pair[1], where, source),
                )
    return ThroughputTable(
        steps_per_s=isolated, unconsolidated=unconsolidated, colocated=colocated
    )


def _parse_key(key: str, where: str, source: str) -> tuple[str, int]:
    match = _KEY_RE.match(key)
    if match is None:
        raise TraceError(
            f"{where}: expected a key like \"('ResNet-18 (batch size 64)', 1)\"",
            field=where, value=key, source=source,
        )
    return match.group(1), int(match.group(2))


def _rate(value: object, where: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise TraceError(f"{where}: expected a non-negative number of steps/s", field=where,
                         value=value, source=source)
    return float(value)


def gavel_reference_duration_s(job: TraceJob, table: ThroughputTable) -> float:
    """The job's isolated run time on Gavel's reference chip (V100) at its scale factor."""
    rate = table.get(job.job_type, GAVEL_REFERENCE, job.num_chips)
    if not rate or job.total_steps is None:
        raise SuanliError(
            f"no V100 throughput for {job.job_type!r} at {job.num_chips} GPUs",
            field="job_type", value=job.job_type,
        )
    return job.total_steps / rate

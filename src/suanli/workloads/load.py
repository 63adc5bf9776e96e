"""One entry point for every trace format, and `--jobs FROM:TO` selection."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from suanli.errors import SuanliError
from suanli.workloads.gavel import load_gavel_trace
from suanli.workloads.openb import load_openb
from suanli.workloads.philly import load_philly
from suanli.workloads.table import PARQUET_SUFFIXES, load_table
from suanli.workloads.types import Workload

FORMATS = ("gavel", "philly", "openb", "csv", "parquet")


def detect_format(path: str | Path) -> str:
    """Guess a trace's format from its name: *.trace is Gavel, philly*.csv Philly, openb_pod*
    openb, *.parquet a table, any other .csv a table (which needs a column mapping)."""
    p = Path(path)
    name = p.name.lower()
    if p.suffix.lower() == ".trace":
        return "gavel"
    if p.suffix.lower() in PARQUET_SUFFIXES:
        return "parquet"
    if name.startswith("philly"):
        return "philly"
    if name.startswith("openb_pod"):
        return "openb"
    if p.suffix.lower() in (".csv", ".tsv", ".txt"):
        return "csv"
    raise SuanliError(
        f"cannot tell the format of {p.name}; give one of {', '.join(FORMATS)}",
        field="format", value=str(path),
    )


def load_workload(path: str | Path, format: str = "auto", **opts: Any) -> Workload:
    """Load a trace: format 'gavel' | 'philly' | 'openb' | 'csv' | 'parquet' (or 'auto').

    Options pass to the loader: gavel(throughputs=), philly(reference_accelerator=),
    openb(node_csv=, reference_accelerator=, include_unscheduled=), csv/parquet(mapping=,
    time_format=, reference_accelerator=).
    """
    fmt = detect_format(path) if format == "auto" else format
    loaders = {
        "gavel": load_gavel_trace,
        "philly": load_philly,
        "openb": load_openb,
        "csv": load_table,
        "parquet": load_table,
    }
    if fmt not in loaders:
        raise SuanliError(f"unknown workload format {fmt!r}; known: {', '.join(FORMATS)}",
                          field="format", value=fmt)
    if fmt in ("csv", "parquet") and "mapping" not in opts:
        raise SuanliError(
            f"a {fmt} job table needs a column mapping (arrival_s, duration_s, num_chips -> "
            "column names)", field="mapping", value=None,
        )
    try:
        return loaders[fmt](path, **opts)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise SuanliError(f"option not known to the {fmt} loader: {exc}", field="opts",
                          value=sorted(opts)) from None


def parse_job_range(text: str) -> tuple[int | None, int | None]:
    """'100:200' -> (100, 200); ':50' -> (None, 50); '10:' -> (10, None); '7' -> (7, 8)."""
    raw = text.strip()
    try:
        if ":" not in raw:
            start = int(raw)
            return start, start + 1
        left, right = raw.split(":", 1)
        return (int(left) if left.strip() else None, int(right) if right.strip() else None)
    except ValueError:
        raise SuanliError(f"jobs: expected FROM:TO (e.g. 0:100), got {text!r}", field="jobs",
                          value=text) from None


def select_jobs(
    workload: Workload, start: int | None = None, end: int | None = None, *, rebase: bool = False
) -> Workload:
    """Jobs [start, end) by position in arrival order, as Python slices count (negatives too).

    Job ids are kept, so results still name the trace's jobs; with `rebase` arrivals shift so
    the first selected job arrives at 0.
    """
    for name, value in (("start", start), ("end", end)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise SuanliError(f"jobs: {name} must be an integer, got {value!r}", field="jobs",
                              value=value)
    jobs = workload.jobs[start:end]
    if rebase and jobs:
        t0 = jobs[0].arrival_s
        jobs = tuple(replace(j, arrival_s=j.arrival_s - t0) for j in jobs)
    metadata = {**workload.metadata, "selected": [start, end], "selected_jobs": len(jobs)}
    if rebase and jobs:
        metadata["rebased_by_s"] = workload.jobs[start:end][0].arrival_s
    return replace(workload, jobs=jobs, metadata=metadata)

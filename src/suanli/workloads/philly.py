"""Microsoft Philly jobs (msr-fiddle/philly-traces, Sep-Dec 2017), as processed by Sia's artifact.

Columns: timestamp (submission, 'YYYY-MM-DD HH:MM:SS'), duration (s), num_gpus, gpu_time,
cluster (the virtual cluster, taken as the tenant). The file is not in time order: jobs are
sorted by timestamp (stable) and numbered 0..n-1 after sorting; arrival is seconds since the
first submission.

Reference chip: Philly's servers held 12 GB and 24 GB Pascal GPUs (the trace's machine list;
Jeon et al., "Analysis of Large-Scale Multi-Tenant GPU Clusters for DNN Training Workloads",
USENIX ATC 2019): P100 and P40. The catalog has the P100 and no P40, so durations are taken
as measured on P100 unless the caller says otherwise.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from suanli.catalog import builtin_catalog
from suanli.workloads._parse import (
    TraceError,
    column_index,
    parse_float,
    parse_int,
    read_rows,
)
from suanli.workloads.types import TraceJob, Workload

PHILLY_REFERENCE = "P100"
# Naive timestamps are read as wall-clock readings, not in this machine's time zone, so
# arrivals do not depend on where (or in which DST period) the loader runs.
_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
COLUMNS = ("timestamp", "duration", "num_gpus", "cluster")


def load_philly(path: str | Path, *, reference_accelerator: str = PHILLY_REFERENCE) -> Workload:
    """Read philly.csv; rows with duration <= 0 or num_gpus <= 0 are dropped and counted.

    Columns are parsed with NumPy (82,247 rows in well under a second); a cell that does not
    parse is found again row by row so the error names its line and column.
    """
    source = str(path)
    reference = builtin_catalog().get(reference_accelerator, field="reference_accelerator").id
    header, rows = read_rows(path, what="Philly trace")
    idx = tuple(column_index(header, c, source=source) for c in COLUMNS)
    i_ts, i_dur, i_gpus, i_vc = idx
    width = max(idx) + 1
    if rows and min(map(len, rows)) < width:
        line = next(n for n, r in enumerate(rows, start=2) if len(r) < width)
        raise TraceError(
            f"expected at least {width} columns, got {len(rows[line - 2])}",
            field="<columns>", value=len(rows[line - 2]), line=line, source=source,
        )
    try:
        ts = np.array([r[i_ts] for r in rows], dtype="datetime64[s]").astype(np.int64)
        duration = np.array([r[i_dur] for r in rows]).astype(np.float64)
        gpus = np.array([r[i_gpus] for r in rows]).astype(np.int64)
    except ValueError:
        ts, duration, gpus = _parse_rows(rows, idx, source)
    if not np.isfinite(duration).all():
        line = int(np.flatnonzero(~np.isfinite(duration))[0]) + 2
        parse_float(rows[line - 2][i_dur], column="duration", line=line, source=source)

    bad_duration = duration <= 0
    bad_gpus = ~bad_duration & (gpus <= 0)
    keep = np.flatnonzero(~(bad_duration | bad_gpus))
    keep = keep[np.argsort(ts[keep], kind="stable")]  # equal timestamps keep file order
    t0 = int(ts[keep[0]]) if keep.size else 0
    arrivals = (ts[keep] - t0).astype(np.float64).tolist()
    durations = duration[keep].tolist()
    chips = gpus[keep].tolist()
    tenants = [rows[i][i_vc] for i in keep.tolist()]
    jobs = tuple(
        TraceJob(
            job_id=i, arrival_s=arrival, num_chips=n, duration_s=d,
            reference_accelerator=reference, tenant=vc,
        )
        for i, (arrival, n, d, vc) in enumerate(
            zip(arrivals, chips, durations, tenants, strict=True)
        )
    )
    start = (_EPOCH + t0 * _SECOND).isoformat(sep=" ") if keep.size else None
    return Workload(
        jobs=jobs,
        source=source,
        metadata={
            "format": "philly",
            "rows": len(rows),
            "jobs": len(jobs),
            "dropped_nonpositive_duration": int(bad_duration.sum()),
            "dropped_nonpositive_gpus": int(bad_gpus.sum()),
            "reference_accelerator": reference,
            "start_time": start,
        },
    )


def _parse_rows(
    rows: list[list[str]], idx: tuple[int, ...], source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse row by row: slower, but an error names the line and the column at fault."""
    i_ts, i_dur, i_gpus = idx[:3]
    ts, duration, gpus = [], [], []
    for line, row in enumerate(rows, start=2):
        try:
            ts.append((datetime.fromisoformat(row[i_ts]) - _EPOCH) // _SECOND)
        except ValueError:
            raise TraceError(
                f"timestamp: not a date-time like '2017-10-09 07:01:55': {row[i_ts]!r}",
                field="timestamp", value=row[i_ts], line=line, source=source,
            ) from None
        duration.append(parse_float(row[i_dur], column="duration", line=line, source=source))
        gpus.append(parse_int(row[i_gpus], column="num_gpus", line=line, source=source))
    return np.array(ts, dtype=np.int64), np.array(duration), np.array(gpus, dtype=np.int64)

"""Any CSV or Parquet job table, read through a mapping of TraceJob fields to column names."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

from suanli.catalog import builtin_catalog
from suanli.errors import SuanliError
from suanli.workloads._parse import TraceError, column_index, parse_float, parse_int, read_rows
from suanli.workloads.types import TraceJob, Workload

REQUIRED_FIELDS = ("arrival_s", "duration_s", "num_chips")
OPTIONAL_FIELDS = (
    "job_type", "tenant", "priority", "deadline_s", "total_steps", "allowed_accelerators",
)
PARQUET_SUFFIXES = (".parquet", ".pq")

_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)


def load_table(
    path: str | Path,
    mapping: dict[str, str],
    *,
    time_format: str | None = None,
    reference_accelerator: str | None = None,
) -> Workload:
    """Read a job table; `mapping` maps TraceJob field names to the file's column names.

    Required: arrival_s, duration_s, num_chips. Optional: job_type, tenant, priority,
    deadline_s (seconds after arrival), total_steps, allowed_accelerators ('|'-separated
    names, resolved through the catalog). Arrivals are seconds, or with `time_format` date-times
    (a strptime format, or 'iso'), counted from the earliest. Jobs are sorted by arrival
    (stable) and numbered 0..n-1. `.parquet` files need pyarrow (or pandas) installed.
    """
    source = str(path)
    _check_mapping(mapping)
    reference = (
        builtin_catalog().get(reference_accelerator, field="reference_accelerator").id
        if reference_accelerator
        else None
    )
    header, rows = _read(path)
    col = {
        f: column_index(header, c, source=source, field=f) for f, c in mapping.items()
    }
    width = max(col.values()) + 1
    parse_time = _time_parser(time_format)

    parsed: list[tuple[float, dict[str, object]]] = []
    for line, row in enumerate(rows, start=2):
        if len(row) < width:
            raise TraceError(f"expected at least {width} columns, got {len(row)}",
                             field="<columns>", value=len(row), line=line, source=source)
        ctx = {"line": line, "source": source}
        cells = {f: row[i] for f, i in col.items()}
        name = mapping["arrival_s"]
        arrival = (
            parse_time(cells["arrival_s"], name, line, source)
            if parse_time
            else parse_float(cells["arrival_s"], column=name, **ctx)
        )
        duration = parse_float(cells["duration_s"], column=mapping["duration_s"], **ctx)
        chips = parse_int(cells["num_chips"], column=mapping["num_chips"], **ctx)
        if chips <= 0:
            raise TraceError(f"{mapping['num_chips']}: must be at least 1 chip, got {chips}",
                             field=mapping["num_chips"], value=chips, **ctx)
        if duration <= 0:
            raise TraceError(f"{mapping['duration_s']}: must be positive, got {duration}",
                             field=mapping["duration_s"], value=cells["duration_s"], **ctx)
        if not parse_time and arrival < 0:
            raise TraceError(f"{name}: must not be negative, got {arrival}", field=name,
                             value=cells["arrival_s"], **ctx)
        fields: dict[str, object] = {"num_chips": chips, "duration_s": duration}
        for f in OPTIONAL_FIELDS:
            if f in cells:
                value = _optional(f, cells[f], mapping[f], line, source)
                if value is not None:
                    fields[f] = value
        parsed.append((arrival, fields))

    parsed.sort(key=lambda t: t[0])
    t0 = parsed[0][0] if parsed and parse_time else 0.0
    jobs = tuple(
        TraceJob(job_id=i, arrival_s=arrival - t0, reference_accelerator=reference, **fields)
        for i, (arrival, fields) in enumerate(parsed)
    )
    metadata: dict[str, object] = {
        "format": "table",
        "rows": len(rows),
        "jobs": len(jobs),
        "mapping": dict(mapping),
        "reference_accelerator": reference,
    }
    if parse_time and parsed:
        metadata["start_time"] = (_EPOCH + t0 * _SECOND).isoformat(sep=" ")
    return Workload(jobs=jobs, source=source, metadata=metadata)


def _check_mapping(mapping: dict[str, str]) -> None:
    if not isinstance(mapping, dict):
        raise SuanliError("mapping must be a dict of TraceJob field -> column name",
                          field="mapping", value=mapping)
    known = (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)
    for f in mapping:
        if f not in known:
            raise SuanliError(
                f"mapping: unknown field {f!r}; fields are {', '.join(known)}",
                field=f"mapping.{f}", value=f,
            )
    for f in REQUIRED_FIELDS:
        if not mapping.get(f):
            raise SuanliError(f"mapping: {f!r} is required (the column holding it)",
                              field=f"mapping.{f}", value=None)


def _optional(field: str, text: str, column: str, line: int, source: str) -> object:
    text = text.strip()
    if text == "":
        return None
    if field in ("job_type", "tenant"):
        return text
    if field == "allowed_accelerators":
        catalog = builtin_catalog()
        out = []
        for name in text.split("|"):
            if name.strip():
                acc = catalog.find(name.strip())
                if acc is None:
                    raise TraceError(f"{column}: unknown accelerator {name.strip()!r}",
                                     field=column, value=name.strip(), line=line, source=source)
                out.append(acc.id)
        return tuple(dict.fromkeys(out))
    value = parse_float(text, column=column, line=line, source=source)
    if field in ("deadline_s", "total_steps") and value <= 0:
        raise TraceError(f"{column}: must be positive, got {text}", field=column, value=text,
                         line=line, source=source)
    return value


def _time_parser(time_format: str | None):
    if time_format is None:
        return None

    def parse(text: str, column: str, line: int, source: str) -> float:
        try:
            if time_format == "iso":
                when = datetime.fromisoformat(text.strip())
            else:
                when = datetime.strptime(text.strip(), time_format)
        except ValueError:
            raise TraceError(
                f"{column}: not a date-time in format {time_format!r}: {text!r}",
                field=column, value=text, line=line, source=source,
            ) from None
        if when.tzinfo is not None:
            return when.timestamp()
        return (when - _EPOCH) / _SECOND

    return parse


def _read(path: str | Path) -> tuple[list[str], list[list[str]]]:
    if Path(path).suffix.lower() in PARQUET_SUFFIXES:
        return _read_parquet(path)
    return read_rows(path, what="job table")


def _read_parquet(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """Parquet through pyarrow (or pandas); cells become strings so one parser serves both."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    if pq is not None:
        try:
            table = pq.read_table(str(path))
        except OSError as exc:
            raise SuanliError(f"cannot read Parquet file {path}: {exc}", field="path",
                              value=str(path)) from None
        columns = {name: table.column(name).to_pylist() for name in table.column_names}
    else:
        try:
            import pandas as pd
        except ImportError:
            raise SuanliError(
                f"reading Parquet ({path}) needs the 'pyarrow' package (or 'pandas' with a "
                "Parquet engine); install it with: pip install pyarrow",
                field="path", value=str(path),
            ) from None
        frame = pd.read_parquet(path)
        columns = {str(c): frame[c].tolist() for c in frame.columns}
    header = list(columns)
    n = len(next(iter(columns.values()), []))
    rows = [[_cell(columns[h][i]) for h in header] for i in range(n)]
    return header, rows


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)

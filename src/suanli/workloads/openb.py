"""Alibaba's openb GPU cluster trace (alibaba/clusterdata, cluster-trace-gpu-v2023).

Pods: name, cpu_milli, memory_mib, num_gpu, gpu_milli, gpu_spec, qos, pod_phase, creation_time,
deletion_time, scheduled_time (seconds from the trace start). A pod is a job: it arrives at
creation_time and runs from scheduled_time (creation_time when it was never scheduled) until
deletion_time. gpu_milli < 1000 is a fractional share of one GPU: such a pod takes 1 chip here
and keeps the share in extra['gpu_milli'] (the engine schedules whole chips). CPU-only pods
(num_gpu == 0) are skipped and counted.

gpu_spec, when set, lists the GPU models a pod accepts, separated by '|' (e.g. 'V100M16|V100M32').
Models map to catalog ids where the catalog has the chip (V100M16/V100M32 -> V100, P100, T4,
A10). G1, G2 and G3 are anonymised internal models with no public specification: they stay
as written, so they match nodes of the same name and no catalog chip.

Nodes: sn, cpu_milli, memory_mib, gpu (count), model.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from suanli.catalog import builtin_catalog
from suanli.workloads._parse import TraceError, column_index, parse_float, parse_int, read_rows
from suanli.workloads.types import TraceJob, Workload

POD_COLUMNS = ("name", "num_gpu", "gpu_milli", "creation_time", "deletion_time")
OPTIONAL_POD_COLUMNS = ("cpu_milli", "memory_mib", "gpu_spec", "qos", "pod_phase",
                        "scheduled_time")
NODE_COLUMNS = ("gpu", "model")

_MEMORY_SUFFIX = re.compile(r"^(.+?)M\d+$")  # 'V100M16': a V100 with 16 GB


@cache
def openb_accelerator(model: str) -> str:
    """Catalog id for an openb GPU model name; names the catalog lacks (G1-G3) stay as written."""
    name = model.strip()
    catalog = builtin_catalog()
    acc = catalog.find(name)
    if acc is None and (m := _MEMORY_SUFFIX.match(name)):
        acc = catalog.find(m.group(1))
    return acc.id if acc is not None else name


def parse_gpu_spec(spec: str) -> tuple[str, ...]:
    """'V100M16|V100M32' -> ('V100',); '' -> () (any GPU). Order kept, duplicates dropped."""
    out: list[str] = []
    for part in spec.split("|"):
        if part.strip():
            acc = openb_accelerator(part)
            if acc not in out:
                out.append(acc)
    return tuple(out)


def load_openb(
    pod_csv: str | Path,
    node_csv: str | Path | None = None,
    *,
    reference_accelerator: str | None = None,
    include_unscheduled: bool = True,
) -> Workload:
    """Read openb_pod_list_*.csv as jobs sorted by creation time (ids 0..n-1 after sorting).

    `reference_accelerator` names the chip the durations were measured on; openb does not say
    (pods ran on a mix of T4, P100, V100, A10 and G1-G3), so it is None unless given.
    `node_csv`, when given, puts the cluster inventory in metadata['cluster'].
    `include_unscheduled=False` skips pods that never got scheduled (no scheduled_time).
    """
    source = str(pod_csv)
    reference = (
        builtin_catalog().get(reference_accelerator, field="reference_accelerator").id
        if reference_accelerator
        else None
    )
    header, rows = read_rows(pod_csv, what="openb pod list")
    col = {c: column_index(header, c, source=source) for c in POD_COLUMNS}
    for c in OPTIONAL_POD_COLUMNS:
        if c in header:
            col[c] = header.index(c)
    width = max(col.values()) + 1

    parsed: list[tuple[float, int, float, tuple[str, ...], dict[str, str]]] = []
    cpu_only = nonpositive = unscheduled = skipped_unscheduled = 0
    for line, row in enumerate(rows, start=2):
        if len(row) < width:
            raise TraceError(f"expected at least {width} columns, got {len(row)}",
                             field="<columns>", value=len(row), line=line, source=source)
        ctx = {"line": line, "source": source}
        num_gpu = parse_int(row[col["num_gpu"]], column="num_gpu", **ctx)
        gpu_milli = parse_int(row[col["gpu_milli"]], column="gpu_milli", **ctx)
        created = parse_float(row[col["creation_time"]], column="creation_time", **ctx)
        deleted = parse_float(row[col["deletion_time"]], column="deletion_time", **ctx)
        sched_text = row[col["scheduled_time"]].strip() if "scheduled_time" in col else ""
        scheduled = (
            parse_float(sched_text, column="scheduled_time", **ctx) if sched_text else None
        )
        if num_gpu < 0:
            raise TraceError(f"num_gpu: must not be negative, got {num_gpu}", field="num_gpu",
                             value=num_gpu, **ctx)
        if not 0 <= gpu_milli <= 1000:
            raise TraceError(f"gpu_milli: must be 0..1000, got {gpu_milli}", field="gpu_milli",
                             value=gpu_milli, **ctx)
        if num_gpu == 0:
            cpu_only += 1
            continue
        if scheduled is None:
            unscheduled += 1
            if not include_unscheduled:
                skipped_unscheduled += 1
                continue
        duration = deleted - (scheduled if scheduled is not None else created)
        if duration <= 0:
            nonpositive += 1
            continue
        extra = {"name": row[col["name"]], "gpu_milli": str(gpu_milli)}
        for c in ("cpu_milli", "memory_mib", "qos", "pod_phase"):
            if c in col:
                extra[c] = row[col[c]]
        extra["scheduled"] = "1" if scheduled is not None else "0"
        spec = row[col["gpu_spec"]] if "gpu_spec" in col else ""
        parsed.append((created, num_gpu, duration, parse_gpu_spec(spec), extra))

    parsed.sort(key=lambda t: t[0])  # stable: pods created together keep file order
    jobs = tuple(
        TraceJob(
            job_id=i,
            arrival_s=created,
            num_chips=num_gpu,
            duration_s=duration,
            reference_accelerator=reference,
            allowed_accelerators=allowed,
            extra=extra,
        )
        for i, (created, num_gpu, duration, allowed, extra) in enumerate(parsed)
    )
    metadata: dict[str, object] = {
        "format": "openb",
        "rows": len(rows),
        "jobs": len(jobs),
        "skipped_cpu_only": cpu_only,
        "dropped_nonpositive_duration": nonpositive,
        "unscheduled": unscheduled,
        "skipped_unscheduled": skipped_unscheduled,
        "fractional_gpu_jobs": sum(1 for j in jobs if j.extra["gpu_milli"] != "1000"),
        "reference_accelerator": reference,
    }
    if node_csv is not None:
        metadata["cluster"] = load_openb_nodes(node_csv)
    return Workload(jobs=jobs, source=source, metadata=metadata)


def load_openb_nodes(node_csv: str | Path) -> dict[str, int]:
    """The GPU inventory of openb_node_list_*.csv: {accelerator id: chips}, largest first.

    Models map as in `parse_gpu_spec`: V100M16 and V100M32 both count as V100; G1-G3 stay.
    """
    source = str(node_csv)
    header, rows = read_rows(node_csv, what="openb node list")
    i_gpu, i_model = (column_index(header, c, source=source) for c in NODE_COLUMNS)
    width = max(i_gpu, i_model) + 1
    chips: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        if len(row) < width:
            raise TraceError(f"expected at least {width} columns, got {len(row)}",
                             field="<columns>", value=len(row), line=line, source=source)
        count = parse_int(row[i_gpu], column="gpu", line=line, source=source)
        if count < 0:
            raise TraceError(f"gpu: must not be negative, got {count}", field="gpu",
                             value=count, line=line, source=source)
        model = row[i_model].strip()
        if count == 0:
            continue
        if not model:
            raise TraceError("model: empty for a node with GPUs", field="model", value=model,
                             line=line, source=source)
        acc = openb_accelerator(model)
        chips[acc] = chips.get(acc, 0) + count
    return dict(sorted(chips.items(), key=lambda kv: (-kv[1], kv[0])))

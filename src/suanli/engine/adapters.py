"""Turn trace jobs and job specs into EngineJobs: work, and its speed on every pool.

Where the work comes from:
- Gavel traces: work = total_steps; steps/s per pool from the measured ThroughputTable at the
  job's chip count (a pool whose chip has no entry, or 0, cannot run the job).
- Traces with only a duration on a reference chip (Philly, Alibaba, generic CSV): work =
  reference seconds; a pool runs `peak(pool chip) / peak(reference chip)` reference seconds per
  second, the ratio of dense BF16/FP16 peak TFLOPS from the catalog (a compute-bound scaling;
  it does not model memory-bound jobs or interconnects).
- LLM trace jobs (kind train/finetune with a model and tokens) and job specs: the
  performance model (`suanli.perf.estimate`) per pool chip at the job's count; work = tokens
  for training and fine-tuning, else seconds on the fastest pool.

Elastic jobs (a trace job's `count_range`, a spec's `count: {min, max}`) also get their speed
at each candidate count (`ElasticSpeed`), in the same work units:
- Gavel traces: the measured table at every count it has for the job type within the range
  (1, 2, 4, 8 GPUs).
- Durations: an Amdahl strong-scaling curve, speedup(n) = 1 / (s + (1 - s) / n) with serial
  fraction s = AMDAHL_SERIAL_FRACTION, relative to the count the duration was measured on.
  This is an assumption, not a measurement: a fixed global batch split over more chips keeps
  its per-step synchronisation and input pipeline, so speed grows sub-linearly (s = 0.05 gives
  1.9x on 2 chips, 5.9x on 8, 12.5x on 32; Gavel's measured table spans about 1.5x-7.5x at 8
  GPUs). The performance model's generic per-doubling losses (`perf/generic.py`, 1-3 %) are
  weak-scaling figures and would make wider always almost free.
- Job specs: the performance model at each candidate count (powers of two and the range's
  ends, `plan.counts.candidate_counts`).
"""

from __future__ import annotations

import math

from suanli.catalog import Catalog, builtin_catalog
from suanli.engine.cluster import Cluster
from suanli.engine.types import DataNeed, ElasticSpeed, EngineJob
from suanli.errors import SuanliError
from suanli.workloads.types import ThroughputTable, TraceJob, Workload

DEFAULT_REFERENCE = "V100"
AMDAHL_SERIAL_FRACTION = 0.05  # strong scaling of duration-only jobs (module doc)
MAX_ELASTIC_COUNTS = 8  # candidate counts per job, at most (the smallest ones kept)


def amdahl_speedup(n: float, serial: float = AMDAHL_SERIAL_FRACTION) -> float:
    """Speed on n chips relative to one chip under Amdahl's law."""
    return 1.0 / (serial + (1.0 - serial) / n)


def _range_counts(lo: int, hi: int, n: int) -> tuple[int, ...]:
    """Powers of two and the range's ends in [lo, hi], with n, at most MAX_ELASTIC_COUNTS."""
    from suanli.plan.counts import candidate_counts

    counts = sorted({*candidate_counts(lo, hi, ()).tolist(), n})
    while len(counts) > MAX_ELASTIC_COUNTS:
        counts.remove(next(c for c in reversed(counts) if c != n))
    return tuple(int(c) for c in counts)


def _gavel_elastic(trace_job: TraceJob, cluster: Cluster, throughputs: ThroughputTable,
                   catalog: Catalog) -> ElasticSpeed | None:
    """Measured steps/s at every count the table has for the job type within its range."""
    assert trace_job.count_range is not None
    lo, hi = trace_job.count_range
    n = trace_job.num_chips
    measured = sorted({c for jt, _acc, c in throughputs.steps_per_s
                       if jt == trace_job.job_type and lo <= c <= hi} | {n})
    by_count: dict[int, dict[str, float]] = {}
    for c in measured:
        rates = {}
        for pool in cluster.pools:
            if _allowed(trace_job, pool.accelerator, catalog):
                rate = throughputs.get(trace_job.job_type, pool.accelerator, c)
                if rate:
                    rates[pool.pool_id] = float(rate)
        if rates or c == n:
            by_count[c] = rates
    return ElasticSpeed(tuple(by_count), by_count) if len(by_count) > 1 else None


def _amdahl_elastic(trace_job: TraceJob, rates: dict[str, float]) -> ElasticSpeed | None:
    """`rates` (at the trace's count) scaled to each count of the range by Amdahl's law."""
    assert trace_job.count_range is not None
    n = trace_job.num_chips
    counts = _range_counts(*trace_job.count_range, n)
    if len(counts) < 2:
        return None
    by_count = {c: {pid: r * amdahl_speedup(c) / amdahl_speedup(n) for pid, r in rates.items()}
                for c in counts}
    return ElasticSpeed(counts, by_count)


def _peak(catalog: Catalog, name: str) -> float:
    acc = catalog.find(name)
    if acc is None:
        raise SuanliError(f"unknown accelerator {name!r}", field="reference_accelerator",
                          value=name)
    return acc.bf16_tflops


def _peak_ratios(cluster: Cluster, catalog: Catalog, ref_name: str) -> dict[str, float]:
    """pool id -> peak(pool chip) / peak(reference chip), cached on the cluster."""
    key = (id(catalog), ref_name)
    cached = cluster.derived.get(key)
    if cached is None:
        ref_peak = _peak(catalog, ref_name)
        cached = {}
        for pool in cluster.pools:
            acc = catalog.find(pool.accelerator)
            if acc is not None:
                cached[pool.pool_id] = acc.bf16_tflops / ref_peak
        cluster.derived[key] = cached
    return cached


def _allowed(trace_job: TraceJob, accelerator: str, catalog: Catalog) -> bool:
    if not trace_job.allowed_accelerators:
        return True
    for name in trace_job.allowed_accelerators:
        acc = catalog.find(name)
        if (acc.id if acc else name) == accelerator:
            return True
    return False


def engine_job_from_trace(
    trace_job: TraceJob,
    cluster: Cluster,
    throughputs: ThroughputTable | None = None,
    catalog: Catalog | None = None,
    *,
    reference_accelerator: str | None = None,
) -> EngineJob:
    """One trace job as the engine runs it on `cluster` (see the module doc for the scaling)."""
    catalog = catalog or builtin_catalog()
    rates: dict[str, float] = {}
    meta: dict[str, object] = {"job_type": trace_job.job_type, "trace_id": trace_job.job_id}
    elastic: ElasticSpeed | None = None
    if trace_job.total_steps is not None and throughputs is not None:
        total = float(trace_job.total_steps)
        for pool in cluster.pools:
            if not _allowed(trace_job, pool.accelerator, catalog):
                continue
            rate = throughputs.get(trace_job.job_type, pool.accelerator, trace_job.num_chips)
            if rate:
                rates[pool.pool_id] = float(rate)
        ref = throughputs.get(trace_job.job_type, DEFAULT_REFERENCE, trace_job.num_chips)
        if ref:
            meta["reference_throughput"] = float(ref)
        meta["work_unit"] = "steps"
        if trace_job.count_range is not None:
            elastic = _gavel_elastic(trace_job, cluster, throughputs, catalog)
    elif trace_job.kind in ("train", "finetune") and trace_job.tokens and trace_job.model:
        return _llm_trace_job(trace_job, cluster, catalog)
    elif trace_job.duration_s is not None:
        ref_name = trace_job.reference_accelerator or reference_accelerator or DEFAULT_REFERENCE
        total = float(trace_job.duration_s)
        ratios = _peak_ratios(cluster, catalog, ref_name)
        if trace_job.allowed_accelerators:
            rates = {pid: r for pid, r in ratios.items()
                     if _allowed(trace_job, cluster.pool(pid).accelerator, catalog)}
        else:
            rates = dict(ratios)
        meta["reference_throughput"] = 1.0
        meta["work_unit"] = f"seconds on {ref_name}"
        if trace_job.count_range is not None:
            elastic = _amdahl_elastic(trace_job, rates)
    elif trace_job.total_steps is not None:
        raise SuanliError(
            f"job {trace_job.job_id}: work is in steps but no throughput table was given",
            field="throughputs",
        )
    else:
        raise SuanliError(f"job {trace_job.job_id}: no work (total_steps or duration_s)",
                          field="duration_s")
    deadline = (trace_job.arrival_s + trace_job.deadline_s
                if trace_job.deadline_s is not None and trace_job.deadline_s > 0 else math.inf)
    return EngineJob(
        job_id=str(trace_job.job_id),
        num_chips=int(trace_job.num_chips),
        total_work=total,
        throughput=rates,
        arrival_s=float(trace_job.arrival_s),
        priority=float(trace_job.priority) if trace_job.priority > 0 else 1.0,
        tenant=trace_job.tenant,
        deadline_s=deadline,
        checkpoint_interval_s=trace_job.checkpoint_interval_s,
        restore_s=trace_job.restore_s,
        meta=meta,
        elastic=elastic,
    )


def _llm_trace_job(trace_job: TraceJob, cluster: Cluster, catalog: Catalog) -> EngineJob:
    from suanli.jobs.spec import parse_job

    work: dict[str, object] = {"tokens": float(trace_job.tokens or 0)}
    if trace_job.seq_len:
        work["seq_len"] = int(trace_job.seq_len)
    if trace_job.kind == "finetune" and trace_job.extra.get("lora_rank"):
        work["lora_rank"] = int(trace_job.extra["lora_rank"])
    spec = parse_job({
        "name": f"job-{trace_job.job_id}",
        "kind": trace_job.kind,
        "model": trace_job.model,
        "work": work,
        "resources": {
            "count": ({"min": trace_job.count_range[0], "max": trace_job.count_range[1]}
                      if trace_job.count_range else int(trace_job.num_chips)),
            "accelerators": list(trace_job.allowed_accelerators),
        },
        "checkpoint_interval_s": trace_job.checkpoint_interval_s,
        "checkpoint_restore_s": trace_job.restore_s,
        "tenant": trace_job.tenant,
    }, source=f"trace job {trace_job.job_id}")
    job = engine_job_from_spec(str(trace_job.job_id), spec, cluster, trace_job.arrival_s,
                               catalog=catalog, count=int(trace_job.num_chips))
    meta = {**job.meta, "job_type": trace_job.job_type, "trace_id": trace_job.job_id}
    deadline = (trace_job.arrival_s + trace_job.deadline_s
                if trace_job.deadline_s is not None and trace_job.deadline_s > 0 else math.inf)
    return EngineJob(
        job_id=job.job_id, num_chips=job.num_chips, total_work=job.total_work,
        throughput=job.throughput, arrival_s=job.arrival_s,
        priority=float(trace_job.priority) if trace_job.priority > 0 else 1.0,
        tenant=trace_job.tenant, deadline_s=deadline,
        checkpoint_interval_s=job.checkpoint_interval_s, restore_s=job.restore_s,
        max_retries=job.max_retries, meta=meta, elastic=job.elastic,
    )


def engine_jobs_from_workload(
    workload: Workload,
    cluster: Cluster,
    catalog: Catalog | None = None,
    *,
    reference_accelerator: str | None = None,
) -> list[EngineJob]:
    """Every job of a workload; durations without a chip are on the workload's reference."""
    ref = reference_accelerator or workload.metadata.get("reference_accelerator")
    return [
        engine_job_from_trace(j, cluster, workload.throughputs, catalog,
                              reference_accelerator=str(ref) if ref else None)
        for j in workload.jobs
    ]


def engine_job_from_spec(
    job_id: str,
    job_spec,
    cluster: Cluster,
    arrival_s: float,
    *,
    catalog: Catalog | None = None,
    count: int | None = None,
) -> EngineJob:
    """A submitted job spec, timed by the performance model on each pool's chip.

    The gang is `count` chips (default: the spec's minimum count). Training and fine-tuning
    work is in tokens (throughput = tokens/s); other kinds are in seconds on the fastest pool.
    Pools whose chip is not allowed, whose region is not allowed, or where the job does not
    fit in memory cannot run it. Priority p (an integer, default 0) becomes weight max(1, 1+p).
    """
    catalog = catalog or builtin_catalog()
    n = int(count or job_spec.min_count)
    durations, rates, reasons = _spec_speeds(job_spec, cluster, n, catalog)
    token_work = job_spec.kind in ("train", "finetune") and hasattr(job_spec.work, "tokens")
    if token_work:
        total = float(job_spec.work.tokens)
        throughput = {pid: r for pid, r in rates.items() if r > 0}
        unit = "tokens"
    else:
        best = min(durations.values()) if durations else 1.0
        total = best
        throughput = {pid: best / d for pid, d in durations.items()}
        unit = "seconds on the fastest pool"
    elastic = None
    if job_spec.max_count > job_spec.min_count:
        elastic = _spec_elastic(job_spec, cluster, n, catalog, token_work, total)
    meta: dict[str, object] = {"kind": job_spec.kind, "name": job_spec.name, "work_unit": unit}
    if reasons:
        meta["infeasible"] = sorted(set(reasons))
    dataset = None
    ref = job_spec.dataset
    known = cluster.network.dataset(ref.name) if ref is not None and cluster.network else None
    location = (ref.location or (known.location if known else None)) if ref else None
    if ref is not None and location and cluster.network:
        meta["data_region"] = cluster.network.region_of(location)
        size = ref.size_gb if ref.size_gb is not None else (known.size_gb if known else 0.0)
        dataset = DataNeed(ref.name, float(size), meta["data_region"])
    deadline = arrival_s + job_spec.deadline_s if job_spec.deadline_s else math.inf
    return EngineJob(
        job_id=job_id,
        num_chips=n,
        total_work=total if total > 0 else 1.0,
        throughput=throughput,
        arrival_s=float(arrival_s),
        priority=max(1.0, 1.0 + float(job_spec.priority)),
        tenant=job_spec.tenant,
        deadline_s=deadline,
        checkpoint_interval_s=job_spec.checkpoint_interval_s,
        restore_s=job_spec.checkpoint_restore_s,
        max_retries=job_spec.max_retries,
        meta=meta,
        spec=job_spec,
        dataset=dataset,
        objective="cost" if job_spec.objective == "cost" else "time",
        elastic=elastic,
    )


def _spec_speeds(job_spec, cluster: Cluster, n: int, catalog: Catalog
                 ) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """(duration_s, tokens/s) per pool that can run the spec on n chips, and why others cannot.

    Pools whose chip or region is not allowed, or where the job does not fit, are left out.
    """
    from suanli.perf import estimate

    allowed = {catalog.get(a).id for a in job_spec.resources.accelerators} or None
    regions = set(job_spec.regions) or None
    durations: dict[str, float] = {}
    rates: dict[str, float] = {}
    reasons: list[str] = []
    cache: dict[str, object] = {}
    for pool in cluster.pools:
        if allowed is not None and pool.accelerator not in allowed:
            continue
        if regions is not None and pool.region not in regions and pool.center not in regions:
            continue
        est = cache.get(pool.accelerator)
        if est is None:
            est = estimate(job_spec, pool.accelerator, n, catalog=catalog)
            cache[pool.accelerator] = est
        if not est.fits or not (est.duration_s > 0) or not math.isfinite(est.duration_s):
            if est.reason:
                reasons.append(f"{pool.accelerator}: {est.reason}")
            continue
        durations[pool.pool_id] = float(est.duration_s)
        rates[pool.pool_id] = float(est.tokens_per_s)
    return durations, rates, reasons


def _spec_elastic(job_spec, cluster: Cluster, n: int, catalog: Catalog, token_work: bool,
                  total: float) -> ElasticSpeed | None:
    """The performance model's speed at each candidate count of the spec's range, in the work
    units of the job at n chips (tokens/s, or `total` seconds' share per second)."""
    by_count: dict[int, dict[str, float]] = {}
    for c in _range_counts(job_spec.min_count, job_spec.max_count, n):
        durations, rates, _ = _spec_speeds(job_spec, cluster, c, catalog)
        speed = ({pid: r for pid, r in rates.items() if r > 0} if token_work
                 else {pid: total / d for pid, d in durations.items()})
        if speed or c == n:
            by_count[c] = speed
    return ElasticSpeed(tuple(by_count), by_count) if len(by_count) > 1 else None


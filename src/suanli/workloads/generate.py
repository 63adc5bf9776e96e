"""Synthetic workloads: Poisson arrivals with Gavel's job mix or a loaded trace's, and LLM jobs.

Deterministic for a seed (numpy.random.default_rng). Gavel's generator (scheduler/utils.py,
generate_job, stanford-futuredata/gavel) draws a run time of 60 x 10^U(1.5, 3) s with
probability 0.8, else 60 x 10^U(3, 4) s; a scale factor of 1, 2, 4 or 8 GPUs with probability
0.70, 0.10, 0.15, 0.05; a job type uniformly among those that run at that scale factor; and
sets total_steps = run time x the job type's isolated steps/s on a V100 at that scale factor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from suanli.catalog import builtin_catalog
from suanli.errors import SuanliError
from suanli.jobs.models import resolve_model
from suanli.workloads.gavel import GAVEL_REFERENCE
from suanli.workloads.types import ThroughputTable, TraceJob, Workload

GAVEL_SCALE_FACTORS = (1, 2, 4, 8)
GAVEL_SCALE_FACTOR_P = (0.70, 0.10, 0.15, 0.05)


def gavel_durations_s(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gavel's run-time distribution: 60 x 10^U(1.5, 3) s (p = 0.8), else 60 x 10^U(3, 4) s."""
    long = rng.random(n) >= 0.8
    exponent = np.where(long, rng.uniform(3.0, 4.0, n), rng.uniform(1.5, 3.0, n))
    return 60.0 * 10.0**exponent


def gavel_scale_factors(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gavel's job sizes: 1/2/4/8 GPUs with probability 0.70/0.10/0.15/0.05."""
    return rng.choice(np.array(GAVEL_SCALE_FACTORS), size=n, p=GAVEL_SCALE_FACTOR_P)


def poisson_arrivals_s(rng: np.random.Generator, n: int, mean_interarrival_s: float) -> np.ndarray:
    """Arrival times of a Poisson process; the first job arrives at 0, as in Gavel's traces."""
    gaps = rng.exponential(mean_interarrival_s, n)
    gaps[:1] = 0.0
    return np.cumsum(gaps)


def _mean_gap_s(rate_per_s: float | None, lam_s: float | None) -> float:
    if (rate_per_s is None) == (lam_s is None):
        raise SuanliError("give exactly one of rate_per_s (jobs/s) or lam_s (mean gap, s)",
                          field="rate_per_s", value=rate_per_s)
    if rate_per_s is not None:
        if not rate_per_s > 0 or not math.isfinite(rate_per_s):
            raise SuanliError(f"rate_per_s must be positive, got {rate_per_s}",
                              field="rate_per_s", value=rate_per_s)
        return 1.0 / rate_per_s
    assert lam_s is not None
    if not lam_s > 0 or not math.isfinite(lam_s):
        raise SuanliError(f"lam_s must be positive, got {lam_s}", field="lam_s", value=lam_s)
    return lam_s


def _check_n(n_jobs: int) -> None:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 0:
        raise SuanliError(f"n_jobs must be a non-negative integer, got {n_jobs!r}",
                          field="n_jobs", value=n_jobs)


def generate_poisson(
    n_jobs: int,
    rate_per_s: float | None = None,
    *,
    lam_s: float | None = None,
    seed: int = 0,
    like: Workload | None = None,
    throughputs: ThroughputTable | None = None,
    job_types: Sequence[str] | None = None,
    reference_accelerator: str = GAVEL_REFERENCE,
    multi_gpu: bool = True,
) -> Workload:
    """`n_jobs` jobs arriving as a Poisson process (rate_per_s, or lam_s the mean gap in s).

    - `like`: each job copies the size, work and type of a job drawn (uniformly, with
      replacement) from that trace, so the joint size/duration distribution is the trace's.
    - otherwise Gavel's generator: with `throughputs` (or like.throughputs), job types come
      from the table and work is total_steps; without one, jobs are 'generic' (or drawn from
      `job_types`) with duration_s on `reference_accelerator`.
    - `multi_gpu=False`: every job takes one chip (Gavel's generate_multi_gpu_jobs=False: no
      scale factor is drawn, so the other draws are those of a single-GPU Gavel trace).
    """
    _check_n(n_jobs)
    gap = _mean_gap_s(rate_per_s, lam_s)
    rng = np.random.default_rng(seed)
    arrivals = poisson_arrivals_s(rng, n_jobs, gap).tolist()
    meta: dict[str, object] = {"format": "generated", "generator": "poisson", "seed": seed,
                               "n_jobs": n_jobs, "mean_interarrival_s": gap,
                               "multi_gpu": multi_gpu}
    if like is not None:
        if not like.jobs:
            raise SuanliError("like: the workload to imitate has no jobs", field="like")
        picks = rng.integers(0, len(like.jobs), n_jobs).tolist()
        jobs = tuple(
            _copy_job(like.jobs[k], i, arrivals[i]) for i, k in enumerate(picks)
        )
        meta.update(distribution="like", like_source=like.source)
        return Workload(jobs=jobs, throughputs=like.throughputs or throughputs,
                        source=f"poisson(like={like.source})", metadata=meta)

    reference = builtin_catalog().get(reference_accelerator, field="reference_accelerator").id
    sizes = gavel_scale_factors(rng, n_jobs).tolist() if multi_gpu else [1] * n_jobs
    durations = gavel_durations_s(rng, n_jobs).tolist()
    meta.update(distribution="gavel", reference_accelerator=reference)
    if throughputs is None:
        names = list(job_types) if job_types else ["generic"]
        kinds = rng.integers(0, len(names), n_jobs).tolist()
        jobs = tuple(
            TraceJob(job_id=i, arrival_s=arrivals[i], num_chips=sizes[i],
                     job_type=names[kinds[i]], duration_s=durations[i],
                     reference_accelerator=reference)
            for i in range(n_jobs)
        )
        return Workload(jobs=jobs, source="poisson(gavel)", metadata=meta)

    eligible = _eligible_types(throughputs, reference, job_types)
    draws = rng.random(n_jobs).tolist()
    jobs_list = []
    for i in range(n_jobs):
        types = eligible.get(sizes[i])
        if not types:
            raise SuanliError(
                f"no job type in the throughput table runs on {sizes[i]} x {reference}",
                field="throughputs", value=sizes[i],
            )
        job_type = types[min(int(draws[i] * len(types)), len(types) - 1)]
        rate = throughputs.get(job_type, reference, sizes[i])
        assert rate
        jobs_list.append(
            TraceJob(job_id=i, arrival_s=arrivals[i], num_chips=sizes[i], job_type=job_type,
                     total_steps=durations[i] * rate,
                     extra={"reference_duration_s": f"{durations[i]:.3f}"})
        )
    return Workload(jobs=tuple(jobs_list), throughputs=throughputs, source="poisson(gavel)",
                    metadata=meta)


def _eligible_types(
    table: ThroughputTable, reference: str, wanted: Sequence[str] | None
) -> dict[int, list[str]]:
    """Job types with a positive reference throughput, by scale factor (Gavel only draws a
    multi-GPU job among its distributed job types, which are those measured at that size)."""
    known = set(table.job_types)
    if wanted:
        unknown = [t for t in wanted if t not in known]
        if unknown:
            raise SuanliError(f"job_types not in the throughput table: {', '.join(unknown)}",
                              field="job_types", value=unknown[0])
    chosen = sorted(set(wanted)) if wanted else sorted(known)
    out: dict[int, list[str]] = {}
    for sf in GAVEL_SCALE_FACTORS:
        out[sf] = [t for t in chosen if (table.get(t, reference, sf) or 0.0) > 0]
    return out


def _copy_job(src: TraceJob, job_id: int, arrival_s: float) -> TraceJob:
    return TraceJob(
        job_id=job_id,
        arrival_s=arrival_s,
        num_chips=src.num_chips,
        job_type=src.job_type,
        total_steps=src.total_steps,
        duration_s=src.duration_s,
        reference_accelerator=src.reference_accelerator,
        allowed_accelerators=src.allowed_accelerators,
        priority=src.priority,
        tenant=src.tenant,
        deadline_s=src.deadline_s,
        checkpoint_interval_s=src.checkpoint_interval_s,
        restore_s=src.restore_s,
        extra={**src.extra, "like_job_id": str(src.job_id)},
        kind=src.kind,
        model=src.model,
        tokens=src.tokens,
        seq_len=src.seq_len,
    )


# --- LLM job mix -------------------------------------------------------------------------

DEFAULT_LLM_MODELS = (
    "llama-2-7b", "llama-3-8b", "qwen2-7b", "llama-2-13b",
    "mixtral-8x7b", "llama-3-70b", "qwen2-72b",
)
# Relative frequency of each model: small models are the bulk of jobs, as in every published
# cluster trace (most jobs are small); the numbers are illustrative, not measured.
DEFAULT_LLM_WEIGHTS = (0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1)
SEQ_LENS = (2048, 4096, 8192)
LLM_MFU = 0.4  # assumed model FLOPs utilisation for the reference-duration estimate
_BYTES_PER_PARAM = {"train": 16.0, "finetune": 16.0, "lora": 2.2}  # mixed-precision Adam
_USABLE_MEMORY = 0.8


def generate_llm_mix(
    n_jobs: int,
    seed: int = 0,
    *,
    rate_per_s: float | None = None,
    lam_s: float | None = None,
    models: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
    train_fraction: float = 0.3,
    lora_fraction: float = 0.5,
    reference_accelerator: str = "A800",
    tenants: Sequence[str] = (),
) -> Workload:
    """LLM train and finetune jobs over the model presets, with token counts.

    Each job is a TraceJob with job_type = model = the preset id, kind 'train' or 'finetune',
    tokens and seq_len, so the engine's performance model can time it on any chip. Its run
    time on `reference_accelerator` is drawn from Gavel's duration distribution and turned
    into tokens = time x chips x peak x MFU(0.4) / (6 x active
    params); `duration_s` keeps that rough estimate for engines without the performance model.
    Chips: the fewest powers of two whose memory holds weights, gradients and Adam states
    (16 bytes/param; LoRA: 2.2), times 1, 2 or 4. Arrivals are Poisson (default: one job every
    30 minutes).
    """
    _check_n(n_jobs)
    gap = 1800.0 if rate_per_s is None and lam_s is None else _mean_gap_s(rate_per_s, lam_s)
    names = list(models) if models else list(DEFAULT_LLM_MODELS)
    archs = [resolve_model(n, field="models") for n in names]
    if weights is None:
        w = (np.array(DEFAULT_LLM_WEIGHTS) if not models else np.ones(len(archs)))
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(archs),) or (w < 0).any() or w.sum() <= 0:
            raise SuanliError("weights: one non-negative weight per model, not all zero",
                              field="weights", value=list(weights))
    w = w / w.sum()
    for name, value in (("train_fraction", train_fraction), ("lora_fraction", lora_fraction)):
        if not 0.0 <= value <= 1.0:
            raise SuanliError(f"{name} must be in [0, 1], got {value}", field=name, value=value)
    acc = builtin_catalog().get(reference_accelerator, field="reference_accelerator")
    peak_flops = acc.peak_tflops("bf16") * 1e12

    rng = np.random.default_rng(seed)
    arrivals = poisson_arrivals_s(rng, n_jobs, gap).tolist()
    model_idx = rng.choice(len(archs), size=n_jobs, p=w).tolist()
    is_train = (rng.random(n_jobs) < train_fraction).tolist()
    is_lora = (rng.random(n_jobs) < lora_fraction).tolist()
    seq_lens = rng.choice(np.array(SEQ_LENS), size=n_jobs).tolist()
    scale = rng.choice(np.array([1, 2, 4]), size=n_jobs, p=[0.5, 0.3, 0.2]).tolist()
    durations = gavel_durations_s(rng, n_jobs).tolist()
    tenant_idx = rng.integers(0, max(len(tenants), 1), n_jobs).tolist()

    jobs = []
    for i in range(n_jobs):
        arch = archs[model_idx[i]]
        kind = "train" if is_train[i] else "finetune"
        lora = kind == "finetune" and is_lora[i]
        bytes_per_param = _BYTES_PER_PARAM["lora" if lora else kind]
        need_gb = arch.params * bytes_per_param / 1e9
        min_chips = 2 ** math.ceil(math.log2(max(need_gb / (acc.memory_gb * _USABLE_MEMORY),
                                                  1.0)))
        chips = min_chips * scale[i]
        duration = durations[i]
        tokens = duration * chips * peak_flops * LLM_MFU / (6.0 * arch.active_params)
        extra = {"lora_rank": "16"} if lora else {}
        jobs.append(
            TraceJob(
                job_id=i,
                arrival_s=arrivals[i],
                num_chips=chips,
                job_type=arch.id,
                duration_s=duration,
                reference_accelerator=acc.id,
                tenant=tenants[tenant_idx[i]] if tenants else None,
                extra=extra,
                kind=kind,
                model=arch.id,
                tokens=tokens,
                seq_len=seq_lens[i],
            )
        )
    meta: dict[str, object] = {
        "format": "generated", "generator": "llm_mix", "seed": seed, "n_jobs": n_jobs,
        "mean_interarrival_s": gap, "models": [a.id for a in archs],
        "reference_accelerator": acc.id, "mfu_assumed": LLM_MFU,
    }
    return Workload(jobs=tuple(jobs), source="llm_mix", metadata=meta)

"""Side-by-side estimates and chip equivalence: how many of X match n of the baseline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from suanli.catalog import Accelerator, Catalog
from suanli.errors import SuanliError
from suanli.jobs import JobSpec
from suanli.perf.efficiency import DEFAULT_EFFICIENCY, Efficiency
from suanli.perf.estimate import estimate, estimate_grid, resolve_accelerators
from suanli.perf.types import Estimate

MAX_EQUIVALENT_COUNT = 65536

_COMPONENT_WORDS = {
    "scaleup_link": "the scale-up link (tensor/expert-parallel and intra-node gradient traffic)",
    "scaleout_network": "the scale-out network (pipeline and inter-node gradient traffic)",
    "pipeline_bubble": "the pipeline bubble",
    "memory_bandwidth": "memory bandwidth (decode reads weights and KV cache)",
}


@dataclass(frozen=True)
class Equivalence:
    accelerator: str
    count: int | None  # chips of this type matching the baseline's time; None: none found
    reason: str

    def to_dict(self) -> dict:
        return {"accelerator": self.accelerator, "count": self.count, "reason": self.reason}


@dataclass(frozen=True)
class Comparison:
    job: str
    baseline: str
    count: int
    estimates: tuple[Estimate, ...]
    equivalents: tuple[Equivalence, ...]

    def to_dict(self) -> dict:
        return {
            "job": self.job, "baseline": self.baseline, "count": self.count,
            "estimates": [e.to_dict() for e in self.estimates],
            "equivalents": [q.to_dict() for q in self.equivalents],
        }


def compare(job: JobSpec, accelerators: Sequence[Accelerator | str], count: int | None = None,
            *, catalog: Catalog | None = None,
            efficiency: Efficiency | None = None) -> Comparison:
    """Each chip's estimate on `count` (default: the job's minimum) and, for every chip, the
    count that matches the first chip's duration, found by searching counts (the model's
    scaling is sub-linear, so it can be far from the FLOPS ratio)."""
    accs = resolve_accelerators(accelerators, catalog)
    n = job.min_count if count is None else count
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SuanliError(f"chip count must be a positive integer (got {n!r})",
                          field="count", value=n)
    eff = efficiency or DEFAULT_EFFICIENCY
    ests = tuple(estimate(job, a, n, catalog=catalog, efficiency=eff) for a in accs)
    base = ests[0]
    equivalents = [Equivalence(base.accelerator, n, "baseline")]
    for acc, est in zip(accs[1:], ests[1:], strict=True):
        equivalents.append(_equivalent(job, accs[0], base, acc, est, catalog, eff))
    return Comparison(job=job.name, baseline=base.accelerator, count=n, estimates=ests,
                      equivalents=tuple(equivalents))


def _equivalent(job, base_acc: Accelerator, base: Estimate, acc: Accelerator, same_n: Estimate,
                catalog, eff) -> Equivalence:
    if not base.fits:
        return Equivalence(acc.id, None, f"the baseline does not fit on {base.count} x "
                                         f"{base.accelerator}, so there is no time to match")
    peak_ratio = base_acc.bf16_tflops / acc.bf16_tflops
    naive = base.count * peak_ratio
    limit = int(min(MAX_EQUIVALENT_COUNT, max(64, math.ceil(naive * 8), base.count * 8)))
    counts = np.arange(1, limit + 1)
    grid = estimate_grid(job, [acc], counts, catalog=catalog, efficiency=eff)
    ok = np.nonzero(grid.duration_s[0] <= base.duration_s * (1 + 1e-9))[0]
    if ok.size == 0:
        best = float(np.min(grid.duration_s[0]))
        why = (f"even {limit:,} x {acc.id} take {best / base.duration_s:.2f}x the time"
               if math.isfinite(best) else f"it does not fit on up to {limit:,} x {acc.id}")
        return Equivalence(acc.id, None, f"no count matches {base.count:,} x "
                                         f"{base.accelerator}: {why}")
    m = int(counts[ok[0]])
    match = estimate(job, acc, m, catalog=catalog, efficiency=eff)
    return Equivalence(acc.id, m, _reason(base, match, m, naive, base_acc, acc, eff))


def _reason(base: Estimate, match: Estimate, m: int, naive: float, base_acc: Accelerator,
            acc: Accelerator, eff: Efficiency) -> str:
    head = (f"{m:,} x {acc.id} ~ {base.count:,} x {base.accelerator} "
            f"(peak BF16 ratio alone says {naive:,.0f})")
    causes = []
    for key, words in _COMPONENT_WORDS.items():
        a, b = base.time_shares.get(key, 0.0), match.time_shares.get(key, 0.0)
        if b - a > 0.03:
            causes.append((b - a, f"{words} takes {b:.0%} of the time vs {a:.0%} on "
                                  f"{base.accelerator}"))
        elif a - b > 0.03:
            causes.append((a - b, f"{words} takes {b:.0%} of the time vs {a:.0%} on "
                                  f"{base.accelerator}"))
    if acc.scaleup_bw_gbs != base_acc.scaleup_bw_gbs and match.parallelism.tp > 1:
        causes.append((0.02, f"tensor parallelism tp={match.parallelism.tp} runs over "
                             f"{acc.scaleup_bw_gbs:g} GB/s links vs {base_acc.scaleup_bw_gbs:g}"))
    ea, eb = eff.compute_for(base_acc.id), eff.compute_for(acc.id)
    if abs(ea - eb) > 0.02:
        causes.append((abs(ea - eb), f"sustained efficiency {eb:.0%} vs {ea:.0%} of peak"))
    if acc.memory_bw_tbs != base_acc.memory_bw_tbs and match.bound == "memory_bandwidth":
        causes.append((0.5, f"decode follows HBM bandwidth: {acc.memory_bw_tbs:g} vs "
                            f"{base_acc.memory_bw_tbs:g} TB/s"))
    if match.parallelism != base.parallelism:
        causes.append((0.01, f"layout {match.parallelism} vs {base.parallelism} "
                             f"({match.memory_per_chip_gb:.0f} vs "
                             f"{base.memory_per_chip_gb:.0f} GB per chip)"))
    if m > naive * 1.05 and not causes:
        causes.append((0.0, "more chips scale sub-linearly (communication and pipeline "
                            "bubbles grow with the count)"))
    causes.sort(key=lambda c: -c[0])
    tail = "; ".join(text for _, text in causes[:3])
    return head + (f": {tail}" if tail else "") + "."

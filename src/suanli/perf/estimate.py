"""Public entry points: `estimate` (one chip, one count, explained) and `estimate_grid`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from suanli.catalog import Accelerator, Catalog, builtin_catalog
from suanli.errors import SuanliError
from suanli.jobs import JobSpec
from suanli.perf.chips import chip_arrays
from suanli.perf.efficiency import DEFAULT_EFFICIENCY, Efficiency
from suanli.perf.generic import GenericKernel
from suanli.perf.inference import InferenceKernel
from suanli.perf.search import Solution, make_kernel, solve, solve_grid
from suanli.perf.training import TrainingKernel
from suanli.perf.types import (
    BOUNDS,
    Estimate,
    EstimateGrid,
    MemoryBreakdown,
    Parallelism,
    beyond_useful_range,
)

GB = 1e9


def resolve_accelerators(accelerators: Sequence[Accelerator | str],
                         catalog: Catalog | None = None) -> list[Accelerator]:
    cat = catalog or builtin_catalog()
    out = []
    for a in accelerators:
        out.append(a if isinstance(a, Accelerator) else cat.get(a))
    if not out:
        raise SuanliError("no accelerators given", field="accelerators", value=[])
    return out


def estimate(job: JobSpec, accelerator: Accelerator | str, count: int, *,
             catalog: Catalog | None = None, efficiency: Efficiency | None = None) -> Estimate:
    """How fast `job` runs on `count` chips of `accelerator`, whether it fits, and why."""
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise SuanliError(f"chip count must be a positive integer (got {count!r})",
                          field="count", value=count)
    acc = resolve_accelerators([accelerator], catalog)[0]
    sol = solve(job, [acc], np.array([int(count)]), catalog=catalog, efficiency=efficiency)
    return build_estimate(job, sol, 0, efficiency or DEFAULT_EFFICIENCY)


def estimate_grid(job: JobSpec, accelerators: Sequence[Accelerator | str], counts: np.ndarray,
                  *, catalog: Catalog | None = None,
                  efficiency: Efficiency | None = None) -> EstimateGrid:
    """Every (accelerator, count) at once, vectorised; agrees exactly with `estimate`."""
    accs = resolve_accelerators(accelerators, catalog)
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    sol = solve_grid(job, accs, counts, catalog=catalog, efficiency=efficiency)
    return EstimateGrid(
        accelerators=[a.id for a in accs], counts=counts, duration_s=sol.duration_s,
        tokens_per_s=sol.tokens_per_s, mfu=sol.mfu, power_w=sol.power_w, fits=sol.fits,
        bound=sol.bound, chips_used=sol.used, beyond_useful_range=sol.beyond_useful_range,
    )


def throughput_at_layout(job: JobSpec, accelerator: Accelerator | str, count: int, tp: int,
                         pp: int, *, catalog: Catalog | None = None,
                         efficiency: Efficiency | None = None) -> tuple[float, float]:
    """(tokens/s, MFU) at a given tensor x pipeline layout (dp = count // (tp·pp)), the
    fastest variant that fits; (0, 0) if none does. For comparing with a measurement taken
    at a layout the search would not choose (calibration)."""
    eff = efficiency or DEFAULT_EFFICIENCY
    acc = resolve_accelerators([accelerator], catalog)[0]
    if tp < 1 or pp < 1 or tp * pp > count:
        raise SuanliError(f"layout tp={tp} pp={pp} does not fit in {count} chips",
                          field="layout", value={"tp": tp, "pp": pp})
    kernel = make_kernel(job, eff, catalog)
    chips = chip_arrays([acc], job.precision, eff)
    dp = np.array([min(count // (tp * pp), kernel.max_dp)])
    best = np.inf
    for var in kernel.variants():
        out = kernel.evaluate(chips, np.array([tp]), np.array([pp]), np.int64(var), dp,
                              duration_only=True)
        if bool(np.asarray(out["fits"]).reshape(-1)[0]):
            best = min(best, float(np.asarray(out["duration_s"]).reshape(-1)[0]))
    if not np.isfinite(best):
        return 0.0, 0.0
    tokens_per_s = float(kernel.tokens_per_s(best))
    return tokens_per_s, kernel.model_flops() / best / (count * float(chips.peak_flops[0]))


def min_fitting_count(job: JobSpec, accelerator: Accelerator | str, limit: int = 4096, *,
                      catalog: Catalog | None = None,
                      efficiency: Efficiency | None = None) -> int | None:
    """The fewest chips on which the job fits (None if none up to `limit`)."""
    grid = estimate_grid(job, [accelerator], np.arange(1, limit + 1), catalog=catalog,
                         efficiency=efficiency)
    ok = np.nonzero(grid.fits[0])[0]
    return int(grid.counts[ok[0]]) if ok.size else None


def build_estimate(job: JobSpec, sol: Solution, i: int, eff: Efficiency) -> Estimate:
    """One entry of a solution as an explained Estimate."""
    d = {k: float(v[i]) for k, v in sol.detail.items()}
    a = int(sol.acc_index[i])
    acc_id = sol.chips.ids[a]
    count = int(sol.count[i])
    fits = bool(sol.fits[i])
    dur = float(sol.duration_s[i])
    cap_gb = float(sol.chips.mem_bytes[a]) / GB
    memory = MemoryBreakdown(
        weights_gb=d["weights"] / GB, gradients_gb=d["gradients"] / GB,
        optimizer_gb=d["optimizer"] / GB, activations_gb=d["activations"] / GB,
        kv_cache_gb=d["kv_cache"] / GB, total_gb=d["total"] / GB, capacity_gb=cap_gb,
    )
    par = Parallelism(dp=int(sol.dp[i]), tp=int(sol.tp[i]), pp=int(sol.pp[i]),
                      ep=int(d["ep"]), zero_stage=int(sol.zero_stage[i]))
    bound = BOUNDS[int(sol.bound[i])]
    power = float(sol.power_w[i])
    energy = power * dur / 3.6e6 if fits else float("inf")
    kernel = sol.kernel
    comps = {"compute": d["t_compute"], "pipeline_bubble": d["t_bubble"],
             "memory_bandwidth": d["t_memory"], "scaleup_link": d["t_link"],
             "scaleout_network": d["t_network"]}
    total = sum(comps.values())
    shares = {k: v / total for k, v in comps.items() if total > 0 and v > 0}
    reason = None if fits else _reason(job, sol, i, d, memory, acc_id, eff)
    lines = _explain(job, sol, i, d, memory, par, bound, shares, acc_id, eff, fits, reason)
    is_inf = isinstance(kernel, InferenceKernel)
    used = int(sol.used[i]) if fits else 0
    return Estimate(
        accelerator=acc_id, count=count, fits=fits, duration_s=dur,
        tokens_per_s=float(sol.tokens_per_s[i]), memory=memory,
        bound=bound, mfu=float(sol.mfu[i]), parallelism=par, power_w=power,
        energy_kwh=energy, explanation=tuple(lines), reason=reason,
        ttft_s=d["ttft"] if is_inf and fits else None,
        time_per_output_token_s=d["tpot"] if is_inf and fits else None,
        chips_used=used, time_shares=shares,
        measured=bool(sol.measured[i]),
        beyond_useful_range=fits and beyond_useful_range(count, used, par.tp * par.pp),
    )



def _reason(job, sol, i, d, memory, acc_id, eff) -> str:
    kernel = sol.kernel
    phys = float(sol.chips.mem_physical_gb[int(sol.acc_index[i])])
    par = f"tp={int(sol.tp[i])} pp={int(sol.pp[i])} dp={int(sol.dp[i])}"
    cap = (f"{acc_id} has {memory.capacity_gb:.1f} GB usable per chip ({phys:g} GB less "
           f"{eff.runtime_reserve:.0%} runtime reserve)")
    if isinstance(kernel, InferenceKernel):
        if d.get("fits_mem", 0.0) >= 1.0:
            target = kernel.latency_target_s * 1e3 if kernel.latency_target_s else 0.0
            return (f"latency target {target:g} ms per output token is out of reach on "
                    f"{int(sol.count[i])} x {acc_id}: even one sequence takes longer per "
                    f"decode step with {par}")
        return (f"does not fit on {int(sol.count[i])} x {acc_id}: the weights alone take "
                f"{memory.weights_gb:.1f} GB per chip with the widest layout ({par}), plus "
                f"{kernel.kv_bytes_per_request / GB:.2f} GB of KV cache per request; {cap}")
    stage = " with ZeRO-3" if int(sol.dp[i]) > 1 else ""
    parts = (f"weights {memory.weights_gb:.1f} + gradients {memory.gradients_gb:.1f} + "
             f"optimizer {memory.optimizer_gb:.1f} + activations {memory.activations_gb:.1f}")
    return (f"does not fit on {int(sol.count[i])} x {acc_id}: needs {memory.total_gb:.1f} GB "
            f"per chip ({parts}) even with the most memory-saving layout ({par}{stage}); {cap}")


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _explain(job, sol, i, d, memory, par, bound, shares, acc_id, eff, fits, reason):
    kernel = sol.kernel
    count = int(sol.count[i])
    a = int(sol.acc_index[i])
    lines: list[str] = []
    model = job.model
    what = f"{job.kind} of {model.id if model else job.name}"
    if model is not None:
        what += f" ({model.params_b:g}B params"
        what += f", {model.active_params / 1e9:g}B active)" if model.is_moe else ")"
    lines.append(f"{what} on {count} x {acc_id}.")
    if not fits:
        lines.append(f"Infeasible: {reason}.")
        return lines
    used = int(sol.used[i])
    layout = f"Layout {par}"
    if beyond_useful_range(count, used, par.tp * par.pp):
        lines.append(f"Beyond the useful range: {used:,} of the {count:,} chips make it faster; "
                     f"the other {count - used:,} would idle (the global batch and the layouts "
                     "cannot use them), so MFU over all the chips asked for is "
                     f"{_pct(float(sol.mfu[i]))}.")
    if used < count:
        why = ("the global batch limits data parallelism"
               if isinstance(kernel, TrainingKernel) and sol.dp[i] >= kernel.max_dp
               else "more chips would not make it faster")
        layout += f" on {used} of the {count} chips ({why})"
    lines.append(layout + ".")
    share_txt = ", ".join(f"{k.replace('_', ' ')} {_pct(v)}"
                          for k, v in sorted(shares.items(), key=lambda kv: -kv[1]))
    lines.append(f"Binding bound: {bound.replace('_', ' ')} (time shares: {share_txt}).")
    src = "calibrated default (data/efficiency.yaml)"
    if acc_id not in eff.compute:
        src = "default for chips without a published figure"
    if isinstance(kernel, GenericKernel):
        what = "memory bandwidth" if kernel.bound_memory else "sustained compute"
        lines.append(f"Scaled from the reference run by {what} (efficiency "
                     f"{_pct(eff.compute_for(acc_id))} of peak, {src}) and by the count "
                     f"scaling model ({_pct(eff.generic_loss_per_doubling_node)} lost per "
                     f"doubling inside a node, {_pct(eff.generic_loss_per_doubling_network)} "
                     "across nodes).")
    else:
        extra = ""
        if kernel.moe_factor != 1.0:
            extra += f" x MoE kernel factor {kernel.moe_factor:.2f}"
        if job.precision == "fp8" and bool(sol.chips.has_fp8[a]):
            extra += f" x FP8 speed-up {eff.fp8_speedup:.2f}"
        lines.append(
            f"Efficiency: {acc_id} sustains {_pct(eff.compute_for(acc_id))} of BF16 peak on "
            f"the kernel mix ({src}) x GEMM-size factor {d['gemm']:.2f}{extra}; "
            f"MFU {_pct(float(sol.mfu[i]))}.")
    if isinstance(kernel, TrainingKernel):
        lines.append(
            f"Memory per chip {memory.total_gb:.1f} of {memory.capacity_gb:.1f} GB usable: "
            f"weights {memory.weights_gb:.1f}, gradients {memory.gradients_gb:.1f}, optimizer "
            f"{memory.optimizer_gb:.1f}, activations {memory.activations_gb:.1f} "
            f"({'full recomputation' if d['full_recompute'] else 'selective recomputation'}"
            f"{', LoRA adapters only trained' if kernel.lora else ''}).")
    elif isinstance(kernel, InferenceKernel):
        b = d["batch"]
        limits = []
        if b >= d["b_mem"]:
            limits.append("KV-cache capacity")
        if b >= eff.decode_batch_cap:
            limits.append(f"the batch cap {eff.decode_batch_cap}")
        if b >= np.floor(d["b_lat"]):
            limits.append("the latency target")
        limited = " and ".join(limits) or "the number of requests"
        bw = float(sol.chips.mem_bw[a]) / 1e12
        lines.append(
            f"Decode batch {b:.0f} sequences per micro-batch (limited by {limited}); each step "
            f"reads weights + KV cache at {bw:.2f} TB/s achieved "
            f"({_pct(eff.memory_bw_for(acc_id))} of nominal HBM bandwidth); time per output "
            f"token {d['tpot'] * 1e3:.1f} ms, time to first token {d['ttft'] * 1e3:.0f} ms.")
        lines.append(
            f"Memory per chip {memory.total_gb:.1f} of {memory.capacity_gb:.1f} GB usable: "
            f"weights {memory.weights_gb:.1f}, activation workspace "
            f"{memory.activations_gb:.1f}, KV cache {memory.kv_cache_gb:.1f} (the batch is "
            "sized from the HBM left after weights and workspace, in "
            f"{eff.kv_block_tokens}-token pages).")
    if bool(sol.measured[i]):
        lines.append("Measured: a measurement in the job for this chip and count sets the "
                     "duration; the model gives the layout and memory.")
    elif float(sol.measured_factor[i]) != 1.0:
        lines.append(f"Measured: scaled by {float(sol.measured_factor[i]):.2f} so the model "
                     "matches this chip's nearest measured count.")
    return lines

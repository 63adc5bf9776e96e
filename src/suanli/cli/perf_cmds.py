"""`suanli estimate`, `suanli compare`, `suanli calibrate`: the performance model."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich import box
from rich.panel import Panel
from rich.table import Table

from suanli.catalog import Catalog, load_catalog
from suanli.cli.common import console, print_json, user_errors
from suanli.errors import SuanliError
from suanli.jobs import JobSpec, load_job
from suanli.perf import estimate as estimate_job
from suanli.perf import load_calibration, min_fitting_count
from suanli.perf.calibrate import calibrate as calibrate_points
from suanli.perf.calibrate import load_measurements, write_calibration
from suanli.perf.compare import compare as compare_chips
from suanli.perf.search import SEARCH_CAP_CHIPS
from suanli.perf.types import Estimate

app = typer.Typer()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.1f} s"


def _check_count(count: int | None) -> None:
    if count is not None and count < 1:
        raise SuanliError(f"--count must be at least 1 (got {count})", field="count",
                          value=count)


@app.command("estimate")
@user_errors
def estimate(
    job_file: Path = typer.Argument(..., help="Job YAML file."),
    accelerator: str = typer.Option(..., "--accelerator", "-a", help="Chip, e.g. H100."),
    count: int | None = typer.Option(None, "--count", "-n",
                                     help="Chips (default: the job's minimum)."),
    catalog: Path | None = typer.Option(None, help="YAML file adding or overriding chips."),
    calibration: Path | None = typer.Option(None, help="File from `suanli calibrate`."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """How fast a job runs on N chips of one type, whether it fits, and why."""
    _check_count(count)
    job = load_job(job_file)
    cat = load_catalog(catalog)
    check_job_chips(job, cat)
    eff = load_calibration(calibration)
    acc = cat.get(accelerator)
    est = estimate_job(job, acc, count or job.min_count, catalog=cat, efficiency=eff)
    hint, least = None, None
    if not est.fits:
        limit = min(max(job.max_count, est.count, 4096), SEARCH_CAP_CHIPS)
        least = min_fitting_count(job, acc, limit, catalog=cat, efficiency=eff)
        if least is None:
            raise SuanliError(f"{job.name} fits on no count of {acc.id} up to {limit:,}: "
                              f"{est.reason}", field="model",
                              value=job.model.id if job.model else job.name)
        hint = f"fits from {least:,} x {acc.id}"
    if as_json:
        print_json({**est.to_dict(), "fits_from_count": None if est.fits else least})
        return
    _print_estimate(job.name, est)
    if hint:
        console.print(f"  - Hint: {hint}.", highlight=False)


def check_job_chips(job: JobSpec, cat: Catalog) -> None:
    """Every chip the job file names is one the catalog knows (a typo fails here, named)."""
    for name in job.resources.accelerators:
        cat.get(name, field="resources.accelerators")


def _print_estimate(name: str, est: Estimate) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    status = "[green]fits[/]" if est.fits else "[red]does not fit[/]"
    if est.beyond_useful_range:
        status = (f"[yellow]fits, beyond the useful range: {est.chips_used:,} of "
                  f"{est.count:,} chips used[/]")
    table.add_row("fits", status)
    if est.fits:
        table.add_row("chips used", f"{est.chips_used:,} of {est.count:,}")
    table.add_row("duration", _duration(est.duration_s))
    table.add_row("tokens/s", f"{est.tokens_per_s:,.0f}")
    if est.ttft_s is not None and est.time_per_output_token_s is not None:
        table.add_row("latency", f"TTFT {est.ttft_s * 1e3:,.0f} ms, "
                                 f"{est.time_per_output_token_s * 1e3:,.1f} ms/token")
    table.add_row("parallelism", f"{est.parallelism}")
    table.add_row("MFU", f"{est.mfu:.1%}")
    bound = est.bound.replace("_", " ")
    if est.beyond_useful_range:
        bound += f" (on the {est.chips_used:,} chips used; more chips do not help)"
    table.add_row("bound", bound)
    m = est.memory
    table.add_row("memory/chip", f"{m.total_gb:,.1f} of {m.capacity_gb:,.1f} GB usable "
                                 f"(weights {m.weights_gb:,.1f}, grads {m.gradients_gb:,.1f}, "
                                 f"optimizer {m.optimizer_gb:,.1f}, activations "
                                 f"{m.activations_gb:,.1f}, KV {m.kv_cache_gb:,.1f})")
    table.add_row("power", f"{est.power_w / 1e3:,.1f} kW")
    energy = f"{est.energy_kwh:,.0f} kWh" if math.isfinite(est.energy_kwh) else "-"
    table.add_row("energy", energy + " (chips, before PUE)")
    console.print(Panel(table, title=f"{name} on {est.count} x {est.accelerator}"))
    for line in est.explanation:
        console.print(f"  - {line}", highlight=False)


@app.command("compare")
@user_errors
def compare(
    job_file: Path = typer.Argument(..., help="Job YAML file."),
    accelerators: str = typer.Option(..., "--accelerators", "-a",
                                     help="Comma-separated chips; the first is the baseline."),
    count: int | None = typer.Option(None, "--count", "-n",
                                     help="Chips of each (default: the job's minimum)."),
    catalog: Path | None = typer.Option(None, help="YAML file adding or overriding chips."),
    calibration: Path | None = typer.Option(None, help="File from `suanli calibrate`."),
    wide: bool = typer.Option(False, "--wide", help="every column"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Side-by-side estimates, and how many of each chip match the first one's time."""
    _check_count(count)
    names = [a.strip() for a in accelerators.split(",") if a.strip()]
    if not names:
        raise SuanliError("--accelerators is empty", field="accelerators", value=accelerators)
    job = load_job(job_file)
    cat = load_catalog(catalog)
    check_job_chips(job, cat)
    eff = load_calibration(calibration)
    result = compare_chips(job, [cat.get(n) for n in names], count, catalog=cat,
                           efficiency=eff)
    if not any(e.fits for e in result.estimates):
        raise SuanliError(f"{job.name} fits on none of {', '.join(names)} at "
                          f"{result.count} chips: {result.estimates[0].reason}",
                          field="count", value=result.count)
    if as_json:
        print_json(result.to_dict())
        return
    table = Table(title=f"{job.name}: {result.count} chips each, baseline {result.baseline}",
                  box=box.SIMPLE_HEAD)
    cols = ["chip", "fits", "time", "tok/s", "MFU", "bound", "same time"]
    if wide:
        cols += ["layout", "GB/chip", "kWh"]
    for col in cols:
        table.add_column(col, no_wrap=True,
                         justify="left" if col in ("chip", "bound", "layout") else "right")
    for est, eq in zip(result.estimates, result.equivalents, strict=True):
        row = [est.accelerator, "yes" if est.fits else "[red]no[/]", _duration(est.duration_s),
               f"{est.tokens_per_s:,.0f}", f"{est.mfu:.0%}", est.bound.replace("_", " ")[:12],
               f"{eq.count:,}" if eq.count else "-"]
        if wide:
            row += [str(est.parallelism), f"{est.memory_per_chip_gb:,.1f}",
                    f"{est.energy_kwh:,.0f}" if math.isfinite(est.energy_kwh) else "-"]
        table.add_row(*row)
    console.print(table)
    console.print(f"same time: chips of each that match {result.baseline}'s time"
                  + ("" if wide else "; --wide adds layout, memory per chip and energy"),
                  highlight=False)
    for est, eq in zip(result.estimates, result.equivalents, strict=True):
        if eq.reason != "baseline":
            console.print(f"  - {eq.reason}", highlight=False)
        if not est.fits and est.reason:
            console.print(f"  - {est.accelerator}: {est.reason}", highlight=False)


@app.command("calibrate")
@user_errors
def calibrate(
    measurements: Path = typer.Argument(..., help="YAML or CSV of measured tokens/s."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the fitted file here."),
    catalog: Path | None = typer.Option(None, help="YAML file adding or overriding chips."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Fit the model's efficiencies to measurements; print the error before and after."""
    cat = load_catalog(catalog)
    points = load_measurements(measurements, cat)
    result = calibrate_points(points, catalog=cat)
    if out is not None:
        write_calibration(result, out)
    if as_json:
        print_json(result.to_dict())
        return
    table = Table(title=f"Calibration on {len(points)} measurements")
    for col in ("measurement", "measured tok/s", "before", "after"):
        table.add_column(col, justify="left" if col == "measurement" else "right")
    for row in result.rows:
        table.add_row(row["measurement"], f"{row['measured_tokens_per_s']:,.0f}",
                      f"{row['before_tokens_per_s']:,.0f}", f"{row['after_tokens_per_s']:,.0f}")
    console.print(table)
    console.print(f"RMS log error: {result.rms_log_error_before:.3f} before, "
                  f"{result.rms_log_error_after:.3f} after.")
    comp = ", ".join(f"{k} {v:.2f}" for k, v in result.overrides["compute"].items())
    console.print(f"Fitted compute efficiency: {comp}; memory bandwidth "
                  f"{result.overrides['memory_bw']:.2f}, scale-up "
                  f"{result.overrides['scaleup']:.2f}, scale-out "
                  f"{result.overrides['scaleout']:.2f}.")
    if out is not None:
        console.print(f"Wrote {out} (use --calibration {out}).")

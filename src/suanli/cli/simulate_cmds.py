"""`suanli simulate`: replay a trace (or a generated workload) under one or more policies."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from suanli.cli.common import console, print_json, user_errors
from suanli.errors import SuanliError
from suanli.tables import simple_table

PROGRESS_MIN_JOBS = 2000  # show a progress bar for runs at least this big


app = typer.Typer()


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600.0:.2f} h"


def _load_jobs(trace, fmt, throughputs, generate, rate, seed, reference, window,
               single_gpu=False):
    from suanli.workloads import (
        generate_poisson,
        load_gavel_throughputs,
        load_workload,
        parse_job_range,
    )

    table = load_gavel_throughputs(throughputs) if throughputs else None
    workload = None
    if trace is not None:
        opts: dict = {}
        fmt_used = fmt
        if fmt_used == "auto":
            from suanli.workloads import detect_format

            fmt_used = detect_format(trace)
        if fmt_used == "gavel":
            if table is None:
                raise SuanliError("a Gavel trace needs --throughputs (its measured steps/s)",
                                  field="throughputs")
            opts["throughputs"] = table
        elif reference and fmt_used in ("philly", "openb", "csv", "parquet"):
            opts["reference_accelerator"] = reference
        workload = load_workload(trace, fmt_used, **opts)
    if generate is not None:
        if rate is None or rate <= 0:
            raise SuanliError("--generate needs a positive --rate (jobs per second)",
                              field="rate", value=rate)
        workload = generate_poisson(generate, rate_per_s=rate, seed=seed, like=workload,
                                    throughputs=table, multi_gpu=not single_gpu)
    if workload is None:
        raise SuanliError("give --trace FILE or --generate N --rate R", field="trace")
    rng = parse_job_range(window) if window else None
    return workload, rng


def _build_cluster(network, cluster_text, workload):
    from suanli.engine import Cluster
    from suanli.network import load_network

    if network and cluster_text:
        raise SuanliError("give --network or --cluster, not both", field="cluster")
    if cluster_text:
        return Cluster.parse_counts(cluster_text)
    if network:
        return Cluster.from_network(load_network(network))
    if workload.throughputs is not None:
        return Cluster.parse_counts("v100:36,p100:36,k80:36")
    return Cluster.from_network(load_network("east-west"))


def _summary_table(summary: dict, currency: str) -> Table:
    t = Table(title=f"policy: {summary['policy']}", show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    s = summary
    t.add_row("jobs", f"{s['jobs']}")
    states = ", ".join(f"{k} {v}" for k, v in s["states"].items() if v)
    t.add_row("outcome", states)
    t.add_row("average JCT", _hours(s["avg_jct_s"]))
    t.add_row("median JCT", _hours(s["median_jct_s"]))
    t.add_row("p99 JCT", _hours(s["p99_jct_s"]))
    t.add_row("avg queueing delay", _hours(s["avg_queueing_delay_s"]))
    t.add_row("avg time waiting (all waits)", _hours(s["avg_waiting_s"]))
    q = s["queue"]
    t.add_row("queue (peak / time-weighted mean)", f"{q['peak']} / {q['time_weighted_mean']:.1f}")
    t.add_row("makespan", _hours(s["makespan_s"]))
    t.add_row("utilization (all pools)", f"{100 * s['utilization_total']:.1f} %")
    for pid, u in s["utilization"].items():
        t.add_row(f"  {pid}", f"{100 * u:.1f} %")
    t.add_row("chip-hours", f"{s['chip_hours']:,.1f}")
    t.add_row("cost", f"{s['cost']:,.2f} {currency}")
    t.add_row("energy", f"{s['energy_kwh']:,.1f} kWh")
    rho_max = s["ftf_rho_max"]
    floor = f"floor {s['ftf_rho_floor_s']:g} s"
    t.add_row(f"finish-time fairness rho, {floor} (mean / p50 / p99 / max)",
              "-" if rho_max is None else
              f"{s['ftf_rho_mean']:.2f} / {s['ftf_rho_p50']:.2f} / {s['ftf_rho_p99']:.2f} / "
              f"{rho_max:.2f}")
    t.add_row("preemptions / retries / interruptions",
              f"{s['preemptions']} / {s['retries']} / {s['interruptions']}")
    t.add_row("rounds / reallocations", f"{s['rounds']} / {s['reallocations']}")
    return t


@app.command("simulate")
@user_errors
def simulate_command(
    trace: Path | None = typer.Option(None, "--trace", "-t", help="Trace file."),
    fmt: str = typer.Option("auto", "--format", "-f",
                            help="gavel | philly | openb | csv | parquet (default: by name)."),
    throughputs: Path | None = typer.Option(None, help="Gavel throughputs JSON (steps/s)."),
    network: str | None = typer.Option(None, "--network", "-n",
                                       help="Built-in network name or YAML file."),
    cluster: str | None = typer.Option(None, help="Chip counts, e.g. v100:36,p100:36,k80:36."),
    policy: str = typer.Option("max_min_fairness_perf", "--policy", "-p",
                               help="Policy names, comma separated."),
    seed: int = typer.Option(0, help="Random seed (the simulation is deterministic for it)."),
    round_s: float = typer.Option(360.0, "--round-s", help="Scheduling round length (s)."),
    gavel_mode: bool = typer.Option(False, "--gavel-mode",
                                    help="Replay exactly as Gavel's simulator does."),
    realloc_s: float | None = typer.Option(
        None, "--realloc-interval-s",
        help="Least time between policy recomputations (default: 1920 in Gavel mode, else 0)."),
    jobs: str | None = typer.Option(None, "--jobs", help="Report only jobs FROM:TO (by index)."),
    generate: int | None = typer.Option(None, help="Generate N Poisson-arrival jobs "
                                        "(like the trace's jobs if --trace is given)."),
    rate: float | None = typer.Option(None, help="Arrival rate for --generate (jobs/s)."),
    single_gpu: bool = typer.Option(False, "--single-gpu",
                                    help="--generate: every job takes one chip (Gavel's "
                                    "single-GPU traces)."),
    reference: str | None = typer.Option(
        None, "--reference-accelerator",
        help="Chip the trace's durations were measured on (Philly: P100)."),
    elastic: bool = typer.Option(
        False, "--elastic", help="Let every job run on n/2..2n chips (Gavel traces: 1..8 "
        "GPUs), for an elastic policy such as elastic_jct to choose."),
    failure: list[str] = typer.Option(
        [], "--failure", help="Inject an outage: SCOPE:TARGET@START+DURATION, e.g. "
        "center:wuhu@3600+7200 (repeatable)."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Write per-job CSV, JSON summary and PNG plots here."),
    list_policies: bool = typer.Option(False, "--list-policies",
                                       help="List the policies --policy takes, and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Replay a workload on a cluster under each policy and compare JCT, use, cost, fairness.

    Durations measured on a reference chip (Philly, Alibaba, CSV) are scaled to each pool's
    chip by the ratio of dense BF16/FP16 peak TFLOPS; Gavel traces use measured throughputs.
    """
    from suanli.engine.adapters import engine_jobs_from_workload
    from suanli.sim.runner import FailureSpec, simulate

    if list_policies:
        from suanli.cli.policy_cmds import print_policies

        print_policies(as_json)
        return
    workload, window = _load_jobs(trace, fmt, throughputs, generate, rate, seed, reference, jobs,
                                  single_gpu)
    if elastic:
        from suanli.workloads import make_elastic

        workload = make_elastic(workload, gavel_range=workload.throughputs is not None)
    cl = _build_cluster(network, cluster, workload)
    failures = [FailureSpec.parse(f) for f in failure]
    engine_jobs = engine_jobs_from_workload(workload, cl, reference_accelerator=reference)
    names = [p.strip() for p in policy.split(",") if p.strip()]
    if not names:
        raise SuanliError("give at least one policy", field="policy", value=policy)
    from suanli.policies import canonical_name

    names = [canonical_name(n) for n in names]
    currency = cl.network.currency if cl.network is not None else "CNY"
    results = []
    show_progress = not as_json and len(engine_jobs) >= PROGRESS_MIN_JOBS
    for name in names:
        if show_progress:
            with Progress(TextColumn(f"[bold]{name}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console, transient=True) as bar:
                task = bar.add_task(name, total=len(engine_jobs))

                def report(done: int, total: int, _task=task, _bar=bar) -> None:
                    _bar.update(_task, completed=done, total=total)

                result = simulate(engine_jobs, cl, name, seed=seed, round_s=round_s,
                                  gavel_mode=gavel_mode, realloc_interval_s=realloc_s,
                                  failures=failures, window=window, progress=report)
        else:
            result = simulate(engine_jobs, cl, name, seed=seed, round_s=round_s,
                              gavel_mode=gavel_mode, realloc_interval_s=realloc_s,
                              failures=failures, window=window)
        results.append(result)
    summaries = [r.summary() for r in results]
    if out is not None:
        from suanli.sim.plots import _safe, write_plots

        out.mkdir(parents=True, exist_ok=True)
        for r in results:
            r.write_csv(out / f"jobs_{_safe(r.policy)}.csv", window)
        (out / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n", "utf-8")
        write_plots(results, out, window)
    if as_json:
        print_json(summaries)
        return
    for s in summaries:
        console.print(_summary_table(s, currency))
    if len(summaries) > 1:
        console.print(_comparison_table(summaries))
    if out is not None:
        console.print(f"wrote per-job CSV, summary.json and plots to {out}")


def _comparison_table(summaries: list[dict]) -> Table:
    """One row per policy, in 80 columns: JCT average and p99, wait (the first queueing delay),
    makespan, utilisation, cost and the largest finish-time fairness rho; hours unless said."""
    cols = ("policy", "JCT h", "p99 h", "wait h", "span h", "util%", "cost", "rho")
    t = simple_table("comparison", cols, right=cols[1:], wrap=("policy",))
    t.pad_edge = False
    t.columns[0].overflow = "fold"  # a long policy name folds; the figures never shrink
    for col in t.columns[1:]:
        col.min_width = 6

    def hours(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds / 3600.0:.2f}"

    for s in summaries:
        t.add_row(
            s["policy"], hours(s["avg_jct_s"]), hours(s["p99_jct_s"]),
            hours(s["avg_queueing_delay_s"]), hours(s["makespan_s"]),
            f"{100 * s['utilization_total']:.1f}", f"{s['cost']:,.0f}",
            "-" if s["ftf_rho_max"] is None else f"{s['ftf_rho_max']:.2f}",
        )
    return t

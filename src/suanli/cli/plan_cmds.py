"""`suanli plan JOB.yaml`: where should this job run, over a whole network, data included."""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.table import Table

from suanli.catalog import load_catalog
from suanli.cli.common import console, err_console, print_json, user_errors
from suanli.errors import SpecError
from suanli.jobs.spec import load_job
from suanli.network import load_network
from suanli.plan import (
    PlacementOption,
    PlanResult,
    format_duration,
    format_money,
    parse_duration,
    plan,
)
from suanli.plan.result import best_count_per_placement

EXIT_INFEASIBLE = 3
DEFAULT_ROWS = 10
DEFAULT_JSON_OPTIONS = 100  # each listed option asks the model for its parallelism


def register(app: typer.Typer) -> None:
    """Add `suanli plan`."""
    app.command("plan")(plan_command)


def _parse_weights(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    weights: dict[str, float] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        try:
            weights[key.strip()] = float(value)
        except ValueError:
            raise SpecError(f"weights: expected e.g. time=0.7,cost=0.3 (got {text!r})",
                            field="weights", value=text) from None
    return weights


def _parse_budget(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise SpecError(f"budget: not a number {text!r}", field="budget", value=text) from None
    if value <= 0:
        raise SpecError(f"budget: must be positive (got {text!r})", field="budget", value=text)
    return value


@user_errors
def plan_command(
    job_file: Path = typer.Argument(..., help="Job YAML file."),
    network: str = typer.Option("east-west", "--network", "-n",
                                help="Built-in network name or YAML file."),
    objective: str = typer.Option("cost", help="cost | time | mix."),
    deadline: str | None = typer.Option(None, help="Finish by: seconds or 90m, 6h, 2d."),
    budget: str | None = typer.Option(None, help="Spend at most this (network currency)."),
    weights: str | None = typer.Option(None, help="For --objective mix: time=0.5,cost=0.5."),
    top: int | None = typer.Option(
        None, help="Options to list (default 10; JSON 100). The chosen option and the Pareto "
        "front are always given."),
    counts: bool = typer.Option(
        False, "--counts", help="List every chip count of each pool (the count trade-off); "
        "by default each pool's best count only."),
    explain: bool = typer.Option(False, "--explain", help="Say why the winner wins."),
    wide: bool = typer.Option(False, "--wide", help="Every column (pool, energy, CO2)."),
    blocked: str | None = typer.Option(None, help="Exclude centers or center/pool, comma list."),
    catalog: Path | None = typer.Option(None, help="YAML file adding or overriding chips."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every feasible placement of a job: transfer, wait, run, cost, energy and the Pareto front."""
    cat = load_catalog(catalog)
    job = load_job(job_file)
    net = load_network(network, cat)
    if weights and objective != "mix":  # weights only blend objectives under mix
        raise SpecError(f"--weights applies to --objective mix (got --objective {objective})",
                        field="weights", value=weights)
    result = plan(
        job, net,
        blocked=[b.strip() for b in (blocked or "").split(",") if b.strip()],
        objective=objective,
        deadline_s=parse_duration(deadline, field="deadline") if deadline else None,
        budget=_parse_budget(budget),
        weights=_parse_weights(weights),
        catalog=cat,
        top=(top or (DEFAULT_JSON_OPTIONS if as_json else DEFAULT_ROWS)) if counts else None,
    )
    rows = top or (DEFAULT_JSON_OPTIONS if as_json else DEFAULT_ROWS)
    listed = result.options if counts else best_count_per_placement(result.options)
    listed = listed[:rows]
    if as_json:
        data = result.to_dict()
        if result.feasible:
            data["options"] = [o.to_dict() for o in listed]
            data["distinct_placements"] = not counts
        print_json(data)
        if not result.feasible:
            raise typer.Exit(code=EXIT_INFEASIBLE)
        return
    if net.illustrative:
        console.print(f"[yellow]Network {net.name} is ILLUSTRATIVE:[/] its inventories and "
                      "prices are not operator data.")
    if not result.feasible:
        err_console.print(f"[bold red]infeasible:[/] job {job.name} has no placement on "
                          f"{net.name}", highlight=False)
        for reason in result.infeasible:
            err_console.print(f"  - {reason}", highlight=False, markup=False)
        raise typer.Exit(code=EXIT_INFEASIBLE)
    _print_options(result, listed, counts, wide)
    _print_pareto(result)
    if explain:
        console.print("[bold]Why[/]")
        for line in result.explain():
            console.print(f"  {line}", highlight=False, markup=False)
        est = result.chosen_estimate
        if est is not None and getattr(est, "explanation", None):
            console.print("[bold]Performance model (chosen option)[/]")
            for line in est.explanation:
                console.print(f"  {line}", highlight=False, markup=False)
    else:
        console.print(f"Chosen: {result.chosen.label} — run with --explain to see why.",
                      highlight=False)


def _money(result: PlanResult, x: float) -> str:
    return format_money(x, "")


def _print_options(result: PlanResult, shown: list[PlacementOption], counts: bool,
                   wide: bool) -> None:
    """Fits 80 columns by default: short headers, spot as '*', units in the legend below."""
    constraint = []
    if result.deadline_s is not None:
        constraint.append(f"deadline {format_duration(result.deadline_s)}")
    if result.budget is not None:
        constraint.append(f"budget {format_money(result.budget, result.currency)}")
    title = (f"{result.job} on {result.network}: best {len(shown)} of {result.total_options} "
             f"options by {result.objective}" + (f" ({', '.join(constraint)})" if constraint
                                                  else ""))
    table = Table(title=title, box=box.SIMPLE_HEAD)
    cols = ["", "center"] + (["pool"] if wide else []) + ["chips", "xfer", "wait", "run",
                                                          "finish", "cost"]
    if wide:
        cols += ["kWh", "CO2 kg"]
    for col in cols:
        table.add_column(col, no_wrap=col != "chips",
                         justify="left" if col in ("", "center", "pool", "chips") else "right")
    for o in shown:
        row = [("✓" if o.chosen else " ") + ("◆" if o.pareto else ""), o.center]
        row += [o.pool] if wide else []
        row += [o.chips_label + ("*" if o.spot else ""), format_duration(o.transfer_s),
                format_duration(o.wait_s), format_duration(o.run_s), format_duration(o.finish_s),
                _money(result, o.cost)]
        row += [f"{o.energy_kwh:,.1f}", f"{o.carbon_kg:,.1f}"] if wide else []
        table.add_row(*row, style="bold green" if o.chosen else None)
    console.print(table)
    per = ("every chip count" if counts
           else "best chip count per pool (--counts: every count)")
    console.print(
        f"✓ chosen  ◆ Pareto front (finish vs cost)  * spot. xfer: data transfer; wait: for "
        f"chips; finish = max(wait, xfer) + run; cost: {result.currency}"
        + ("; kWh: energy with PUE" if wide else "; --wide adds pool, energy and CO2")
        + f". Rows: {per}.", highlight=False, markup=False)


def _print_pareto(result: PlanResult) -> None:
    table = Table(title=f"Pareto front: {len(result.pareto)} options no other beats on both "
                        "finish time and cost", box=box.SIMPLE_HEAD)
    split = any(o.split for o in result.pareto)  # the column only when some option is split
    for col in ("finish", f"cost {result.currency}", "placement") + (("split",) if split else ()):
        table.add_column(col, no_wrap=col != "split")
    for o in result.pareto:
        row = [format_duration(o.finish_s), _money(result, o.cost), o.label]
        table.add_row(*row, *([o.split_text or "-"] if split else []),
                      style="bold green" if o.chosen else None)
    console.print(table)

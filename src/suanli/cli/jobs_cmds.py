"""A tenant's jobs: `suanli submit`, `jobs`, `job`, `logs`, `cancel`, `usage`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import yaml

from suanli.cli.common import console, print_json, user_errors
from suanli.cli.options import JSON, TOKEN, URL, client
from suanli.cli.submit_prep import (
    Overrides,
    parse_accelerators,
    parse_env_overrides,
    prepare_submission,
)
from suanli.errors import SuanliError
from suanli.plan.units import format_duration
from suanli.store.models import JOB_STATES, TERMINAL_STATES
from suanli.tables import events_table, jobs_table, simple_table

if TYPE_CHECKING:
    from suanli.service.client import Client

app = typer.Typer()


@app.command("submit")
@user_errors
def submit(job_file: Path = typer.Argument(..., help="job YAML file"),
           env: list[str] = typer.Option(None, "--env", "-e",
                                         help="KEY=VALUE over the file's env, repeatable"),
           accelerators: str = typer.Option(None, "--accelerators", "--gpus",
                                            help="NAME[:COUNT],... over the file's resources"),
           count: int = typer.Option(None, "--count", min=1, help="chips, over the file's"),
           dryrun: bool = typer.Option(False, "--dryrun",
                                       help="show the placement first, then ask to submit"),
           yes: bool = typer.Option(False, "--yes", "-y", help="with --dryrun: do not ask"),
           key: str = typer.Option(None, "--key", help="Idempotency-Key (default: random)"),
           url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """Submit a job file to the service, with the code its `workdir:` names."""
    try:
        text = job_file.read_text("utf-8")
    except OSError as exc:
        raise SuanliError(f"cannot read job file {job_file}: {exc.strerror}",
                          field="job", value=str(job_file)) from None
    names, acc_count = parse_accelerators(accelerators)
    over = Overrides(env=parse_env_overrides(env), accelerators=names,
                     count=count if count is not None else acc_count)
    mapping, packed = prepare_submission(job_file, text, over)
    with client(url, token) as c:
        if dryrun and not _confirm_plan(c, job_file, text, mapping, yes, as_json):
            return
        job = c.submit_yaml(text, key) if mapping is None else c.submit_mapping(mapping, key)
    if as_json:
        print_json(job)
        return
    est = job["estimate"]
    if packed is not None:
        console.print(f"workdir: {packed.files} files, {len(packed.archive)} bytes packed "
                      f"({packed.digest[:19]})", highlight=False)
    console.print(f"job [bold]{job['id']}[/] {job['name']}: {job['state']}, estimated "
                  f"{est['cost']} CNY on {est['count']} {est['accelerator']} (reserved)")


def _confirm_plan(c: Client, job_file: Path, text: str, mapping: dict[str, Any] | None,
                  yes: bool, as_json: bool) -> bool:
    """The service's plan for the job (its /v1/plan preview); True to go on and submit."""
    body = {k: v for k, v in (mapping or yaml.safe_load(text)).items()
            if k != "workdir_archive"}
    plan = c.plan(body)
    chosen = plan.get("chosen")
    if as_json and not yes:
        print_json({"plan": plan, "submitted": False})
        return False
    if not as_json:
        if chosen is None:
            console.print(f"{job_file}: no feasible placement: "
                          + "; ".join(plan.get("infeasible") or []), highlight=False)
        else:
            run_h = chosen["run_s"] / 3600
            console.print(f"plan: {chosen['count']} {chosen['accelerator']} at "
                          f"{chosen['center']}/{chosen['pool']}, run {run_h:.1f} h, "
                          f"about {chosen['cost']:,.2f} {plan.get('currency', '')}",
                          highlight=False)
    if chosen is None:
        raise typer.Exit(code=1)
    return yes or typer.confirm("submit it?", default=False)


@app.command("jobs")
@user_errors
def jobs(state: list[str] = typer.Option(None, "--state", help="filter by state"),
         limit: int = typer.Option(100, help="at most this many"),
         all_tenants: bool = typer.Option(False, "--all", help="admin: every tenant"),
         wide: bool = typer.Option(False, "--wide", help="every column"),
         url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """List your jobs, newest first."""
    with client(url, token) as c:
        rows = c.jobs(state or None, limit, all_tenants)
    if as_json:
        print_json(rows)
    else:
        console.print(jobs_table(rows, wide=wide))


@app.command("job")
@user_errors
def job(job_id: int = typer.Argument(..., help="job id"), url: str = URL,
        token: str = TOKEN, as_json: bool = JSON) -> None:
    """One job: state, placement, money and its state changes."""
    with client(url, token) as c:
        j = c.job(job_id)
        evs = c.events(job_id)
    if as_json:
        print_json({**j, "events": evs})
        return
    console.print(jobs_table([j], title=f"job {job_id}", wide=True))
    console.print(events_table(evs))


def _last_lines(text: str, n: int | None) -> str:
    if n is None:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(lines[-n:]) if n > 0 else ""


@app.command("logs")
@user_errors
def logs(job_id: int = typer.Argument(..., help="job id"),
         follow: bool = typer.Option(False, "--follow", "-f",
                                     help="until the job ends; exit 0 if it succeeded, else 1"),
         tail: int = typer.Option(None, "--tail", "-n", min=0, help="only the last N lines"),
         url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """A job's output (stdout and stderr of its process)."""
    offset, chunks, first = 0, [], True
    with client(url, token) as c:
        while True:
            text, offset, state = c.logs(job_id, offset)
            if first:
                text, first = _last_lines(text, tail), False
            if text:
                if as_json:
                    chunks.append(text)
                else:
                    sys.stdout.write(text)
                    sys.stdout.flush()
            if not follow or (state in TERMINAL_STATES and not text):
                break
            if not text:
                time.sleep(0.5)
    if as_json:
        print_json({"job_id": job_id, "log": "".join(chunks), "offset": offset,
                    "state": state})
    if follow and state != "succeeded":
        raise typer.Exit(code=1)


@app.command("cancel")
@user_errors
def cancel(job_ids: list[int] = typer.Argument(None, help="job ids"),
           name: str = typer.Option(None, "--name", help="every active job of this name"),
           all_jobs: bool = typer.Option(False, "--all", help="every active job of yours"),
           url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """Cancel jobs (by id, by name or all active ones); credits settle for what they ran."""
    if not job_ids and name is None and not all_jobs:
        raise SuanliError("give job ids, --name NAME or --all", field="job_ids")
    with client(url, token) as c:
        ids = list(job_ids or [])
        if name is not None or all_jobs:
            active = c.jobs([s for s in JOB_STATES if s not in TERMINAL_STATES], 1000)
            ids += [j["id"] for j in active if all_jobs or j["name"] == name]
        done = [c.cancel(i) for i in dict.fromkeys(ids)]
    if as_json:
        print_json(done[0] if len(done) == 1 and job_ids else done)
        return
    for j in done:
        console.print(f"job {j['id']}: cancel requested (state {j['state']})")
    if not done:
        console.print("no active job matched")


WAITING = ("pending", "queued", "preempted")


def queue_rows(c: Client, jobs: list[dict[str, Any]], now_s: float) -> list[dict[str, Any]]:
    """Waiting jobs, oldest first, each with the broker's estimated start (its /v1/plan wait
    from now; None where the plan finds no placement)."""
    rows = []
    for pos, j in enumerate(sorted(jobs, key=lambda j: (j["submitted_at"], j["id"])), 1):
        spec = c.job(j["id"]).get("spec") or {}
        spec.pop("workdir", None)  # the plan needs the shape, not the code
        chosen = c.plan(spec).get("chosen")
        rows.append({"position": pos, "id": j["id"], "name": j["name"], "state": j["state"],
                     "waited_s": max(0.0, now_s - j["submitted_at"]),
                     "est_start_s": None if chosen is None else chosen["start_s"],
                     "where": None if chosen is None else
                     f"{chosen['count']} {chosen['accelerator']} @ {chosen['center']}"})
    return rows


@app.command("queue")
@user_errors
def queue(url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """Your waiting jobs in order, with when each is estimated to start and where."""
    with client(url, token) as c:
        rows = queue_rows(c, c.jobs(list(WAITING), 1000), time.time())
    if as_json:
        print_json(rows)
        return
    table = simple_table("queue", ("#", "id", "name", "state", "waited", "starts in", "where"),
                         right=("#", "id", "waited", "starts in"), wrap=("name",))
    for r in rows:
        start = "-" if r["est_start_s"] is None else format_duration(r["est_start_s"])
        table.add_row(str(r["position"]), str(r["id"]), r["name"], r["state"],
                      format_duration(r["waited_s"]), start, r["where"] or "no placement")
    console.print(table)
    if not rows:
        console.print("no job is waiting")


@app.command("usage")
@user_errors
def usage(tenant: str = typer.Option(None, help="admin: another tenant"), url: str = URL,
          token: str = TOKEN, as_json: bool = JSON) -> None:
    """Your credit balance, reservations, spend, quotas and jobs."""
    with client(url, token) as c:
        u = c.usage(tenant)
    if as_json:
        print_json(u)
        return
    cur = u["currency"]
    console.print(f"tenant [bold]{u['tenant']}[/]: balance {u['balance']} {cur}, reserved "
                  f"{u['reserved']}, spent {u['spent']}, granted {u['granted']}")
    if u["quotas"]:
        console.print("quotas: " + ", ".join(
            f"{a} {u['chips_in_use'].get(a, 0)}/{n}" for a, n in u["quotas"].items()))
    console.print("jobs: " + (", ".join(f"{s} {n}" for s, n in u["jobs"].items()) or "none"))

"""The live network from the command line: `suanli up`, the HTTP client commands
(submit, jobs, job, logs, cancel, usage, admin) and `suanli demo`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from suanli.cli.common import console, print_json, user_errors
from suanli.errors import SuanliError

JSON = typer.Option(False, "--json", help="print JSON instead of tables")
URL = typer.Option(None, "--url", help="service URL (default: $SUANLI_URL, config, :8600)")
TOKEN = typer.Option(None, "--token", help="API token (default: $SUANLI_TOKEN or config)")


def _client(url: str | None, token: str | None) -> Any:
    from suanli.service.client import Client

    return Client(url, token)


def _when(t: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) if t else "-"


def _placement(job: dict[str, Any]) -> str:
    p = job.get("placement")
    if not p:
        est = job.get("estimate") or {}
        return f"(est. {est.get('count')} {est.get('accelerator')})" if est.get("accelerator") \
            else "-"
    return f"{p['count']} {p['accelerator']} @ {p['center']}/{p['pool']}"


def jobs_table(jobs: list[dict[str, Any]], title: str = "jobs") -> Table:
    table = Table(title=title)
    wide = console.width >= 120
    cols = ("id", "name", "state", "placement", "run s", "est. cost", "charged", "reason")
    for col in cols if wide else cols[:-1]:
        table.add_column(col, justify="right" if col in ("id", "run s", "est. cost",
                                                          "charged") else "left",
                         no_wrap=col in ("id", "state"))
    colors = {"succeeded": "green", "failed": "red", "cancelled": "yellow",
              "running": "cyan", "starting": "cyan"}
    for j in jobs:
        c = colors.get(j["state"], "white")
        cells = [str(j["id"]), j["name"], f"[{c}]{j['state']}[/]", _placement(j),
                 f"{j['run_s']:.1f}", j["estimate"]["cost"], j["charged"] or "-",
                 (j["reason"] or "")[:50]]
        table.add_row(*(cells if wide else cells[:-1]))
    return table


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""

    @app.command("up")
    @user_errors
    def up(network: str = typer.Option("east-west", help="network name or YAML (first start)"),
           db: str = typer.Option(None, help="database URL (default sqlite ~/.suanli/suanli.db)"),
           backend: str = typer.Option("local", help="local | ray | none (API only)"),
           host: str = typer.Option("127.0.0.1", help="listen address (loopback by default)"),
           port: int = typer.Option(8600, help="listen port"),
           policy: str = typer.Option("fifo", help="scheduling policy"),
           round_s: float = typer.Option(2.0, help="scheduling round in seconds"),
           ray_address: str = typer.Option(None, help="Ray cluster address (backend ray)"),
           single_user: bool = typer.Option(
               False, "--single-user",
               help="run jobs unsandboxed as this user (only for one user on their own machine)"),
           as_json: bool = JSON) -> None:
        """Start the service: API, database, scheduler and backend."""
        from suanli.service.server import serve_forever
        from suanli.service.settings import Settings

        if backend not in ("local", "ray", "none"):
            raise SuanliError(f"--backend must be local, ray or none (got {backend!r})",
                              field="backend", value=backend)
        from suanli.policies.registry import canonical_name

        policy = canonical_name(policy)  # an unknown name fails here, in one line
        settings = Settings(network=network, db_url=db, backend=backend, host=host, port=port,
                            policy=policy, round_s=round_s, ray_address=ray_address,
                            isolation="none" if single_user else "sandbox")
        if backend == "local" and not single_user:
            from suanli.backends.sandbox import make_isolation

            make_isolation("sandbox")  # no sandbox: refuse now, in one line, naming the fix
        if as_json:
            print_json({"url": f"http://{host}:{port}", "db": settings.resolved_db_url(),
                        "backend": backend, "policy": policy})
        else:
            console.print(f"suanli service on [bold]http://{host}:{port}[/] "
                          f"(db {settings.resolved_db_url()}, backend {backend}, policy {policy})")
        serve_forever(settings, log_level="warning" if as_json else "info")

    @app.command("submit")
    @user_errors
    def submit(job_file: Path = typer.Argument(..., help="job YAML file"),
               key: str = typer.Option(None, "--key", help="Idempotency-Key (default: random)"),
               url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
        """Submit a job file to the service."""
        try:
            text = job_file.read_text("utf-8")
        except OSError as exc:
            raise SuanliError(f"cannot read job file {job_file}: {exc.strerror}",
                              field="job", value=str(job_file)) from None
        with _client(url, token) as c:
            job = c.submit_yaml(text, key)
        if as_json:
            print_json(job)
        else:
            console.print(f"job [bold]{job['id']}[/] {job['name']}: {job['state']}, "
                          f"estimated {job['estimate']['cost']} CNY on "
                          f"{job['estimate']['count']} {job['estimate']['accelerator']} "
                          f"(reserved)")

    @app.command("jobs")
    @user_errors
    def jobs(state: list[str] = typer.Option(None, "--state", help="filter by state"),
             limit: int = typer.Option(100, help="at most this many"),
             all_tenants: bool = typer.Option(False, "--all", help="admin: every tenant"),
             url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
        """List your jobs, newest first."""
        with _client(url, token) as c:
            rows = c.jobs(state or None, limit, all_tenants)
        if as_json:
            print_json(rows)
        else:
            console.print(jobs_table(rows))

    @app.command("job")
    @user_errors
    def job(job_id: int = typer.Argument(..., help="job id"), url: str = URL,
            token: str = TOKEN, as_json: bool = JSON) -> None:
        """One job: state, placement, money and its state changes."""
        with _client(url, token) as c:
            j = c.job(job_id)
            evs = c.events(job_id)
        if as_json:
            print_json({**j, "events": evs})
            return
        console.print(jobs_table([j], title=f"job {job_id}"))
        table = Table(title="events")
        for col in ("at", "from", "to", "reason", "placement"):
            table.add_column(col)
        for e in evs:
            p = e.get("placement") or {}
            where = f"{p.get('count')} {p.get('accelerator')} @ {p.get('pool_id')}" if p else ""
            table.add_row(_when(e["at"]), e["old"] or "", e["new"], e["reason"] or "", where)
        console.print(table)

    @app.command("logs")
    @user_errors
    def logs(job_id: int = typer.Argument(..., help="job id"),
             follow: bool = typer.Option(False, "--follow", "-f", help="until the job ends"),
             url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
        """A job's output (stdout and stderr of its process)."""
        import sys

        terminal = {"succeeded", "failed", "cancelled"}
        offset, chunks = 0, []
        with _client(url, token) as c:
            while True:
                text, offset, state = c.logs(job_id, offset)
                if text:
                    if as_json:
                        chunks.append(text)
                    else:
                        sys.stdout.write(text)
                        sys.stdout.flush()
                if not follow or (state in terminal and not text):
                    break
                if not text:
                    time.sleep(0.5)
        if as_json:
            print_json({"job_id": job_id, "log": "".join(chunks), "offset": offset,
                        "state": state})

    @app.command("cancel")
    @user_errors
    def cancel(job_id: int = typer.Argument(..., help="job id"), url: str = URL,
               token: str = TOKEN, as_json: bool = JSON) -> None:
        """Cancel a job; its credits are settled for what it ran."""
        with _client(url, token) as c:
            j = c.cancel(job_id)
        if as_json:
            print_json(j)
        else:
            console.print(f"job {job_id}: cancel requested (state {j['state']})")

    @app.command("usage")
    @user_errors
    def usage(tenant: str = typer.Option(None, help="admin: another tenant"), url: str = URL,
              token: str = TOKEN, as_json: bool = JSON) -> None:
        """Your credit balance, reservations, spend, quotas and jobs."""
        with _client(url, token) as c:
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

    @app.command("status")
    @user_errors
    def status(url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
        """Whether the service answers, and which replica leads the scheduler."""
        with _client(url, token) as c:
            h = c.get("/healthz")
        if as_json:
            print_json(h)
            return
        console.print(f"service at {c.url}: ok, database {h['database']}, "
                      f"network {h['network']}")
        lead = h.get("leader")
        if lead is None:
            console.print("scheduler: none (API only)")
            return
        who = lead.get("holder") or "nobody"
        state = "expired" if lead.get("expired") else "held"
        console.print(f"leader: [bold]{who}[/] (fencing token {lead.get('token')}, lease "
                      f"{state}, renewed {lead.get('lease_age_s')} s ago)")
        role = "leader" if lead.get("leading") else "follower"
        console.print(f"this replica: {lead.get('replica')} ({role})")

    admin_app = typer.Typer(help="Administer the network: tenants, credits, quotas, pools.",
                            no_args_is_help=True)
    tenant_app = typer.Typer(help="Tenants, their credits and quotas.", no_args_is_help=True)
    pool_app = typer.Typer(help="Pools: prices and inventory.", no_args_is_help=True)
    admin_app.add_typer(tenant_app, name="tenant")
    admin_app.add_typer(pool_app, name="pool")
    app.add_typer(admin_app, name="admin")

    def _quotas(items: list[str] | None) -> dict[str, int]:
        out = {}
        for item in items or []:
            acc, sep, n = item.partition("=")
            if not sep or not n.strip().isdigit():
                raise SuanliError(f"--quota wants ACCELERATOR=CHIPS (got {item!r})",
                                  field="quota", value=item)
            out[acc.strip()] = int(n)
        return out

    @tenant_app.command("create")
    @user_errors
    def tenant_create(name: str = typer.Argument(..., help="tenant name"),
                      credits: str = typer.Option("0", help="initial credits (CNY)"),
                      quota: list[str] = typer.Option(None, help="ACCELERATOR=CHIPS, repeatable"),
                      admin: bool = typer.Option(False, help="make it an admin"),
                      url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
        """Create a tenant; prints its API token (shown once)."""
        with _client(url, token) as c:
            t = c.create_tenant(name, credits, _quotas(quota), admin)
        if as_json:
            print_json(t)
        else:
            console.print(f"tenant [bold]{t['name']}[/] created with {t['balance']} credits")
            console.print(f"token (shown once): [bold]{t['token']}[/]", highlight=False)

    @tenant_app.command("grant")
    @user_errors
    def tenant_grant(name: str = typer.Argument(..., help="tenant name"),
                     amount: str = typer.Argument(..., help="CNY (negative claws back)"),
                     note: str = typer.Option("", help="why (kept in the ledger)"),
                     url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
        """Grant credits (a compute voucher)."""
        with _client(url, token) as c:
            t = c.grant(name, amount, note)
        if as_json:
            print_json(t)
        else:
            console.print(f"tenant {t['name']}: balance {t['balance']}")

    @tenant_app.command("quota")
    @user_errors
    def tenant_quota(name: str = typer.Argument(..., help="tenant name"),
                     quota: list[str] = typer.Argument(..., help="ACCELERATOR=CHIPS ..."),
                     url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
        """Set chip limits per accelerator."""
        with _client(url, token) as c:
            q = c.set_quotas(name, _quotas(quota))  # type: ignore[arg-type]
        if as_json:
            print_json(q)
        else:
            console.print(f"tenant {name}: quotas {q['quotas']}")

    @tenant_app.command("list")
    @user_errors
    def tenant_list(url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
        """All tenants and their balances."""
        with _client(url, token) as c:
            ts = c.tenants()
        if as_json:
            print_json(ts)
            return
        table = Table(title="tenants")
        for col in ("id", "name", "admin", "balance", "reserved"):
            table.add_column(col)
        for t in ts:
            table.add_row(str(t["id"]), t["name"], "yes" if t["is_admin"] else "",
                          t["balance"], t["reserved"])
        console.print(table)

    @pool_app.command("set")
    @user_errors
    def pool_set(center: str = typer.Argument(..., help="center id"),
                 pool: str = typer.Argument(..., help="pool id"),
                 price: str = typer.Option(None, help="price per chip-hour"),
                 spot_price: str = typer.Option(None, help="spot price per chip-hour"),
                 nodes: int = typer.Option(None, help="node count"),
                 url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
        """Change a pool's price or inventory."""
        values = {k: v for k, v in {"price_per_chip_hour": price,
                                    "spot_price_per_chip_hour": spot_price,
                                    "nodes": nodes}.items() if v is not None}
        if not values:
            raise SuanliError("give --price, --spot-price or --nodes", field="pool")
        with _client(url, token) as c:
            out = c.patch_pool(center, pool, **values)
        if as_json:
            print_json(out)
        else:
            p = next(p for p in out["pools"] if p["id"] == pool)
            console.print(f"{center}/{pool}: {p['nodes']} nodes, "
                          f"{p['price_per_chip_hour']}/chip-hour")

    _register_tokens(app, admin_app)

    @app.command("demo")
    @user_errors
    def demo(timeout_s: float = typer.Option(90.0, help="give up after this long"),
             as_json: bool = JSON) -> None:
        """The live network end to end: start the service in-process, submit the examples,
        watch them placed, run and settle, then exit."""
        from suanli.service.demo import run_demo

        result = run_demo(timeout_s=timeout_s, live=not as_json)
        if as_json:
            print_json(result)


def _tokens_table(title: str, tokens: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for col in ("id", "prefix", "created", "revoked"):
        table.add_column(col)
    for t in tokens:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t["created_at"]))
        table.add_row(str(t["id"]), t["prefix"] + "...", created,
                      "[red]revoked[/]" if t["revoked"] else "")
    return table


def _register_tokens(app: typer.Typer, admin_app: typer.Typer) -> None:
    """`suanli token list|create|revoke` (your own) and `suanli admin token ...` (any tenant's):
    one set of commands, the tenant argument present only under admin."""
    for parent, tenant_arg in ((app, False), (admin_app, True)):
        group = typer.Typer(help="API tokens: list, create, revoke." if not tenant_arg else
                            "A tenant's API tokens (admin).", no_args_is_help=True)
        parent.add_typer(group, name="token")
        _token_commands(group, tenant_arg)


def _token_commands(group: typer.Typer, tenant_arg: bool) -> None:
    who = typer.Argument(..., help="tenant name") if tenant_arg else typer.Option(
        None, hidden=True)

    @group.command("list")
    @user_errors
    def token_list(tenant: str = who, url: str = URL, token: str = TOKEN,
                   as_json: bool = JSON) -> None:
        """Tokens with id, prefix, creation time and revoked; never the secret."""
        with _client(url, token) as c:
            ts = c.tokens(tenant)
        if as_json:
            print_json(ts)
        else:
            console.print(_tokens_table(f"tokens of {tenant}" if tenant else "your tokens", ts))

    @group.command("create")
    @user_errors
    def token_create(tenant: str = who, url: str = URL, token: str = TOKEN,
                     as_json: bool = JSON) -> None:
        """A new token; its secret is printed this once."""
        with _client(url, token) as c:
            t = c.create_token(tenant)
        if as_json:
            print_json(t)
        else:
            console.print(f"token {t['id']} for [bold]{t['tenant']}[/] (shown once): "
                          f"[bold]{t['token']}[/]", highlight=False)

    @group.command("revoke")
    @user_errors
    def token_revoke(tenant: str = who,
                     token_id: int = typer.Argument(..., help="token id (from `token list`)"),
                     url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
        """Revoke a token: refused by every replica from the next request on."""
        with _client(url, token) as c:
            t = c.revoke_token(token_id, tenant)
        if as_json:
            print_json(t)
        else:
            console.print(f"token {t['id']} ({t['prefix']}...) of {t['tenant']} revoked")

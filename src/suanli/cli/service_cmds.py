"""The service itself: `suanli up` (start it), `suanli status` (is it there, who leads) and
`suanli demo` (the whole live network, in-process, end to end)."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich import box
from rich.table import Table

from suanli.cli.common import console, err_console, print_json, user_errors
from suanli.cli.options import JSON, TOKEN, URL, client
from suanli.errors import SuanliError
from suanli.service.client import ServiceError

app = typer.Typer()


@app.command("up")
@user_errors
def up(network: str = typer.Option("east-west", help="network name or YAML (first start)"),
       db: str = typer.Option(None, help="database URL (default sqlite ~/.suanli/suanli.db)"),
       backend: str = typer.Option("local", help="local | ray | none (API only)"),
       host: str = typer.Option("127.0.0.1", help="listen address (loopback by default)"),
       port: int = typer.Option(8600, envvar="SUANLI_PORT", help="listen port"),
       policy: str = typer.Option("fifo", help="scheduling policy"),
       round_s: float = typer.Option(2.0, help="scheduling round in seconds"),
       ray_address: str = typer.Option(None, help="Ray cluster address (backend ray)"),
       single_user: bool = typer.Option(
           False, "--single-user",
           help="run jobs unsandboxed as this user (only for one user on their own machine)"),
       as_json: bool = JSON) -> None:
    """Start the service: API, database, scheduler and backend.

    At first start it writes the admin credentials (0600) next to the database, says where."""
    from suanli.policies.registry import canonical_name
    from suanli.service.server import serve_forever
    from suanli.service.settings import Settings

    if backend not in ("local", "ray", "none"):
        raise SuanliError(f"--backend must be local, ray or none (got {backend!r})",
                          field="backend", value=backend)
    policy = canonical_name(policy)  # an unknown name fails here, in one line
    settings = Settings(network=network, db_url=db, backend=backend, host=host, port=port,
                        policy=policy, round_s=round_s, ray_address=ray_address,
                        isolation="none" if single_user else "sandbox")
    if backend == "local" and not single_user:
        from suanli.backends.sandbox import make_isolation

        make_isolation("sandbox")  # no sandbox: refuse now, in one line, naming the fix
    local_ray = None
    if backend == "ray" and ray_address is None:
        local_ray = _local_ray_cluster(network, as_json)
        settings.ray_address = local_ray.address
    if as_json:
        print_json({"url": settings.client_url(), "db": settings.resolved_db_url(),
                    "backend": backend, "policy": policy,
                    "credentials": str(settings.credentials_path())})
    else:
        console.print(f"suanli service on [bold]http://{host}:{port}[/] "
                      f"(db {settings.resolved_db_url()}, backend {backend}, policy {policy})")
    try:
        serve_forever(settings, log_level="warning" if as_json else "info")
    finally:
        if local_ray is not None:
            local_ray.shutdown()


def _local_ray_cluster(network: str, quiet: bool) -> Any:
    """No --ray-address: a Ray cluster on this machine, one node per center of the network
    (each carrying its center's pools), so jobs run as they would on attached machines."""
    from suanli.backends.ray_backend import start_local_ray_cluster
    from suanli.network import load_network

    net = load_network(network)
    cluster = start_local_ray_cluster(net)
    say = err_console.print if quiet else console.print
    say(f"ray: a local cluster at {cluster.address}, one node per center "
        f"({len(cluster.node_ids)}); attach a machine to a center with `suanli node join "
        f"--center ID --address {cluster.address}`", highlight=False)
    return cluster


@app.command("status")
@user_errors
def status(wait_s: float = typer.Option(0.0, "--wait", help="wait up to this many seconds "
                                         "for the service to answer (after `suanli up &`)"),
           url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """Whether the service answers, which replica leads, and chips used/free per center."""
    deadline = time.monotonic() + wait_s
    with client(url, token) as c:
        while True:
            try:
                h = c.get("/healthz")
                break
            except ServiceError as exc:
                if exc.status is not None or time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
        centers = centers_summary(c.get("/v1/pools")["pools"]) if c.token else None
    if as_json:
        print_json({**h, "centers": centers})
        return
    console.print(f"service at {c.url}: ok, database {h['database']}, network {h['network']}")
    lead = h.get("leader")
    if lead is None:
        console.print("scheduler: none (API only)")
    else:
        who = lead.get("holder") or "nobody"
        state = "expired" if lead.get("expired") else "held"
        console.print(f"leader: [bold]{who}[/] (fencing token {lead.get('token')}, lease "
                      f"{state}, renewed {lead.get('lease_age_s')} s ago)")
        role = "leader" if lead.get("leading") else "follower"
        console.print(f"this replica: {lead.get('replica')} ({role})")
    if centers is not None:
        console.print(centers_table(centers, h.get("nodes")))
    elif h.get("nodes") is not None:
        console.print(f"live nodes: {_nodes_text(h['nodes'])}", highlight=False)


def centers_summary(pools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per center: chips used and free, per accelerator."""
    out: dict[str, dict[str, Any]] = {}
    for p in pools:
        c = out.setdefault(p["center"], {"center": p["center"], "chips": {}})
        used = int(p.get("chips_used", 0))
        acc = c["chips"].setdefault(p["accelerator"], {"used": 0, "free": 0})
        acc["used"] += used
        acc["free"] += int(p["chips"]) - used
    return list(out.values())


def centers_table(centers: list[dict[str, Any]],
                  nodes: list[dict[str, Any]] | None = None) -> Table:
    """Chips used/free per center; with `nodes` (a Ray backend) the live machines of each, so
    a center no machine stands for is seen before a job waits on it."""
    table = Table(title="centers: chips used / free", box=box.SIMPLE_HEAD)
    table.add_column("center", no_wrap=True)
    table.add_column("chips (used/free)")
    live = {n["center"]: n for n in nodes or ()}
    if nodes is not None:
        table.add_column("live nodes (chips)")
    for c in centers:
        row = [c["center"], ", ".join(f"{a} {v['used']}/{v['free']}"
                                      for a, v in sorted(c["chips"].items()))]
        if nodes is not None:
            n = live.get(c["center"])
            row.append(_nodes_text([n]) if n else "[red]none: jobs wait[/]")
        table.add_row(*row)
    return table


def _nodes_text(nodes: list[dict[str, Any]]) -> str:
    """'1 node (A100 64)' per center; several centers joined by '; '."""
    return "; ".join(
        f"{'' if len(nodes) == 1 else n['center'] + ': '}{n['nodes']} "
        f"node{'s' if n['nodes'] != 1 else ''} ("
        + ", ".join(f"{pool} {chips}" for pool, chips in sorted(n["chips"].items())) + ")"
        for n in nodes) or "none"


@app.command("demo")
@user_errors
def demo(timeout_s: float = typer.Option(90.0, help="give up after this long"),
         as_json: bool = JSON) -> None:
    """The live network end to end, in-process: submit, place, run, settle, exit."""
    from suanli.service.demo import run_demo

    result = run_demo(timeout_s=timeout_s, live=not as_json)
    if as_json:
        print_json(result)

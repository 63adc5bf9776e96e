"""`suanli admin`: tenants, their credits and quotas, pools, and any tenant's tokens."""

from __future__ import annotations

import typer

from suanli.cli.common import console, emit, print_json, user_errors
from suanli.cli.options import JSON, TOKEN, URL, client
from suanli.cli.token_cmds import token_app
from suanli.cli.voucher_cmds import voucher_app
from suanli.errors import SuanliError
from suanli.service.profiles import Profile, save_profile
from suanli.tables import tenants_table

admin_app = typer.Typer(help="Administer the network: tenants, credits, quotas, pools.",
                        no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants, their credits and quotas.", no_args_is_help=True)
pool_app = typer.Typer(help="Pools: prices and inventory.", no_args_is_help=True)
admin_app.add_typer(tenant_app, name="tenant")
admin_app.add_typer(pool_app, name="pool")
admin_app.add_typer(token_app(tenant_arg=True), name="token")
admin_app.add_typer(voucher_app, name="voucher")

app = typer.Typer()
app.add_typer(admin_app, name="admin")


def parse_quotas(items: list[str] | None) -> dict[str, int]:
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
                  login: bool = typer.Option(
                      False, "--login",
                      help="store the new token as profile NAME and make it current"),
                  url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """Create a tenant; prints its API token (shown once) or, with --login, stores it."""
    with client(url, token) as c:
        t = c.create_tenant(name, credits, parse_quotas(quota), admin)
        service_url = c.url
    where = save_profile(Profile(name=name, url=service_url, token=t["token"])) if login \
        else None
    if as_json:
        print_json({**t, "profile": str(where) if where else None})
        return
    console.print(f"tenant [bold]{t['name']}[/] created with {t['balance']} credits")
    if where:
        console.print(f"its token is stored as profile [bold]{name}[/] in {where} (current; "
                      f"`suanli login --profile admin` switches back)")
    else:
        console.print(f"token (shown once): [bold]{t['token']}[/]", highlight=False)


@tenant_app.command("grant")
@user_errors
def tenant_grant(name: str = typer.Argument(..., help="tenant name"),
                 amount: str = typer.Argument(..., help="CNY (negative claws back)"),
                 note: str = typer.Option("", help="why (kept in the ledger)"),
                 url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """Grant credits (a compute voucher)."""
    with client(url, token) as c:
        t = c.grant(name, amount, note)
    emit(t, as_json, lambda: f"tenant {t['name']}: balance {t['balance']}")


@tenant_app.command("quota")
@user_errors
def tenant_quota(name: str = typer.Argument(..., help="tenant name"),
                 quota: list[str] = typer.Argument(..., help="ACCELERATOR=CHIPS ..."),
                 url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """Set chip limits per accelerator."""
    with client(url, token) as c:
        q = c.set_quotas(name, parse_quotas(quota))  # type: ignore[arg-type]
    emit(q, as_json, lambda: f"tenant {name}: quotas {q['quotas']}")


@tenant_app.command("list")
@user_errors
def tenant_list(url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """All tenants and their balances."""
    with client(url, token) as c:
        ts = c.tenants()
    emit(ts, as_json, lambda: tenants_table(ts))


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
    with client(url, token) as c:
        out = c.patch_pool(center, pool, **values)
    if as_json:
        print_json(out)
    else:
        p = next(p for p in out["pools"] if p["id"] == pool)
        console.print(f"{center}/{pool}: {p['nodes']} nodes, "
                      f"{p['price_per_chip_hour']}/chip-hour")

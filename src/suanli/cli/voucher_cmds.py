"""`suanli vouchers` (yours, and what each paid) and `suanli admin voucher issue|list|revoke`
(mounted on `suanli admin` by `admin_cmds`)."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.table import Table

from suanli.cli.common import console, print_json, user_errors
from suanli.cli.options import JSON, TOKEN, URL, client
from suanli.service.client import VoucherCalls

voucher_app = typer.Typer(help="Compute vouchers: a share of the price, paid by an issuer.",
                          no_args_is_help=True)
app = typer.Typer()


def _when(epoch_s: float | None) -> str:
    return "" if epoch_s is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(epoch_s))


def _table(rows: list[dict[str, Any]], with_tenant: bool) -> Table:
    table = Table(title="vouchers")
    cols = ["id", *(["tenant"] if with_tenant else []), "issuer", "share", "where", "cap",
            "paid", "remaining", "expires (UTC)", "state"]
    for col in cols:
        table.add_column(col, justify="right" if col in ("id", "cap", "paid", "remaining",
                                                         "share") else "left")
    for v in rows:
        where = ", ".join([*v["centers"], *v["regions"]]) or "anywhere"
        state = ("revoked" if v["revoked_at"] is not None
                 else "active" if v["active"] else "expired")
        share = f"{float(v['share']) * 100:g}%"
        table.add_row(str(v["id"]), *([v.get("tenant") or ""] if with_tenant else []),
                      v["issuer"], share, where, v["cap"], v.get("paid") or "0.00",
                      v["remaining"], _when(v["expires_at"]), state)
    return table


def _show(rows: list[dict[str, Any]], as_json: bool, with_tenant: bool) -> None:
    if as_json:
        print_json({"vouchers": rows})
    elif not rows:
        console.print("no vouchers")
    else:
        console.print(_table(rows, with_tenant))


@app.command("vouchers")
@user_errors
def my_vouchers(url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """Your compute vouchers: where they pay, how much is left, what each has paid."""
    with client(url, token) as c:
        rows = VoucherCalls(c).mine()
    _show(rows, as_json, with_tenant=False)


@voucher_app.command("issue")
@user_errors
def issue(tenant: str = typer.Argument(..., help="the tenant it is issued to"),
          share: str = typer.Option(..., help="share of a job's charge it pays, e.g. 0.3"),
          cap: str = typer.Option(..., help="the most it pays in all (CNY)"),
          issuer: str = typer.Option(..., help="who pays, e.g. a city"),
          days: float = typer.Option(..., help="valid this many days from now"),
          center: list[str] = typer.Option(None, help="eligible center id, repeatable"),
          region: list[str] = typer.Option(None, help="eligible region, repeatable"),
          note: str = typer.Option("", help="kept with the voucher"),
          url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """Issue a voucher (no --center or --region: it pays anywhere on the network)."""
    body = {"tenant": tenant, "issuer": issuer, "share": share, "cap": cap, "valid_days": days,
            "centers": center or [], "regions": region or [], "note": note}
    with client(url, token) as c:
        v = VoucherCalls(c).issue(body)
    if as_json:
        print_json(v)
    else:
        console.print(f"voucher {v['id']} issued to {tenant}: {issuer} pays "
                      f"{float(v['share']) * 100:g}% up to {v['cap']}, until "
                      f"{_when(v['expires_at'])} UTC", highlight=False)


@voucher_app.command("list")
@user_errors
def list_(tenant: str = typer.Option(None, help="only this tenant's"),
          url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """All vouchers, with what each has paid."""
    with client(url, token) as c:
        rows = VoucherCalls(c).all(tenant)
    _show(rows, as_json, with_tenant=True)


@voucher_app.command("revoke")
@user_errors
def revoke(voucher_id: int = typer.Argument(..., help="voucher id"),
           url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """Revoke a voucher: it pays for no job settled from now on (what it paid stays paid)."""
    with client(url, token) as c:
        v = VoucherCalls(c).revoke(voucher_id)
    if as_json:
        print_json(v)
    else:
        console.print(f"voucher {v['id']} revoked; it had paid {v['paid']}", highlight=False)

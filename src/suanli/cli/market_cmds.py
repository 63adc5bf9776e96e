"""What the network has and what it cost: `suanli gpus` (free chips where, at what price now,
like `sky gpus list`) and `suanli cost-report` (per job, day and tenant, with vouchers)."""

from __future__ import annotations

import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

import typer

from suanli.cli.common import console, print_json, user_errors
from suanli.cli.options import JSON, TOKEN, URL, client
from suanli.tables import simple_table

app = typer.Typer()


def gpu_rows(pools: list[dict[str, Any]], accelerator: str | None) -> list[dict[str, Any]]:
    rows = []
    for p in pools:
        if accelerator and p["accelerator"].lower() != accelerator.lower():
            continue
        used = int(p.get("chips_used", 0))
        rows.append({"accelerator": p["accelerator"], "center": p["center"], "pool": p["id"],
                     "free": p["chips"] - used, "chips": p["chips"],
                     "price_per_chip_hour": p["price_per_chip_hour"],
                     "spot_price_per_chip_hour": p["spot_price_per_chip_hour"]})
    return sorted(rows, key=lambda r: (r["accelerator"], Decimal(r["price_per_chip_hour"])))


@app.command("gpus")
@user_errors
def gpus(accelerator: str = typer.Argument(None, help="only this chip, e.g. H800"),
         url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """Which chips are free where, and at what price now (cheapest first per chip)."""
    with client(url, token) as c:
        rows = gpu_rows(c.get("/v1/pools")["pools"], accelerator)
    if as_json:
        print_json(rows)
        return
    table = simple_table("chips", ("chip", "center", "pool", "free", "of", "price/h", "spot/h"),
                         right=("free", "of", "price/h", "spot/h"))
    for r in rows:
        table.add_row(r["accelerator"], r["center"], r["pool"], f"{r['free']:,}",
                      f"{r['chips']:,}", r["price_per_chip_hour"],
                      r["spot_price_per_chip_hour"] or "-")
    console.print(table)
    console.print("price/h, spot/h: per chip-hour, in the network's currency", highlight=False)


def cost_report_data(jobs: list[dict[str, Any]], ledger: list[dict[str, Any]] | None
                     ) -> dict[str, Any]:
    """Charged money per job, per day (of the job's end, else its submission) and per tenant;
    the vouchers (credit grants) beside it."""
    by_day: dict[str, Decimal] = defaultdict(Decimal)
    by_tenant: dict[str, Decimal] = defaultdict(Decimal)
    per_job = []
    for j in jobs:
        charged = Decimal(j["charged"] or "0")
        day = time.strftime("%Y-%m-%d", time.localtime(j["finished_at"] or j["submitted_at"]))
        by_day[day] += charged
        by_tenant[str(j["tenant_id"])] += charged
        per_job.append({"id": j["id"], "name": j["name"], "tenant_id": j["tenant_id"],
                        "state": j["state"], "day": day, "charged": str(charged),
                        "estimate": j["estimate"]["cost"]})
    vouchers = [e for e in (ledger or []) if e["kind"] == "grant"]
    return {"jobs": per_job,
            "by_day": {d: str(v) for d, v in sorted(by_day.items())},
            "by_tenant": {t: str(v) for t, v in sorted(by_tenant.items())},
            "total": str(sum(by_day.values(), Decimal("0"))),
            "vouchers": vouchers,
            "granted": str(sum((Decimal(e["amount"]) for e in vouchers), Decimal("0")))}


@app.command("cost-report")
@user_errors
def cost_report(all_tenants: bool = typer.Option(False, "--all", help="admin: every tenant"),
                url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
    """What your jobs cost: per job, per day and per tenant, with the vouchers granted."""
    with client(url, token) as c:
        jobs = c.jobs(None, 1000, all_tenants)
        ledger = c.get("/v1/ledger")["entries"]
    data = cost_report_data(jobs, ledger)
    if as_json:
        print_json(data)
        return
    table = simple_table("cost per job", ("id", "name", "tenant", "state", "day", "charged",
                                          "estimate"),
                         right=("id", "charged", "estimate"), wrap=("name",))
    for j in data["jobs"]:
        table.add_row(str(j["id"]), j["name"], str(j["tenant_id"]), j["state"], j["day"],
                      j["charged"], j["estimate"])
    console.print(table)
    console.print("per day: " + (", ".join(f"{d} {v}" for d, v in data["by_day"].items())
                                 or "none"), highlight=False)
    if all_tenants:
        console.print("per tenant id: " + ", ".join(
            f"{t} {v}" for t, v in data["by_tenant"].items()), highlight=False)
    console.print(f"total charged {data['total']}; vouchers granted {data['granted']} "
                  f"({len(data['vouchers'])})", highlight=False)

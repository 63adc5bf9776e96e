"""Rich tables of the live service's objects, shared by the CLI and `suanli demo`."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from typing import Any

from rich import box
from rich.table import Table

JOB_STATE_COLORS = {"succeeded": "green", "failed": "red", "cancelled": "yellow",
                    "running": "cyan", "starting": "cyan"}


def clock(t: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) if t else "-"


def simple_table(title: str, cols: Iterable[str], right: Collection[str],
                 wrap: Collection[str] = ()) -> Table:
    """A table with a rule under its header only: the `right` columns right-aligned, only the
    `wrap` columns allowed to wrap."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for col in cols:
        table.add_column(col, no_wrap=col not in wrap,
                         justify="right" if col in right else "left")
    return table


def placement_text(job: dict[str, Any]) -> str:
    p = job.get("placement")
    if not p:
        est = job.get("estimate") or {}
        return f"(est. {est.get('count')} {est.get('accelerator')})" if est.get("accelerator") \
            else "-"
    if p.get("parts"):  # a mixed-chip gang: "16 H800 + 16 910B @ center"
        chips = " + ".join(f"{q['count']} {q['accelerator']}" for q in p["parts"])
        return f"{chips} @ {p['center']}"
    return f"{p['count']} {p['accelerator']} @ {p['center']}/{p['pool']}"


def jobs_table(jobs: list[dict[str, Any]], title: str = "jobs", wide: bool = False) -> Table:
    """id, name, state, placement, run time, money; the reason only with `wide` (it is long)."""
    table = Table(title=title)
    cols = ("id", "name", "state", "placement", "run s", "est. cost", "charged", "reason")
    for col in cols if wide else cols[:-1]:
        table.add_column(col, justify="right" if col in ("id", "run s", "est. cost",
                                                          "charged") else "left",
                         no_wrap=col in ("id", "state"))
    for j in jobs:
        c = JOB_STATE_COLORS.get(j["state"], "white")
        cells = [str(j["id"]), j["name"], f"[{c}]{j['state']}[/]", placement_text(j),
                 f"{j['run_s']:.1f}", j["estimate"]["cost"], j["charged"] or "-",
                 (j["reason"] or "")[:50]]
        table.add_row(*(cells if wide else cells[:-1]))
    return table


def events_table(events: list[dict[str, Any]]) -> Table:
    table = Table(title="events")
    for col in ("at", "from", "to", "reason", "placement"):
        table.add_column(col)
    for e in events:
        p = e.get("placement") or {}
        where = f"{p.get('count')} {p.get('accelerator')} @ {p.get('pool_id')}" if p else ""
        table.add_row(clock(e["at"]), e["old"] or "", e["new"], e["reason"] or "", where)
    return table


def tokens_table(title: str, tokens: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for col in ("id", "prefix", "created", "revoked"):
        table.add_column(col)
    for t in tokens:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t["created_at"]))
        table.add_row(str(t["id"]), t["prefix"] + "...", created,
                      "[red]revoked[/]" if t["revoked"] else "")
    return table


def tenants_table(tenants: list[dict[str, Any]]) -> Table:
    table = Table(title="tenants")
    for col in ("id", "name", "admin", "balance", "reserved"):
        table.add_column(col)
    for t in tenants:
        table.add_row(str(t["id"]), t["name"], "yes" if t["is_admin"] else "",
                      t["balance"], t["reserved"])
    return table

"""How rows look on the wire: money as decimal strings, times as Unix seconds."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def money_str(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def job_view(row: dict[str, Any], *, with_spec: bool = False) -> dict[str, Any]:
    placement = None
    if row.get("center"):
        placement = {"center": row["center"], "pool": row["pool"],
                     "accelerator": row["accelerator"], "count": row["count"]}
        if row.get("placement_parts"):  # a mixed-chip gang: count is the whole gang's
            placement["parts"] = json.loads(row["placement_parts"])
    out = {
        "id": row["id"],
        "name": row["name"],
        "tenant_id": row["tenant_id"],
        "state": row["state"],
        "reason": row["reason"],
        "submitted_at": row["submitted_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "placement": placement,
        "estimate": {"cost": money_str(row["estimate_cost"]),
                     "accelerator": row["est_accelerator"], "count": row["est_count"],
                     "run_s": row["est_run_s"]},
        "reserved": money_str(row["reserved"]),
        "charged": money_str(row["charged"]),
        "run_s": row["run_s"],
        "retries": row["retries"],
        "max_retries": row["max_retries"],
        "cancel_requested": bool(row["cancel_requested"]),
        "idempotency_key": row["idempotency_key"],
    }
    if with_spec:
        out["spec"] = json.loads(row["spec"])
    return out


def pool_view(center_id: str, p: dict[str, Any],
              used: dict[str, tuple[int, int]] | None = None) -> dict[str, Any]:
    pid = f"{center_id}/{p['id']}"
    chips = int(p["nodes"]) * int(p["chips_per_node"])
    out = {
        "id": p["id"], "center": center_id, "pool_id": pid, "accelerator": p["accelerator"],
        "nodes": p["nodes"], "chips_per_node": p["chips_per_node"], "chips": chips,
        "price_per_chip_hour": money_str(p["price_per_chip_hour"]),
        "spot_price_per_chip_hour": money_str(p["spot_price_per_chip_hour"]),
        "reserved_chips": p["reserved_chips"],
    }
    if used is not None:
        u = used.get(pid, (0, chips))
        out["chips_used"] = u[0]
        out["utilisation"] = (u[0] / u[1]) if u[1] else 0.0
    return out


def center_view(c: dict[str, Any], used: dict[str, tuple[int, int]] | None = None
                ) -> dict[str, Any]:
    out = {k: v for k, v in c.items() if k != "pools"}
    out["pools"] = [pool_view(c["id"], p, used) for p in c["pools"]]
    return out


def tenant_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "is_admin": bool(row["is_admin"]),
            "balance": money_str(row["balance"]), "reserved": money_str(row["reserved"]),
            "created_at": row["created_at"]}

"""The network in the database: seeded from a YAML network once, then edited by the admin.

Centers and pools (inventory, prices) live in tables; links, datasets and the network's own
fields are kept as the seed document in `meta`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from suanli.network import Network
from suanli.network.load import parse_network
from suanli.store.errors import Conflict, NotFound
from suanli.store.models import CenterRow, Meta, PoolRow
from suanli.store.types import money

C = CenterRow.__table__
P = PoolRow.__table__
M = Meta.__table__
CENTER_FIELDS = ("name", "region", "lat", "lon", "electricity_price_per_kwh", "pue",
                 "carbon_g_per_kwh")
POOL_FIELDS = ("accelerator", "nodes", "chips_per_node", "price_per_chip_hour",
               "spot_price_per_chip_hour", "reserved_chips")


def get_meta(conn: Connection, key: str) -> str | None:
    return conn.execute(select(M.c.value).where(M.c.key == key)).scalar_one_or_none()


def set_meta(conn: Connection, key: str, value: str) -> None:
    if get_meta(conn, key) is None:
        conn.execute(insert(M).values(key=key, value=value))
    else:
        conn.execute(update(M).where(M.c.key == key).values(value=value))


def seed(conn: Connection, net: Network) -> bool:
    """Load a network into an empty database; returns False if one is there already."""
    if get_meta(conn, "network") is not None:
        return False
    doc = net.model_dump(mode="json")
    set_meta(conn, "network", json.dumps({k: v for k, v in doc.items() if k != "centers"}))
    for i, c in enumerate(net.centers):
        add_center(conn, {k: getattr(c, k) for k in CENTER_FIELDS} | {"id": c.id}, position=i)
        for j, p in enumerate(c.pools):
            add_pool(conn, c.id, pool_values(p.model_dump()), position=j)
    return True


def pool_values(p: dict[str, Any]) -> dict[str, Any]:
    out = {k: p[k] for k in ("id", *POOL_FIELDS) if k in p}
    for k in ("price_per_chip_hour", "spot_price_per_chip_hour"):
        if out.get(k) is not None:
            out[k] = money(out[k], 4)
    return out


def add_center(conn: Connection, values: dict[str, Any], position: int | None = None) -> None:
    if conn.execute(select(C.c.id).where(C.c.id == values["id"])).first() is not None:
        raise Conflict(f"center {values['id']!r} exists", field="id", value=values["id"])
    if position is None:
        position = conn.execute(select(func.coalesce(func.max(C.c.position), -1))).scalar_one() + 1
    conn.execute(insert(C).values(**values, position=position))


def update_center(conn: Connection, center_id: str, values: dict[str, Any]) -> None:
    _center_exists(conn, center_id)
    if values:
        conn.execute(update(C).where(C.c.id == center_id).values(**values))


def delete_center(conn: Connection, center_id: str) -> None:
    _center_exists(conn, center_id)
    conn.execute(delete(P).where(P.c.center_id == center_id))
    conn.execute(delete(C).where(C.c.id == center_id))


def add_pool(conn: Connection, center_id: str, values: dict[str, Any],
             position: int | None = None) -> None:
    _center_exists(conn, center_id)
    pid = values["id"]
    if conn.execute(select(P.c.id).where(P.c.center_id == center_id, P.c.id == pid)).first():
        raise Conflict(f"pool {center_id}/{pid} exists", field="id", value=pid)
    if position is None:
        position = conn.execute(
            select(func.coalesce(func.max(P.c.position), -1)).where(P.c.center_id == center_id)
        ).scalar_one() + 1
    values = {"reserved_chips": 0, **values}
    conn.execute(insert(P).values(center_id=center_id, **values, position=position))


def update_pool(conn: Connection, center_id: str, pool_id: str, values: dict[str, Any]) -> None:
    _pool_exists(conn, center_id, pool_id)
    values = pool_values({"id": pool_id, **values})
    values.pop("id")
    if values:
        conn.execute(update(P).where(P.c.center_id == center_id, P.c.id == pool_id)
                     .values(**values))


def delete_pool(conn: Connection, center_id: str, pool_id: str) -> None:
    _pool_exists(conn, center_id, pool_id)
    conn.execute(delete(P).where(P.c.center_id == center_id, P.c.id == pool_id))


def _center_exists(conn: Connection, center_id: str) -> None:
    if conn.execute(select(C.c.id).where(C.c.id == center_id)).first() is None:
        raise NotFound(f"no center {center_id!r}", field="center", value=center_id)


def _pool_exists(conn: Connection, center_id: str, pool_id: str) -> None:
    _center_exists(conn, center_id)
    if conn.execute(select(P.c.id).where(P.c.center_id == center_id, P.c.id == pool_id)).first() \
            is None:
        raise NotFound(f"no pool {center_id}/{pool_id}", field="pool", value=pool_id)


def centers(conn: Connection) -> list[dict[str, Any]]:
    """Centers with their pools, in their original order."""
    pools: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(select(P).order_by(P.c.center_id, P.c.position)).mappings():
        d = dict(r)
        d.pop("position")
        pools.setdefault(d.pop("center_id"), []).append(d)
    out = []
    for r in conn.execute(select(C).order_by(C.c.position)).mappings():
        d = dict(r)
        d.pop("position")
        d["pools"] = pools.get(d["id"], [])
        out.append(d)
    return out


def prices(conn: Connection) -> dict[tuple[str, str], tuple[Decimal, Decimal | None]]:
    """(center, pool) -> (on-demand price, spot price) per chip-hour, exact."""
    rows = conn.execute(select(P.c.center_id, P.c.id, P.c.price_per_chip_hour,
                               P.c.spot_price_per_chip_hour))
    return {(c, p): (price, spot) for c, p, price, spot in rows}


def load(conn: Connection) -> Network:
    """The network as the engine and planner see it, rebuilt from the tables (validated once,
    with canonical accelerator ids, as `parse_network` gives it)."""
    raw = get_meta(conn, "network")
    if raw is None:
        raise NotFound("the database holds no network yet", field="network")
    doc = json.loads(raw)
    cs = centers(conn)
    regions = {c["region"] for c in cs}
    ids = {c["id"] for c in cs}
    for c in cs:
        for p in c["pools"]:
            for k in ("price_per_chip_hour", "spot_price_per_chip_hour"):
                if p[k] is not None:
                    p[k] = float(p[k])
    doc["centers"] = cs
    # A deleted center may leave links or datasets pointing nowhere: drop them, not the network.
    doc["links"] = [lk for lk in doc.get("links", []) if lk["a"] in regions and lk["b"] in regions]
    doc["datasets"] = [d for d in doc.get("datasets", [])
                       if d["location"] in regions or d["location"] in ids]
    return parse_network(doc, "database")

"""A network flattened into NumPy arrays once (pools x attributes), cached per network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suanli.network import Network
from suanli.plan.identity_cache import IdentityCache
from suanli.plan.routing import RouteTable, route_table


@dataclass(frozen=True)
class PreparedNetwork:
    """Per-pool columns of a network, in `network.pools()` order."""

    network: Network
    routes: RouteTable
    center_ids: list[str]
    center_region: np.ndarray  # [centers] region index in routes
    pool_center: np.ndarray  # [P] center index
    pool_ids: list[str]
    pool_keys: list[str]  # "center/pool"
    accelerators: list[str]  # [P] catalog ids
    capacity: np.ndarray  # [P] chips the broker may use (chips less reserved)
    chips_per_node: np.ndarray  # [P]
    price: np.ndarray  # [P] on-demand price per chip-hour
    spot_price: np.ndarray  # [P] nan where the pool offers no spot
    pue: np.ndarray  # [P]
    carbon_g_per_kwh: np.ndarray  # [P]
    center_index: dict[str, int]
    pool_index: dict[str, int]  # "center/pool" -> position

    @property
    def pool_region(self) -> np.ndarray:
        return self.center_region[self.pool_center]


def prepare(network: Network) -> PreparedNetwork:
    """The network's arrays, computed once and cached (keyed by object identity)."""
    return _CACHE.get_or_build(network, _build)


def _build(network: Network) -> PreparedNetwork:
    routes = route_table(network)
    centers = network.centers
    rows = [(ci, c, p) for ci, c in enumerate(centers) for p in c.pools]
    return PreparedNetwork(
        network=network,
        routes=routes,
        center_ids=[c.id for c in centers],
        center_region=np.array([routes.index[c.region] for c in centers], dtype=np.int64),
        pool_center=np.array([ci for ci, _, _ in rows], dtype=np.int64),
        pool_ids=[p.id for _, _, p in rows],
        pool_keys=[f"{c.id}/{p.id}" for _, c, p in rows],
        accelerators=[p.accelerator for _, _, p in rows],
        capacity=np.array([max(0, p.chips - p.reserved_chips) for _, _, p in rows],
                          dtype=np.int64),
        chips_per_node=np.array([p.chips_per_node or 8 for _, _, p in rows], dtype=np.int64),
        price=np.array([p.price_per_chip_hour for _, _, p in rows], dtype=float),
        spot_price=np.array(
            [np.nan if p.spot_price_per_chip_hour is None else p.spot_price_per_chip_hour
             for _, _, p in rows], dtype=float),
        pue=np.array([c.pue for _, c, _ in rows], dtype=float),
        carbon_g_per_kwh=np.array([c.carbon_g_per_kwh for _, c, _ in rows], dtype=float),
        center_index={c.id: i for i, c in enumerate(centers)},
        pool_index={f"{c.id}/{p.id}": i for i, (_, c, p) in enumerate(rows)},
    )


_CACHE: IdentityCache[Network, PreparedNetwork] = IdentityCache()

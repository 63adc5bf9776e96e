"""The chips the engine places jobs on: pools (`center/pool`) with capacity, price and power.

A cluster is a static description; which nodes are up and which chips are taken is the
engine's runtime state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from suanli.catalog import Catalog, builtin_catalog
from suanli.errors import SuanliError
from suanli.network.schema import Network


@dataclass(frozen=True, slots=True)
class PoolInfo:
    """One pool of identical chips. `capacity` counts chips the engine may use."""

    pool_id: str  # "center/pool"
    accelerator: str  # catalog id
    capacity: int
    chips_per_node: int
    price_per_chip_hour: float
    center: str
    region: str
    tdp_w: float = 0.0
    pue: float = 1.0

    @property
    def nodes(self) -> int:
        return -(-self.capacity // self.chips_per_node)

    def node_chips(self, node: int) -> int:
        """Chips on a node (the last node may be partly filled)."""
        full = self.capacity - node * self.chips_per_node
        return max(0, min(self.chips_per_node, full))


class Cluster:
    """An ordered list of pools; the order is the column order of every allocation."""

    def __init__(self, pools: list[PoolInfo], *, network: Network | None = None) -> None:
        if not pools:
            raise SuanliError("a cluster needs at least one pool", field="cluster")
        ids = [p.pool_id for p in pools]
        if len(set(ids)) != len(ids):
            raise SuanliError("duplicate pool ids in cluster", field="cluster", value=ids)
        self.pools = list(pools)
        self.network = network
        self._index = {p.pool_id: i for i, p in enumerate(self.pools)}
        self.derived: dict[object, object] = {}  # caches of values computed from the pools

    def __len__(self) -> int:
        return len(self.pools)

    def __iter__(self):
        return iter(self.pools)

    @property
    def pool_ids(self) -> list[str]:
        return [p.pool_id for p in self.pools]

    @property
    def total_chips(self) -> int:
        return sum(p.capacity for p in self.pools)

    def index(self, pool_id: str) -> int:
        try:
            return self._index[pool_id]
        except KeyError:
            raise SuanliError(
                f"unknown pool {pool_id!r}; known: {', '.join(self._index)}",
                field="pool", value=pool_id,
            ) from None

    def pool(self, pool_id: str) -> PoolInfo:
        return self.pools[self.index(pool_id)]

    def pools_in_center(self, center: str) -> list[int]:
        found = [i for i, p in enumerate(self.pools) if p.center == center]
        if not found:
            known = sorted({p.center for p in self.pools})
            raise SuanliError(
                f"unknown center {center!r}; known: {', '.join(known)}",
                field="center", value=center,
            )
        return found

    @classmethod
    def from_network(cls, network: Network, catalog: Catalog | None = None) -> Cluster:
        """One pool per center pool; reserved chips are not offered to the engine."""
        catalog = catalog or builtin_catalog()
        pools = []
        for center, pool in network.pools():
            acc = catalog.find(pool.accelerator)
            capacity = max(0, pool.chips - pool.reserved_chips)
            pools.append(
                PoolInfo(
                    pool_id=f"{center.id}/{pool.id}",
                    accelerator=acc.id if acc else pool.accelerator,
                    capacity=capacity,
                    chips_per_node=pool.chips_per_node or (acc.chips_per_node if acc else 8),
                    price_per_chip_hour=pool.price_per_chip_hour,
                    center=center.id,
                    region=center.region,
                    tdp_w=acc.tdp_w if acc else 0.0,
                    pue=center.pue,
                )
            )
        return cls(pools, network=network)

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        *,
        prices: Mapping[str, float] | None = None,
        chips_per_node: int = 1,
        catalog: Catalog | None = None,
    ) -> Cluster:
        """A Gavel-style cluster: one pool per chip type, e.g. {"V100": 36, "P100": 36}.

        Pool ids are `local/<accelerator id>`; chips are single-chip nodes by default, as in
        Gavel's simulator (one GPU per server). Prices default to 0 (no cost is reported).
        """
        catalog = catalog or builtin_catalog()
        pools = []
        for name, count in counts.items():
            acc = catalog.get(name, field="cluster")
            if count < 0:
                raise SuanliError(f"chip count for {name} must be >= 0, got {count}",
                                  field="cluster", value=count)
            price = 0.0
            if prices:
                price = float(prices.get(name, prices.get(acc.id, 0.0)))
            pools.append(
                PoolInfo(
                    pool_id=f"local/{acc.id}",
                    accelerator=acc.id,
                    capacity=int(count),
                    chips_per_node=max(1, chips_per_node),
                    price_per_chip_hour=price,
                    center="local",
                    region="local",
                    tdp_w=acc.tdp_w,
                    pue=1.0,
                )
            )
        return cls(pools)

    @classmethod
    def parse_counts(cls, text: str, catalog: Catalog | None = None) -> Cluster:
        """`v100:36,p100:36,k80:36` (optionally `v100:36@2.5` with a price per chip-hour)."""
        counts: dict[str, int] = {}
        prices: dict[str, float] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, sep, rest = part.partition(":")
            if not sep:
                raise SuanliError(
                    f"cluster: expected NAME:COUNT, got {part!r}", field="cluster", value=text
                )
            count_text, _, price_text = rest.partition("@")
            try:
                counts[name.strip()] = int(count_text)
                if price_text:
                    prices[name.strip()] = float(price_text)
            except ValueError:
                raise SuanliError(
                    f"cluster: bad count or price in {part!r}", field="cluster", value=text
                ) from None
        return cls.from_counts(counts, prices=prices or None, catalog=catalog)

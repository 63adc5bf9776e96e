"""Network schema, validated with pydantic; cross-references checked after parsing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Pool(BaseModel):
    """Identical chips in one center, rented at one price."""

    model_config = _STRICT
    id: str = Field(min_length=1)
    accelerator: str
    nodes: int = Field(ge=1)
    chips_per_node: int | None = Field(default=None, ge=1, description="default: the chip's")
    price_per_chip_hour: float = Field(ge=0)
    spot_price_per_chip_hour: float | None = Field(default=None, ge=0)
    reserved_chips: int = Field(default=0, ge=0)

    @property
    def chips(self) -> int:
        """Total chips; chips_per_node is filled from the catalog when the network loads."""
        return self.nodes * (self.chips_per_node or 8)

    def price(self, spot: bool) -> float:
        """Price per chip-hour, the spot price where spot is allowed and offered."""
        if spot and self.spot_price_per_chip_hour is not None:
            return self.spot_price_per_chip_hour
        return self.price_per_chip_hour


class Center(BaseModel):
    model_config = _STRICT
    id: str = Field(min_length=1)
    name: str
    region: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    electricity_price_per_kwh: float = Field(ge=0)
    pue: float = Field(default=1.3, ge=1.0)
    carbon_g_per_kwh: float = Field(default=550.0, ge=0)
    pools: tuple[Pool, ...] = ()


class Link(BaseModel):
    """A WAN link between two regions (undirected)."""

    model_config = _STRICT
    a: str
    b: str
    bandwidth_gbps: float = Field(gt=0)
    latency_ms: float = Field(default=10.0, ge=0)
    price_per_gb: float = Field(default=0.0, ge=0)


class Dataset(BaseModel):
    model_config = _STRICT
    name: str
    location: str = Field(description="region or center id")
    size_gb: float = Field(ge=0)
    path: str | None = Field(default=None, description="a directory holding it: the local "
                             "backend copies it into the center a job is placed at")


class Network(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    illustrative: bool = False
    currency: str = "CNY"
    intra_region_gbps: float = Field(default=100.0, gt=0, description="between centers in a region")
    centers: tuple[Center, ...]
    links: tuple[Link, ...] = ()
    datasets: tuple[Dataset, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> Network:
        seen: set[str] = set()
        for i, c in enumerate(self.centers):
            if c.id in seen:
                raise ValueError(f"centers.{i}.id: duplicate center id {c.id!r}")
            seen.add(c.id)
            pool_ids: set[str] = set()
            for j, p in enumerate(c.pools):
                if p.id in pool_ids:
                    raise ValueError(f"centers.{i}.pools.{j}.id: duplicate pool id {p.id!r}")
                pool_ids.add(p.id)
        regions = self.regions
        for i, link in enumerate(self.links):
            for end in ("a", "b"):
                if getattr(link, end) not in regions:
                    raise ValueError(
                        f"links.{i}.{end}: unknown region {getattr(link, end)!r}; "
                        f"known: {', '.join(sorted(regions))}"
                    )
        for i, d in enumerate(self.datasets):
            if d.location not in regions and d.location not in seen:
                raise ValueError(f"datasets.{i}.location: unknown region or center {d.location!r}")
        return self

    @property
    def regions(self) -> set[str]:
        return {c.region for c in self.centers}

    def center(self, center_id: str) -> Center:
        for c in self.centers:
            if c.id == center_id:
                return c
        raise KeyError(center_id)

    def region_of(self, location: str) -> str:
        """A dataset location may be a region or a center id; return its region."""
        for c in self.centers:
            if c.id == location:
                return c.region
        return location

    def dataset(self, name: str) -> Dataset | None:
        return next((d for d in self.datasets if d.name == name), None)

    def pools(self) -> list[tuple[Center, Pool]]:
        return [(c, p) for c in self.centers for p in c.pools]

"""Synthetic networks of any size, for benchmarks and property tests (deterministic per seed).

Figures are drawn around the illustrative east-west network's: chip prices per chip-hour by
accelerator, western-style cheap power to eastern-style dear power, WAN links from 20 to
400 Gbps. Nothing here is operator data.
"""

from __future__ import annotations

import math

import numpy as np

from suanli.catalog import Catalog, builtin_catalog
from suanli.network.load import parse_network
from suanli.network.schema import Network

# Accelerator -> typical on-demand price per chip-hour (CNY), as in the east-west network.
BASE_PRICES: dict[str, float] = {
    "H800": 19.0, "H100": 24.0, "A800": 9.5, "A100": 10.5, "H20": 6.5, "L20": 3.3,
    "910B": 7.5, "910C": 14.0, "RTX4090": 2.6, "MI300X": 18.0,
}
_BANDWIDTHS_GBPS = (20.0, 40.0, 100.0, 200.0, 400.0)


def generate_network(n_centers: int, n_pools: int, seed: int = 0, *,
                     n_regions: int | None = None, catalog: Catalog | None = None) -> Network:
    """A connected random network: `n_centers` centers holding `n_pools` pools in all.

    Regions default to about sqrt(n_centers); they are joined in a ring plus as many random
    chords, so every region reaches every other. Each center holds at least one pool and at
    most one pool per accelerator type while types last.
    """
    if n_centers < 1:
        raise ValueError("n_centers must be at least 1")
    if n_pools < n_centers:
        raise ValueError(f"n_pools ({n_pools}) must be at least n_centers ({n_centers})")
    rng = np.random.default_rng(seed)
    r = n_regions or max(2, round(math.sqrt(n_centers)))
    regions = [f"region-{i:03d}" for i in range(r)]
    accs = list(BASE_PRICES)

    per_center = np.ones(n_centers, dtype=np.int64)
    extra = rng.integers(0, n_centers, size=n_pools - n_centers)
    np.add.at(per_center, extra, 1)

    centers = []
    for ci in range(n_centers):
        k = int(per_center[ci])
        chosen = [accs[j] for j in rng.permutation(len(accs))[: min(k, len(accs))]]
        chosen += [accs[int(j)] for j in rng.integers(0, len(accs), size=k - len(chosen))]
        west = bool(rng.random() < 0.5)
        pools = []
        for pi, acc in enumerate(chosen):
            price = BASE_PRICES[acc] * float(rng.uniform(0.8, 1.25))
            pool = {
                "id": f"p{pi}-{acc.lower()}",
                "accelerator": acc,
                "nodes": int(rng.choice([1, 2, 4, 8, 16, 32, 64])),
                "chips_per_node": 8,
                "price_per_chip_hour": round(price, 2),
            }
            if rng.random() < 0.4:
                pool["spot_price_per_chip_hour"] = round(price * 0.6, 2)
            pools.append(pool)
        centers.append({
            "id": f"c{ci:05d}",
            "name": f"Center {ci}",
            "region": regions[int(rng.integers(0, r))] if ci >= r else regions[ci % r],
            "lat": round(float(rng.uniform(20, 45)), 2),
            "lon": round(float(rng.uniform(90, 122)), 2),
            "electricity_price_per_kwh": round(float(rng.uniform(0.28, 0.45) if west
                                                     else rng.uniform(0.55, 0.8)), 3),
            "pue": round(float(rng.uniform(1.1, 1.4)), 2),
            "carbon_g_per_kwh": round(float(rng.uniform(250, 750)), 0),
            "pools": pools,
        })

    links = []
    pairs = {(i, (i + 1) % r) for i in range(r)} if r > 1 else set()
    for _ in range(r):
        a, b = (int(x) for x in rng.integers(0, r, size=2))
        if a != b:
            pairs.add((a, b))
    for a, b in sorted(pairs):
        if a == b:
            continue
        links.append({
            "a": regions[a], "b": regions[b],
            "bandwidth_gbps": float(rng.choice(_BANDWIDTHS_GBPS)),
            "latency_ms": round(float(rng.uniform(5, 40)), 1),
            "price_per_gb": round(float(rng.uniform(0.02, 0.15)), 3),
        })
    datasets = [
        {"name": f"dataset-{i}", "location": regions[int(rng.integers(0, r))],
         "size_gb": float(rng.choice([0.5, 50, 500, 5000, 50000]))}
        for i in range(5)
    ]
    raw = {
        "name": f"generated-{n_centers}c-{n_pools}p-s{seed}",
        "description": "Synthetic network from suanli.network.generate (not operator data).",
        "illustrative": True,
        "intra_region_gbps": 100.0,
        "centers": centers,
        "links": links,
        "datasets": datasets,
    }
    return parse_network(raw, raw["name"], catalog or builtin_catalog())

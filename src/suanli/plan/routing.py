"""Moving a dataset between regions over the network's WAN links.

Two routes per region pair are precomputed once per network (all pairs, Floyd-Warshall in
NumPy) and cached:

- *fastest*: minimal transfer time size/bottleneck + latency sum. The best path depends on the
  size, so for every distinct link bandwidth b we keep the lowest-latency path using only links
  of at least b; a transfer of S GB takes min over b of (8 S / bottleneck_b + latency_b), which
  is exact. Ties go to the cheaper path.
- *cheapest*: minimal price per GB summed along the route (ties: lower latency).

Transfer prices are per GB moved; links are undirected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suanli.network import Network
from suanli.plan.identity_cache import IdentityCache


@dataclass(frozen=True)
class _PathSet:
    """All-pairs paths of one kind: latency (s), price per GB, bottleneck Gbps, next hop."""

    latency_s: np.ndarray  # [R, R]
    price_per_gb: np.ndarray  # [R, R]
    bottleneck_gbps: np.ndarray  # [R, R]; inf on the diagonal
    next_hop: np.ndarray  # [R, R] int; -1 where unreachable


@dataclass(frozen=True)
class Transfer:
    """Moving one dataset to every region: time (s) and egress price (per GB) of both routes."""

    fast_s: np.ndarray  # [R]
    fast_price_per_gb: np.ndarray
    cheap_s: np.ndarray
    cheap_price_per_gb: np.ndarray
    fast_choice: np.ndarray  # [R] index of the bandwidth threshold used by the fast route


class RouteTable:
    """All-pairs routes between a network's regions."""

    def __init__(self, network: Network) -> None:
        self.regions: list[str] = sorted(network.regions)
        self.index: dict[str, int] = {r: i for i, r in enumerate(self.regions)}
        r = len(self.regions)
        links = [
            (self.index[link.a], self.index[link.b], link.bandwidth_gbps,
             link.latency_ms / 1000.0, link.price_per_gb)
            for link in network.links
        ]
        self.thresholds_gbps = np.array(sorted({lk[2] for lk in links}, reverse=True))
        self.by_threshold: list[_PathSet] = [
            _all_pairs(r, [lk for lk in links if lk[2] >= b], by="latency")
            for b in self.thresholds_gbps
        ]
        self.cheapest = _all_pairs(r, links, by="price")

    def transfer(self, src_region: str, size_gb: float) -> Transfer:
        """Time and price per GB of moving `size_gb` from `src_region` to every region."""
        i = self.index[src_region]
        bits = 8.0 * size_gb
        r = len(self.regions)
        if self.by_threshold:
            lat = np.stack([p.latency_s[i] for p in self.by_threshold])  # [K, R]
            bott = np.stack([p.bottleneck_gbps[i] for p in self.by_threshold])
            price = np.stack([p.price_per_gb[i] for p in self.by_threshold])
            with np.errstate(divide="ignore", invalid="ignore"):
                times = np.where(np.isfinite(lat), lat + bits / bott, np.inf)
            choice = np.argmin(times, axis=0)
            cols = np.arange(r)
            fast_s, fast_price = times[choice, cols], price[choice, cols]
        else:
            fast_s = np.full(r, np.inf)
            fast_price = np.full(r, np.inf)
            choice = np.zeros(r, dtype=int)
        c = self.cheapest
        with np.errstate(divide="ignore", invalid="ignore"):
            cheap_s = np.where(np.isfinite(c.latency_s[i]),
                               c.latency_s[i] + bits / c.bottleneck_gbps[i], np.inf)
        fast_s, cheap_s = fast_s.copy(), cheap_s.copy()
        fast_s[i] = cheap_s[i] = 0.0
        fast_price, cheap_price = fast_price.copy(), c.price_per_gb[i].copy()
        fast_price[i] = cheap_price[i] = 0.0
        return Transfer(fast_s, fast_price, cheap_s, cheap_price, choice)

    def path(self, src: str, dst: str, route: str, size_gb: float) -> list[str]:
        """The regions a route passes through, `src` first; [] if unreachable."""
        i, j = self.index[src], self.index[dst]
        if i == j:
            return [src]
        if route == "fast":
            if not self.by_threshold:
                return []
            k = int(self.transfer(src, size_gb).fast_choice[j])
            paths = self.by_threshold[k]
        else:
            paths = self.cheapest
        if paths.next_hop[i, j] < 0:
            return []
        hops = [i]
        while hops[-1] != j and len(hops) <= len(self.regions):
            hops.append(int(paths.next_hop[hops[-1], j]))
        return [self.regions[h] for h in hops]


def _all_pairs(r: int, links: list[tuple[int, int, float, float, float]], by: str) -> _PathSet:
    """Floyd-Warshall minimising (latency, price) or (price, latency) lexicographically."""
    lat = np.full((r, r), np.inf)
    price = np.full((r, r), np.inf)
    bott = np.zeros((r, r))
    nxt = np.full((r, r), -1, dtype=np.int64)
    np.fill_diagonal(lat, 0.0)
    np.fill_diagonal(price, 0.0)
    np.fill_diagonal(bott, np.inf)
    np.fill_diagonal(nxt, np.arange(r))
    primary, secondary = (lat, price) if by == "latency" else (price, lat)
    for a, b, gbps, latency_s, per_gb in links:
        cand = (latency_s, per_gb) if by == "latency" else (per_gb, latency_s)
        for x, y in ((a, b), (b, a)):
            if (cand[0], cand[1], -gbps) < (primary[x, y], secondary[x, y], -bott[x, y]):
                lat[x, y], price[x, y], bott[x, y], nxt[x, y] = latency_s, per_gb, gbps, y
    for k in range(r):
        p_new = primary[:, k, None] + primary[None, k, :]
        s_new = secondary[:, k, None] + secondary[None, k, :]
        b_new = np.minimum(bott[:, k, None], bott[None, k, :])
        better = (p_new < primary) | (
            (p_new == primary) & ((s_new < secondary) | ((s_new == secondary) & (b_new > bott)))
        )
        better &= np.isfinite(p_new)
        if not better.any():
            continue
        primary[better] = p_new[better]
        secondary[better] = s_new[better]
        bott[better] = b_new[better]
        nxt[better] = np.broadcast_to(nxt[:, k, None], (r, r))[better]
    if by == "latency":
        return _PathSet(primary, secondary, bott, nxt)
    return _PathSet(secondary, primary, bott, nxt)


def route_table(network: Network) -> RouteTable:
    """The network's route table, computed once and cached (keyed by object identity)."""
    return _CACHE.get_or_build(network, RouteTable)


_CACHE: IdentityCache[Network, RouteTable] = IdentityCache()

"""Routing datasets over WAN links: widest/fastest and cheapest paths, computed once per network."""

from __future__ import annotations

import numpy as np
import pytest

from suanli.network.load import parse_network
from suanli.plan import route_table


def _net(links):
    regions = sorted({r for link in links for r in (link["a"], link["b"])} | {"iso"})
    centers = [{"id": f"c-{r}", "name": r, "region": r, "lat": 0, "lon": 0,
                "electricity_price_per_kwh": 0.5,
                "pools": [{"id": "p", "accelerator": "H800", "nodes": 1,
                           "price_per_chip_hour": 10}]} for r in regions]
    return parse_network({"name": "routes", "centers": centers, "links": links}, "test")


LINKS = [
    # a thin direct link, and a fat two-hop path through m
    {"a": "src", "b": "dst", "bandwidth_gbps": 1, "latency_ms": 5, "price_per_gb": 0.5},
    {"a": "src", "b": "m", "bandwidth_gbps": 100, "latency_ms": 20, "price_per_gb": 0.01},
    {"a": "m", "b": "dst", "bandwidth_gbps": 400, "latency_ms": 20, "price_per_gb": 0.02},
]


def test_large_dataset_takes_the_wide_path_and_its_time_is_size_over_bottleneck_plus_latency():
    table = route_table(_net(LINKS))
    tr = table.transfer("src", 1000.0)
    j = table.index["dst"]
    assert tr.fast_s[j] == pytest.approx(8 * 1000 / 100 + 0.040)
    assert table.path("src", "dst", "fast", 1000.0) == ["src", "m", "dst"]


def test_tiny_dataset_takes_the_low_latency_path():
    table = route_table(_net(LINKS))
    tr = table.transfer("src", 0.0001)
    j = table.index["dst"]
    assert tr.fast_s[j] == pytest.approx(0.005 + 8 * 0.0001 / 1)
    assert table.path("src", "dst", "fast", 0.0001) == ["src", "dst"]


def test_cheapest_route_sums_price_per_gb_along_the_path():
    table = route_table(_net(LINKS))
    tr = table.transfer("src", 10.0)
    j = table.index["dst"]
    assert tr.cheap_price_per_gb[j] == pytest.approx(0.03)
    assert table.path("src", "dst", "cheap", 10.0) == ["src", "m", "dst"]


def test_unreachable_region_has_infinite_transfer_time_and_no_path():
    table = route_table(_net(LINKS))
    tr = table.transfer("src", 1.0)
    j = table.index["iso"]
    assert np.isinf(tr.fast_s[j]) and np.isinf(tr.cheap_s[j])
    assert table.path("src", "iso", "fast", 1.0) == []


def test_same_region_is_free_and_instant():
    table = route_table(_net(LINKS))
    tr = table.transfer("m", 5000.0)
    i = table.index["m"]
    assert tr.fast_s[i] == 0 and tr.cheap_s[i] == 0 and tr.cheap_price_per_gb[i] == 0


def test_route_table_is_computed_once_per_network():
    net = _net(LINKS)
    assert route_table(net) is route_table(net)

"""Broker invariants: the Pareto front is exact; a cheaper price never raises a plan's cost."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.jobs.spec import parse_job
from suanli.network.load import parse_network
from suanli.plan import pareto_mask, plan


def _dominates(a, b) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])


points = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=0, max_size=40)


@given(points)
def test_pareto_front_is_exactly_the_undominated_points(pts):
    f = np.array([p[0] for p in pts], dtype=float)
    c = np.array([p[1] for p in pts], dtype=float)
    mask = pareto_mask(f, c)
    for i, p in enumerate(pts):
        dominated = any(_dominates(q, p) for q in pts)
        assert mask[i] == (not dominated)


def _network(prices: list[float], spot: list[float | None]):
    accs = ["H800", "910B", "A800", "H20"]
    centers = []
    for ci, region in enumerate(["r0", "r1", "r2"]):
        pools = []
        for pi, acc in enumerate(accs[ci: ci + 2]):
            k = 2 * ci + pi
            pool = {"id": f"p{pi}", "accelerator": acc, "nodes": 2,
                    "price_per_chip_hour": prices[k]}
            if spot[k] is not None:
                pool["spot_price_per_chip_hour"] = spot[k]
            pools.append(pool)
        centers.append({"id": f"c{ci}", "name": f"c{ci}", "region": region, "lat": 0, "lon": 0,
                        "electricity_price_per_kwh": 0.4, "pools": pools})
    links = [{"a": "r0", "b": "r1", "bandwidth_gbps": 10, "price_per_gb": 0.1},
             {"a": "r1", "b": "r2", "bandwidth_gbps": 100, "price_per_gb": 0.02}]
    return parse_network({"name": "prop", "centers": centers, "links": links,
                          "datasets": [{"name": "d", "location": "r0", "size_gb": 2000}]}, "p")


JOB = parse_job({"name": "p", "kind": "train", "model": "llama-3-8b", "work": {"tokens": 1e9},
                 "resources": {"count": {"min": 4, "max": 16}, "spot": True},
                 "dataset": {"name": "d"}})
PRICES = st.lists(st.floats(1.0, 30.0), min_size=6, max_size=6)


@settings(max_examples=25, deadline=None)
@given(PRICES, st.integers(0, 5), st.floats(0.05, 1.0), st.sampled_from([None, 6.0, 12.0]))
def test_a_cheaper_price_never_makes_a_plan_dearer(prices, k, factor, deadline_h):
    spot = [None, 5.0, None, None, 3.0, None]
    before = plan(JOB, _network(prices, spot), deadline_s=deadline_h and deadline_h * 3600)
    cheaper = list(prices)
    cheaper[k] *= factor
    after = plan(JOB, _network(cheaper, [s if s is None else s * factor if i == k else s
                                         for i, s in enumerate(spot)]),
                 deadline_s=deadline_h and deadline_h * 3600)
    if before.feasible:
        assert after.feasible
        assert after.chosen.cost <= before.chosen.cost * (1 + 1e-9)


@settings(max_examples=10, deadline=None)
@given(PRICES)
def test_every_listed_option_is_on_the_front_iff_nothing_dominates_it(prices):
    result = plan(JOB, _network(prices, [None] * 6), objective="time")
    opts = [(o.finish_s, o.cost) for o in result.options]
    for o, p in zip(result.options, opts, strict=True):
        assert o.pareto == (not any(_dominates(q, p) for q in opts))
    assert {id(o) for o in result.pareto} <= {id(o) for o in result.options}
    assert len(result.pareto) == sum(o.pareto for o in result.options)
    for a, b in itertools.combinations(result.pareto, 2):
        assert not _dominates((a.finish_s, a.cost), (b.finish_s, b.cost))

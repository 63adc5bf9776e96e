"""The planner's stages one by one, over its typed tables (see the stage list in planner.py)."""

from __future__ import annotations

import numpy as np
import pytest

from suanli import perf
from suanli.catalog import builtin_catalog
from suanli.jobs.spec import parse_job
from suanli.network.load import parse_network
from suanli.plan import NetworkState, PoolState, resolve_objective
from suanli.plan.planner import (
    Limits,
    _apply_limits,
    _choose_routes,
    _compute_cost,
    _dataset_move,
    _Describer,
    _eligible_pools,
    _NoPlacement,
    _performance_grid,
    _rank,
    _single_pool_options,
    _split_options,
    _transfers,
)
from suanli.plan.prepared import prepare
from suanli.plan.table import EligiblePools, OptionRows, Transfers


def center(cid, region, *pools):
    return {"id": cid, "name": cid, "region": region, "lat": 30, "lon": 110,
            "electricity_price_per_kwh": 0.5, "pue": 1.2, "carbon_g_per_kwh": 500,
            "pools": list(pools)}


def pool(pid, acc, nodes=1, price=10.0, spot=None):
    p = {"id": pid, "accelerator": acc, "nodes": nodes, "price_per_chip_hour": price}
    if spot is not None:
        p["spot_price_per_chip_hour"] = spot
    return p


NET = parse_network({
    "name": "stages",
    "centers": [
        center("west-dc", "west", pool("h800", "H800", price=10.0, spot=4.0),
               pool("910b", "910B", price=6.0)),
        center("east-dc", "east", pool("h800", "H800", nodes=2, price=14.0)),
    ],
    "links": [{"a": "west", "b": "east", "bandwidth_gbps": 10, "price_per_gb": 0.5}],
    "datasets": [{"name": "corpus", "location": "east", "size_gb": 1000}],
    "intra_region_gbps": 100.0,
}, "stages")


def job(**over):
    data = {"name": "j", "kind": "train", "model": "llama-3-8b", "work": {"tokens": 2e9},
            "resources": {"count": 8}}
    data.update(over)
    return parse_job(data)


def rows(**cols) -> OptionRows:
    """Single-pool rows with the given columns, defaults elsewhere."""
    n = len(cols["pool"])
    i = np.zeros(n, dtype=np.int64)
    base = dict(pool_b=np.full(n, -1), count=np.full(n, 8), count_a=np.full(n, 8), count_b=i,
                layers_a=i, layers_b=i, run_s=np.full(n, 3600.0), wait_s=np.zeros(n),
                power_w=np.full(n, 1000.0), mfu=np.full(n, 0.4), bound=i,
                price_per_chip_hour=np.full(n, 10.0), spot=np.zeros(n, dtype=bool),
                compute_cost=np.full(n, 80.0), rank=i)
    base.update({k: np.asarray(v) for k, v in cols.items()})
    return OptionRows(**base)


def test_eligible_pools_keep_allowed_chips_in_allowed_regions_and_skip_blocked_ones():
    net = prepare(NET)
    pools = _eligible_pools(job(resources={"count": 8, "accelerators": ["H800"]}), net,
                            {"H800": 0}, blocked=["east-dc"])
    assert [net.pool_keys[i] for i in pools.index] == ["west-dc/h800"]
    assert pools.accelerators == ["H800"] and pools.acc_code.tolist() == [0]


def test_eligible_pools_pay_the_spot_price_only_where_asked_for_and_offered():
    net = prepare(NET)
    pools = _eligible_pools(job(resources={"count": 8, "spot": True}), net, {}, ())
    keys = [net.pool_keys[i] for i in pools.index]
    price = dict(zip(keys, pools.price_per_chip_hour.tolist(), strict=True))
    assert price == {"west-dc/h800": 4.0, "west-dc/910b": 6.0, "east-dc/h800": 14.0}
    assert dict(zip(keys, pools.spot.tolist(), strict=True))["west-dc/h800"] is True


def test_eligible_pools_say_every_pool_is_blocked_when_failover_leaves_none():
    with pytest.raises(_NoPlacement) as info:
        _eligible_pools(job(), prepare(NET), {}, ["west-dc", "east-dc"])
    assert info.value.reasons[0].startswith("blocked: every eligible pool is blocked")


def test_transfers_are_free_and_instant_where_the_data_is_and_priced_elsewhere():
    net = prepare(NET)
    j = job(dataset={"name": "corpus"})
    pools = _eligible_pools(j, net, {}, ())
    tr = _transfers(net, pools.index, _dataset_move(j, NET))
    at_east = np.array([net.pool_keys[i].startswith("east") for i in pools.index])
    assert (tr.fast_s[at_east] == 0).all() and (tr.cheap_cost[at_east] == 0).all()
    assert tr.fast_s[~at_east] == pytest.approx(8 * 1000 / 10, rel=1e-3)
    assert tr.fast_cost[~at_east] == pytest.approx(1000 * 0.5)


def test_single_pool_options_leave_out_a_pool_busy_with_no_end_in_sight():
    net = prepare(NET)
    j = job()
    pools = _eligible_pools(j, net, {}, ())
    grid = _performance_grid(j, net, pools, builtin_catalog(), perf)
    state = NetworkState({"west-dc/h800": PoolState(free_chips=0)})
    zero = np.zeros(len(pools))
    options, checks = _single_pool_options(j, net, state, pools, grid,
                                           Transfers(zero, zero, zero, zero))
    keys = {net.pool_keys[pools.index[p]] for p in options.pool.tolist()}
    assert "west-dc/h800" not in keys and keys == {"west-dc/910b", "east-dc/h800"}
    assert checks.shape and checks.fits and checks.reach and checks.free
    assert options.count.dtype == np.int64 and (options.pool_b == -1).all()


def test_compute_cost_is_chips_times_hours_times_price_summed_over_a_splits_two_pools():
    pools = EligiblePools(
        index=np.array([0, 1]), capacity=np.array([8, 8]), chips_per_node=np.array([8, 8]),
        accelerators=["H800", "910B"], acc_code=np.array([0, 1]),
        price_per_chip_hour=np.array([10.0, 6.0]), spot=np.zeros(2, dtype=bool),
        rank=np.zeros(2, dtype=np.int64))
    single = _compute_cost(pools, np.array([0]), np.array([8]), np.array([1800.0]))
    split = _compute_cost(pools, np.array([0]), np.array([8]), np.array([1800.0]),
                          np.array([1]), np.array([4]))
    assert single.tolist() == [8 * 0.5 * 10.0]
    assert split.tolist() == [(8 * 10.0 + 4 * 6.0) * 0.5]


def test_the_cost_objective_takes_the_cheap_route_and_the_time_objective_the_fast_one():
    options = rows(pool=[0], wait_s=[100.0])
    tr = Transfers(fast_s=np.array([50.0]), fast_cost=np.array([30.0]),
                   cheap_s=np.array([500.0]), cheap_cost=np.array([5.0]))
    none = Limits(None, None)
    by_cost, _ = _choose_routes(options, tr, resolve_objective("cost", None), none)
    by_time, _ = _choose_routes(options, tr, resolve_objective("time", None), none)
    assert by_cost.cheap_route.tolist() == [True]
    assert by_cost.finish_s.tolist() == [500.0 + 3600.0] and by_cost.cost.tolist() == [85.0]
    assert by_time.cheap_route.tolist() == [False]
    assert by_time.finish_s.tolist() == [100.0 + 3600.0] and by_time.cost.tolist() == [110.0]


def test_a_route_that_meets_the_deadline_beats_a_cheaper_one_that_misses_it():
    options = rows(pool=[0])
    tr = Transfers(fast_s=np.array([50.0]), fast_cost=np.array([30.0]),
                   cheap_s=np.array([5000.0]), cheap_cost=np.array([5.0]))
    table, trial = _choose_routes(options, tr, resolve_objective("cost", None),
                                  Limits(deadline_s=4000.0, budget=None))
    assert table.cheap_route.tolist() == [False] and trial.ok.tolist() == [True]


def test_apply_limits_drops_options_over_budget_and_says_by_how_much_when_none_is_left():
    net = prepare(NET)
    pools = _eligible_pools(job(), net, {}, ())
    options = rows(pool=[0, 1], compute_cost=[80.0, 200.0])
    zero = np.zeros(2)
    tr = Transfers(zero, zero, zero, zero)
    cost = resolve_objective("cost", None)
    table, trial = _choose_routes(options, tr, cost, Limits(None, 100.0))
    describe = _Describer(job(), net, pools, table, "CNY")
    kept = _apply_limits(table, trial, Limits(None, 100.0), describe)
    assert kept.cost.tolist() == [80.0]
    table, trial = _choose_routes(options, tr, cost, Limits(None, 50.0))
    with pytest.raises(_NoPlacement) as info:
        _apply_limits(table, trial, Limits(None, 50.0), describe)
    assert info.value.reasons[0].startswith("budget: 50")


def test_rank_puts_the_preferred_chip_first_then_the_objective_and_marks_the_front():
    options = rows(pool=[0, 1, 2], compute_cost=[50.0, 80.0, 60.0], rank=[1, 0, 0],
                   run_s=[3600.0, 1800.0, 7200.0])
    zero = np.zeros(3)
    table, _ = _choose_routes(options, Transfers(zero, zero, zero, zero),
                              resolve_objective("cost", None), Limits(None, None))
    ranking = _rank(table, resolve_objective("cost", None))
    assert ranking.order.tolist() == [2, 1, 0]
    assert ranking.front.tolist() == [True, True, False]


def test_option_tables_take_and_concat_every_column_together():
    a = rows(pool=[0, 1], compute_cost=[1.0, 2.0])
    b = rows(pool=[2], compute_cost=[3.0])
    both = a.concat(b)
    assert len(both) == 3 and both.pool.tolist() == [0, 1, 2]
    picked = both.take(np.array([2, 0]))
    assert picked.pool.tolist() == [2, 0] and picked.compute_cost.tolist() == [3.0, 1.0]


def test_split_options_cover_a_job_no_single_pool_of_the_center_can_hold():
    net_raw = parse_network({
        "name": "pair",
        "centers": [center("dc", "west", pool("h800", "H800", nodes=2),
                           pool("a800", "A800", nodes=2, price=6.0))],
        "links": [], "datasets": [], "intra_region_gbps": 100.0,
    }, "pair")
    net = prepare(net_raw)
    j = job(model="llama-3-70b", work={"tokens": 1e9}, resources={"count": {"min": 24,
                                                                          "max": 32}})
    pools = _eligible_pools(j, net, {}, ())
    grid = _performance_grid(j, net, pools, builtin_catalog(), perf)
    zero = np.zeros(len(pools))
    tr = Transfers(zero, zero, zero, zero)
    singles, _ = _single_pool_options(j, net, NetworkState(), pools, grid, tr)
    splits = _split_options(j, net, NetworkState(), pools, grid, tr, singles)
    assert len(singles) == 0 and splits is not None and len(splits) > 0
    assert (splits.pool_b >= 0).all() and (splits.pool != splits.pool_b).all()
    assert (splits.count == splits.count_a + splits.count_b).all()
    assert (splits.count >= 24).all() and (splits.count <= 32).all()

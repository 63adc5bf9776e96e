"""The broker's answers: data gravity, deadlines, failover, preferences, residency, spot, load."""

from __future__ import annotations

import pytest

from suanli.jobs.spec import parse_job
from suanli.network.load import parse_network
from suanli.plan import NetworkState, PoolState, RunningJob, format_duration, plan


def pool(pid, acc, nodes=1, price=10.0, spot=None):
    p = {"id": pid, "accelerator": acc, "nodes": nodes, "price_per_chip_hour": price}
    if spot is not None:
        p["spot_price_per_chip_hour"] = spot
    return p


def center(cid, region, *pools, pue=1.2, carbon=500):
    return {"id": cid, "name": cid, "region": region, "lat": 30, "lon": 110,
            "electricity_price_per_kwh": 0.5, "pue": pue, "carbon_g_per_kwh": carbon,
            "pools": list(pools)}


def network(centers, links=(), datasets=(), intra_gbps=100.0):
    return parse_network({"name": "test", "centers": list(centers), "links": list(links),
                          "datasets": list(datasets), "intra_region_gbps": intra_gbps}, "test")


def job(**over):
    data = {"name": "j", "kind": "train", "model": "llama-3-8b", "work": {"tokens": 2e9},
            "resources": {"count": 8}}
    data.update(over)
    return parse_job(data)


TWO_REGIONS = [
    center("west-dc", "west", pool("h800", "H800", price=10.0)),
    center("east-dc", "east", pool("h800", "H800", price=14.0)),
]


def test_without_data_the_cheaper_center_wins():
    result = plan(job(), network(TWO_REGIONS))
    assert result.chosen.center == "west-dc"


def test_moving_a_dataset_over_a_slow_link_loses_to_a_dearer_center_that_holds_the_data():
    net = network(TWO_REGIONS,
                  links=[{"a": "west", "b": "east", "bandwidth_gbps": 1, "price_per_gb": 0.0}],
                  datasets=[{"name": "corpus", "location": "east", "size_gb": 50_000}])
    result = plan(job(dataset={"name": "corpus"}), net, objective="time")
    assert result.chosen.center == "east-dc" and result.chosen.transfer_s == 0
    west = next(o for o in result.options if o.center == "west-dc")
    assert west.transfer_s == pytest.approx(8 * 50_000 / 1, rel=1e-3)
    assert west.finish_s == pytest.approx(west.transfer_s + west.run_s)
    # The egress price makes the move lose on cost too.
    priced = network(TWO_REGIONS,
                     links=[{"a": "west", "b": "east", "bandwidth_gbps": 1, "price_per_gb": 0.05}],
                     datasets=[{"name": "corpus", "location": "east", "size_gb": 50_000}])
    result = plan(job(dataset={"name": "corpus"}), priced, objective="cost")
    assert result.chosen.center == "east-dc"
    west = next(o for o in result.options if o.center == "west-dc")
    assert west.egress_cost == pytest.approx(50_000 * 0.05)
    assert west.cost == pytest.approx(west.compute_cost + west.egress_cost, abs=0.01)  # cents
    assert any("corpus" in line for line in result.explain())


def test_dataset_at_a_center_moves_to_a_neighbour_over_the_intra_region_network_for_free():
    net = network([center("a", "r", pool("h800", "H800", price=14.0)),
                   center("b", "r", pool("h800", "H800", price=10.0))],
                  datasets=[{"name": "d", "location": "a", "size_gb": 1000}], intra_gbps=100)
    result = plan(job(dataset={"name": "d"}), net)
    b = next(o for o in result.options if o.center == "b")
    a = next(o for o in result.options if o.center == "a")
    assert a.transfer_s == 0
    assert b.transfer_s == pytest.approx(8 * 1000 / 100) and b.egress_cost == 0


SLOW_CHEAP_FAST_DEAR = [center("dc", "r", pool("slow", "910B", price=2.0),
                               pool("fast", "H800", price=17.0))]


def test_a_deadline_turns_the_cost_optimal_answer_into_a_faster_one():
    net = network(SLOW_CHEAP_FAST_DEAR)
    cheapest = plan(job(), net).chosen
    assert cheapest.accelerator == "910B"
    deadline = cheapest.finish_s / 2
    result = plan(job(), net, deadline_s=deadline)
    assert result.chosen.accelerator == "H800"
    assert result.chosen.finish_s <= deadline < cheapest.finish_s
    assert result.chosen.cost > cheapest.cost
    assert all(o.finish_s <= deadline for o in result.options)
    assert any("deadline" in line and "cheaper" in line for line in result.explain())


def test_time_with_a_budget_picks_the_fastest_option_within_it():
    net = network(SLOW_CHEAP_FAST_DEAR)
    fastest = plan(job(), net, objective="time").chosen
    cheapest = plan(job(), net, objective="cost").chosen
    assert fastest.accelerator == "H800"
    budget = (fastest.cost + cheapest.cost) / 2
    assert cheapest.cost < budget < fastest.cost
    result = plan(job(), net, objective="time", budget=budget)
    assert result.chosen.cost <= budget and result.chosen.accelerator == "910B"


def test_mix_with_all_weight_on_one_axis_matches_that_objective():
    net = network(SLOW_CHEAP_FAST_DEAR)
    j = job(resources={"count": {"min": 8, "max": 8}})
    assert (plan(j, net, objective="mix", weights={"time": 1, "cost": 0}).chosen.accelerator
            == plan(j, net, objective="time").chosen.accelerator)
    assert (plan(j, net, objective="mix", weights={"time": 0, "cost": 1}).chosen.accelerator
            == plan(j, net, objective="cost").chosen.accelerator)


def test_more_chips_finish_sooner_and_the_count_is_part_of_the_answer():
    net = network([center("dc", "r", pool("h800", "H800", nodes=8, price=10.0))])
    result = plan(job(resources={"count": {"min": 8, "max": 64}}), net, objective="time")
    counts = {o.count for o in result.options}
    assert {8, 16, 32, 64} <= counts
    assert result.chosen.count == 64
    by_count = {o.count: o.run_s for o in result.options}
    assert by_count[64] < by_count[32] < by_count[16] < by_count[8]


def test_blocking_a_center_or_a_pool_moves_the_job():
    net = network(TWO_REGIONS)
    first = plan(job(), net).chosen
    moved = plan(job(), net, blocked=[first.center]).chosen
    assert moved.center != first.center
    moved = plan(job(), net, blocked=[f"{first.center}/{first.pool}"]).chosen
    assert moved.center != first.center


def test_preference_order_is_respected_before_the_objective():
    net = network(SLOW_CHEAP_FAST_DEAR)
    j = job(resources={"accelerators": ["H800", "910B"], "prefer_order": True, "count": 8})
    result = plan(j, net)
    assert result.chosen.accelerator == "H800"  # dearer, but preferred
    assert [o.preference_rank for o in result.options] == sorted(
        o.preference_rank for o in result.options)
    assert any("Preferred H800" in line for line in result.explain())
    # Without the order, the cheaper chip wins.
    assert plan(job(resources={"accelerators": ["H800", "910B"], "count": 8}),
                net).chosen.accelerator == "910B"
    # When the preferred chip cannot be had, the next one is used and the reason given.
    fallback = plan(j, net, blocked=["dc/fast"])
    assert fallback.chosen.accelerator == "910B" and fallback.chosen.preference_rank == 1
    assert any("choice 2" in line for line in fallback.explain())


def test_data_residency_regions_are_respected():
    net = network(TWO_REGIONS)
    result = plan(job(regions=["east"]), net)
    assert result.options and all(o.region == "east" for o in result.options)


def test_spot_price_is_used_only_when_the_job_allows_spot():
    net = network([center("dc", "r", pool("h800", "H800", price=17.0, spot=11.0))])
    on_demand = plan(job(), net).chosen
    assert on_demand.price_per_chip_hour == 17.0 and not on_demand.spot
    spot = plan(job(resources={"count": 8, "spot": True}), net).chosen
    assert spot.price_per_chip_hour == 11.0 and spot.spot
    assert spot.cost == pytest.approx(on_demand.cost * 11 / 17, abs=0.01)
    no_offer = network([center("dc", "r", pool("h800", "H800", price=17.0))])
    assert plan(job(resources={"count": 8, "spot": True}), no_offer).chosen.price_per_chip_hour \
        == 17.0


def test_cost_energy_and_carbon_follow_chip_hours_price_pue_and_grid():
    net = network([center("dc", "r", pool("h800", "H800", price=10.0), pue=1.5, carbon=400)])
    o = plan(job(), net).chosen
    assert o.cost == pytest.approx(8 * o.run_s / 3600 * 10.0, abs=0.01)
    assert o.energy_kwh == pytest.approx(o.power_w * o.run_s / 3.6e6 * 1.5)
    assert o.carbon_kg == pytest.approx(o.energy_kwh * 0.4)


def test_waiting_for_busy_chips_overlaps_the_data_transfer():
    net = network([center("dc", "r", pool("h800", "H800", nodes=2, price=10.0)),
                   center("far", "s", pool("h800", "H800", nodes=1, price=50.0))],
                  links=[{"a": "r", "b": "s", "bandwidth_gbps": 8}],
                  datasets=[{"name": "d", "location": "s", "size_gb": 1000}])
    state = NetworkState({"dc/h800": PoolState(free_chips=0, running=(RunningJob(16, 3600),),
                                               queued_chip_s=16 * 1800)})
    result = plan(job(dataset={"name": "d"}), net, state)
    dc = next(o for o in result.options if o.center == "dc")
    assert dc.wait_s == pytest.approx(3600 + 1800)
    assert dc.transfer_s == pytest.approx(1000 + 0.01)  # 8000 Gb over 8 Gbps, plus latency
    assert dc.finish_s == pytest.approx(dc.wait_s + dc.run_s)
    assert plan(job(dataset={"name": "d"}), net).options[0].wait_s == 0


def test_pool_state_wait_counts_chips_freed_by_running_jobs_in_end_order():
    ps = PoolState(free_chips=4, running=((8, 100.0), (4, 50.0)))
    assert list(ps.wait_s([4, 8, 16, 32], capacity=16)) == [0, 50, 100, float("inf")]


def test_every_option_says_its_parallelism_or_split():
    result = plan(job(), network(TWO_REGIONS))
    assert all(o.parallelism is not None and o.parallelism.chips >= 1 for o in result.options)
    assert result.chosen_estimate is not None and result.chosen_estimate.explanation


# --- mixed-chip placements --------------------------------------------------------------

SMALL_MIXED = [center("mixed", "r", pool("h800", "H800", nodes=2, price=17.0),
                      pool("910b", "910B", nodes=2, price=7.0))]


def test_heterogeneous_split_is_offered_when_no_single_pool_is_big_enough():
    j = job(model="llama-2-70b", work={"tokens": 1e9}, resources={"count": 32})
    result = plan(j, network(SMALL_MIXED))
    assert result.feasible, result.infeasible
    chosen = result.chosen
    assert chosen.heterogeneous and chosen.count == 32
    h800, ascend = sorted(chosen.split, key=lambda s: s.accelerator != "H800")
    assert (h800.accelerator, h800.count, ascend.accelerator, ascend.count) == (
        "H800", 16, "910B", 16)
    assert h800.layers + ascend.layers == 80
    assert h800.layers > ascend.layers  # the faster chip gets more layers
    assert f"{h800.layers} layers on 16 H800" in chosen.split_text
    assert any("layers on" in line for line in result.explain())


def test_heterogeneous_split_is_not_offered_for_inference():
    j = parse_job({"name": "i", "kind": "inference", "model": "llama-3-8b",
                   "work": {"requests": 1000}, "resources": {"count": 32}})
    result = plan(j, network(SMALL_MIXED))
    assert not result.feasible and result.infeasible[0].startswith("count:")


def test_heterogeneous_options_beaten_by_a_single_pool_are_not_listed():
    big = [center("mixed", "r", pool("h800", "H800", nodes=8, price=17.0),
                  pool("910b", "910B", nodes=8, price=7.0))]
    j = job(model="llama-2-70b", work={"tokens": 1e9}, resources={"count": {"min": 16,
                                                                           "max": 64}})
    result = plan(j, network(big))
    singles = [o for o in result.options if not o.heterogeneous]
    for h in (o for o in result.options if o.heterogeneous):
        assert not any(s.finish_s <= h.finish_s and s.cost <= h.cost
                       and (s.finish_s < h.finish_s or s.cost < h.cost) for s in singles)


# --- infeasible jobs get reasons --------------------------------------------------------


def test_no_allowed_accelerator_in_the_network_is_named():
    result = plan(job(resources={"accelerators": ["B200"], "count": 8}), network(TWO_REGIONS))
    assert not result.feasible and not result.options
    assert result.infeasible[0].startswith("accelerators:") and "B200" in result.infeasible[0]


def test_region_constraint_that_excludes_all_pools_is_named():
    net = network(TWO_REGIONS + [center("south-dc", "south", pool("l20", "L20"))])
    result = plan(job(regions=["south"], resources={"accelerators": ["H800"], "count": 8}), net)
    assert result.infeasible[0].startswith("regions:") and "south" in result.infeasible[0]


def test_impossible_deadline_names_the_gap_to_the_fastest_option():
    net = network(SLOW_CHEAP_FAST_DEAR)
    fastest = plan(job(), net, objective="time").chosen
    deadline = fastest.finish_s / 3
    result = plan(job(), net, deadline_s=deadline)
    assert not result.feasible
    (reason,) = result.infeasible
    assert reason.startswith(f"deadline: {format_duration(deadline)} is "
                             f"{format_duration(fastest.finish_s - deadline)} short")
    assert fastest.label in reason


def test_too_small_budget_names_the_gap_to_the_cheapest_option():
    net = network(SLOW_CHEAP_FAST_DEAR)
    cheapest = plan(job(), net).chosen
    result = plan(job(), net, budget=cheapest.cost / 2)
    (reason,) = result.infeasible
    assert reason.startswith("budget:") and cheapest.label in reason
    assert f"{cheapest.cost - cheapest.cost / 2:,.0f}" in reason


def test_deadline_and_budget_each_possible_but_not_together_says_both_gaps():
    net = network(SLOW_CHEAP_FAST_DEAR)
    fast = plan(job(), net, objective="time").chosen
    cheap = plan(job(), net).chosen
    result = plan(job(), net, deadline_s=fast.finish_s * 1.1, budget=cheap.cost * 1.1)
    (reason,) = result.infeasible
    assert reason.startswith("deadline and budget:") and "over budget" in reason


def test_job_that_fits_nowhere_says_memory():
    net = network([center("dc", "r", pool("l20", "L20", nodes=1))])
    result = plan(job(model="llama-3.1-405b"), net)
    assert result.infeasible[0].startswith("memory:") and "L20" in result.infeasible[0]


def test_count_larger_than_any_pool_says_count_and_the_largest_pool():
    result = plan(job(resources={"count": 4096}), network(TWO_REGIONS))
    assert result.infeasible[0].startswith("count:") and "4096" in result.infeasible[0]


def test_unreachable_dataset_is_infeasible_with_a_reason():
    net = network(TWO_REGIONS, datasets=[{"name": "d", "location": "east", "size_gb": 10}])
    result = plan(job(dataset={"name": "d"}, regions=["west"]), net)
    assert result.infeasible[0].startswith("dataset:") and "no route" in result.infeasible[0]


def test_every_pool_blocked_or_busy_is_named():
    net = network(TWO_REGIONS)
    assert plan(job(), net, blocked=["west-dc", "east-dc"]).infeasible[0].startswith("blocked:")
    busy = NetworkState({"west-dc/h800": PoolState(free_chips=0),
                         "east-dc/h800": PoolState(free_chips=0)})
    assert plan(job(), net, busy).infeasible[0].startswith("capacity:")


def test_explanation_names_the_runner_up_and_the_other_axis():
    net = network(SLOW_CHEAP_FAST_DEAR + [center("dc2", "r2", pool("a", "910B", price=3.0))])
    result = plan(job(), net)
    text = " ".join(result.explain())
    assert "Cheapest" in text and "runner-up" in text and "fastest option" in text

"""Placement by the broker in the engine (simulation): the policy says who, the planner says
where; policy traits come from registration; a dataset elsewhere is staged once, in virtual
time, with its egress charged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from suanli.engine import Cluster, Engine, SimBackend, SimClock, engine_job_from_spec
from suanli.engine.types import JobState
from suanli.jobs.spec import load_job, parse_job
from suanli.network import load_network
from suanli.plan import plan
from suanli.plan.routing import route_table
from suanli.policies import policy_traits

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _engine(cluster, policy="fifo", **kw):
    return Engine(cluster, policy, SimClock(0.0), SimBackend(seed=0), round_s=60.0, **kw)


@pytest.fixture(scope="module")
def east_west():
    network = load_network("east-west")
    return network, Cluster.from_network(network)


def test_policy_traits_are_declared_where_each_policy_is_registered():
    assert policy_traits("fifo").agnostic and not policy_traits("fifo").work_conserving
    assert not policy_traits("fifo_perf").agnostic
    assert policy_traits("max_throughput_per_cost").placement_aware
    assert policy_traits("las").agnostic and policy_traits("las").work_conserving


def test_the_engine_uses_the_broker_except_in_gavel_mode_and_for_placement_aware_policies(
        east_west):
    _, cluster = east_west
    assert _engine(cluster).placer is not None
    assert _engine(cluster, gavel_mode=True).placer is None
    assert _engine(cluster, "max_throughput_per_cost").placer is None
    assert _engine(cluster, placement="policy").placer is None


def test_an_example_job_runs_where_plan_says_on_an_idle_simulated_network(east_west):
    network, cluster = east_west
    spec = load_job(EXAMPLES / "llama2-70b-lora.yaml")
    chosen = plan(spec, network).chosen
    eng = _engine(cluster)
    rec = eng.submit(engine_job_from_spec("j", spec, cluster, 0.0, count=chosen.count))
    eng.run()
    assert rec.state is JobState.SUCCEEDED
    assert rec.pools == [f"{chosen.center}/{chosen.pool}"]
    placed = next(r for _, s, r in rec.events if r.startswith("placed on"))
    assert placed.startswith(f"placed on {chosen.center}/{chosen.pool}")
    assert ": planned" not in placed  # as planned: no explanation needed
    assert rec.cost == pytest.approx(chosen.cost, abs=0.01)  # the plan prices to the fen


def test_a_full_pool_sends_the_job_to_the_next_option_and_the_event_says_why(east_west):
    network, cluster = east_west
    spec = load_job(EXAMPLES / "llama2-70b-lora.yaml")
    chosen = plan(spec, network).chosen
    pool = next(p for c, p in network.pools() if (c.id, p.id) == (chosen.center, chosen.pool))
    filler = parse_job({"name": "filler", "kind": "generic", "regions": [chosen.region],
                        "work": {"reference_accelerator": chosen.accelerator,
                                 "duration_s": 36000, "reference_count": pool.chips},
                        "resources": {"accelerators": [chosen.accelerator],
                                      "count": pool.chips}})
    eng = _engine(cluster)
    eng.submit(engine_job_from_spec("filler", filler, cluster, 0.0))
    rec = eng.submit(engine_job_from_spec("j", spec, cluster, 1.0, count=chosen.count))
    eng.run()
    assert rec.state is JobState.SUCCEEDED
    assert rec.pools[0] != f"{chosen.center}/{chosen.pool}"
    placed = next(r for _, s, r in rec.events if r.startswith("placed on"))
    assert f"planned {chosen.label}, but that pool has 0 free chips now" in placed


def _data_job(name: str, arrival_s: float, cluster):
    spec = parse_job({
        "name": name, "kind": "finetune", "model": "llama-3-8b", "work": {"tokens": 2e8},
        "resources": {"accelerators": ["910B"], "count": 8}, "regions": ["gansu"],
        "dataset": {"name": "code-corpus"},  # 1.5 TB in chengdu-chongqing
    })
    return engine_job_from_spec(name, spec, cluster, arrival_s)


def test_a_dataset_elsewhere_is_staged_once_in_virtual_time_with_its_egress_charged(
        east_west):
    network, cluster = east_west
    eng = _engine(cluster)
    first = eng.submit(_data_job("a", 0.0, cluster))
    second = eng.submit(_data_job("b", 50_000.0, cluster))
    result = eng.run()
    tr = route_table(network).transfer("chengdu-chongqing", 1500.0)
    gansu = route_table(network).index["gansu"]
    states = [s for _, s, _ in first.events]
    assert states[:4] == ["pending", "queued", "staging", "starting"]
    assert first.staging_s == pytest.approx(tr.fast_s[gansu])
    assert first.egress_cost == pytest.approx(1500.0 * tr.fast_price_per_gb[gansu])
    assert first.data_moved_gb == 1500.0
    staged_at = next(t for t, s, _ in first.events if s == "starting")
    placed_at = next(t for t, s, _ in first.events if s == "staging")
    assert staged_at - placed_at == pytest.approx(tr.fast_s[gansu])
    # The second job finds the copy in gansu: nothing moves again.
    assert "staging" not in [s for _, s, _ in second.events]
    assert second.egress_cost == 0.0 and second.data_moved_gb == 0.0
    summary = result.summary()
    assert summary["data_moved_tb"] == pytest.approx(1.5)
    assert summary["egress_cost"] == pytest.approx(first.egress_cost)
    assert summary["staging_s"] == pytest.approx(first.staging_s)


def test_the_broker_weighs_egress_and_transfer_against_the_chips_price(east_west):
    """A job whose data is in the east goes west only if that is cheaper with egress."""
    network, cluster = east_west
    spec = parse_job({
        "name": "gravity", "kind": "finetune", "model": "llama-3-8b",
        "work": {"tokens": 1e8}, "resources": {"accelerators": ["910B"], "count": 8},
        "dataset": {"name": "medical-imaging"},  # 8 TB in greater-bay-area
    })
    chosen = plan(spec, network).chosen
    eng = _engine(cluster)
    rec = eng.submit(engine_job_from_spec("g", spec, cluster, 0.0))
    eng.run()
    assert rec.pools == [f"{chosen.center}/{chosen.pool}"]
    assert rec.cost == pytest.approx(chosen.cost, abs=0.01)  # the plan prices to the fen
    blind = dataclasses.replace(engine_job_from_spec("g", spec, cluster, 0.0), spec=None,
                                objective="cost")
    assert blind.dataset is not None and blind.dataset.region == "greater-bay-area"


def test_a_center_outage_replans_the_job_elsewhere_and_its_data_moves_again(east_west):
    network, cluster = east_west
    spec = parse_job({
        "name": "failover", "kind": "finetune", "model": "llama-3-8b",
        "work": {"tokens": 2e9}, "resources": {"accelerators": ["910B"], "count": 8},
        "dataset": {"name": "code-corpus"}, "checkpoint_interval_s": 600,
    })
    eng = _engine(cluster)
    rec = eng.submit(engine_job_from_spec("f", spec, cluster, 0.0))
    first_pool = plan(spec, network).chosen
    eng.inject_failure("center", first_pool.center, at_s=3000.0, duration_s=1e7)
    eng.run()
    assert rec.state is JobState.SUCCEEDED
    assert rec.pools[0] == f"{first_pool.center}/{first_pool.pool}"
    assert rec.pools[-1].split("/")[0] != first_pool.center
    replaced = [r for _, s, r in rec.events if r.startswith("placed on")][-1]
    assert f"moved from {rec.pools[0]} (failure: center {first_pool.center} down" in replaced
    moves = [r for _, s, r in rec.events if s == "staging"]
    assert rec.data_moved_gb == 1500.0 * len(moves) and rec.interruptions == 1

"""Mixed-chip gangs in the engine (simulation): one job over two pools of different chips,
held, billed and stopped as one gang."""

from __future__ import annotations

import pytest

from suanli.engine import Cluster, Engine, SimBackend, SimClock, engine_job_from_spec
from suanli.engine.types import JobState
from suanli.jobs.spec import parse_job
from suanli.network.load import parse_network
from suanli.plan import plan


def mixed_network():
    """One center with 2 nodes of H800 and 2 of 910B: 16 chips each, 32 together."""
    pools = [{"id": "h800", "accelerator": "H800", "nodes": 2, "price_per_chip_hour": 17.0},
             {"id": "910b", "accelerator": "910B", "nodes": 2, "price_per_chip_hour": 7.0}]
    center = {"id": "mixed", "name": "mixed", "region": "r", "lat": 30, "lon": 110,
              "electricity_price_per_kwh": 0.5, "pue": 1.2, "carbon_g_per_kwh": 500,
              "pools": pools}
    return parse_network({"name": "mixed", "centers": [center], "links": [], "datasets": [],
                          "intra_region_gbps": 100.0}, "mixed")


def mixed_job(tokens=2e8):
    return parse_job({"name": "m", "kind": "train", "model": "llama-2-70b",
                      "work": {"tokens": tokens}, "resources": {"count": 32}})


@pytest.fixture()
def setup():
    network = mixed_network()
    return network, Cluster.from_network(network)


def _engine(cluster, **kw):
    return Engine(cluster, "fifo", SimClock(0.0), SimBackend(seed=0), round_s=60.0, **kw)


def test_a_job_no_single_pool_can_hold_runs_as_one_gang_over_both_pools(setup):
    network, cluster = setup
    spec = mixed_job()
    chosen = plan(spec, network).chosen
    assert chosen.heterogeneous
    eng = _engine(cluster)
    seen = []
    eng.listener = lambda tr: seen.append(tr)
    rec = eng.submit(engine_job_from_spec("j", spec, cluster, 0.0, count=32))
    eng.step()
    assert rec.state in (JobState.STARTING, JobState.RUNNING)
    pl = rec.placement
    assert pl.mixed and pl.count == 32
    assert {(p.pool_id, p.count) for p in pl.parts} == {("mixed/h800", 16), ("mixed/910b", 16)}
    assert sum(p.layers for p in pl.parts) == 80
    assert eng.used_chips == {"mixed/h800": 16, "mixed/910b": 16}
    assert pl.throughput == pytest.approx(spec.work.tokens / chosen.run_s)
    eng.run()
    assert rec.state is JobState.SUCCEEDED
    assert eng.used_chips == {"mixed/h800": 0, "mixed/910b": 0}
    assert sorted(rec.pools) == ["mixed/910b", "mixed/h800"]
    assert rec.finish_s == pytest.approx(chosen.run_s, rel=0.02)
    # Each part is billed at its own pool's price: the planner's compute cost.
    assert rec.cost == pytest.approx(chosen.compute_cost, rel=0.02)
    starts = [tr for tr in seen if tr.new is JobState.STARTING]
    assert len(starts) == 1 and starts[0].placement.to_dict()["parts"][0]["count"] == 16


def test_a_second_gang_waits_until_the_mixed_gang_leaves_both_pools(setup):
    _, cluster = setup
    eng = _engine(cluster)
    first = eng.submit(engine_job_from_spec("a", mixed_job(), cluster, 0.0, count=32))
    single = parse_job({"name": "s", "kind": "train", "model": "llama-3-8b",
                        "work": {"tokens": 1e8}, "resources": {"count": 8}})
    second = eng.submit(engine_job_from_spec("b", single, cluster, 1.0, count=8))
    eng.run()
    assert first.state is JobState.SUCCEEDED and second.state is JobState.SUCCEEDED
    assert second.start_s >= first.finish_s - 1e-6


def test_an_outage_of_either_pool_stops_the_whole_mixed_gang(setup):
    _, cluster = setup
    eng = _engine(cluster)
    rec = eng.submit(engine_job_from_spec("j", mixed_job(tokens=2e9), cluster, 0.0, count=32))
    eng.inject_failure("pool", "mixed/910b", 600.0, 300.0)
    eng.run()
    assert rec.state is JobState.SUCCEEDED
    assert rec.interruptions == 1
    hit = [r for t, s, r in rec.events if s == "preempted" and "failure" in r]
    assert hit and "910b" in hit[0]
    assert eng.used_chips == {"mixed/h800": 0, "mixed/910b": 0}


def test_without_the_broker_a_gang_no_single_pool_holds_fails_at_once(setup):
    _, cluster = setup
    eng = _engine(cluster, placement="policy")
    rec = eng.submit(engine_job_from_spec("j", mixed_job(), cluster, 0.0, count=32))
    assert rec.state is JobState.FAILED
    assert "gang of 32 chips does not fit" in rec.reason

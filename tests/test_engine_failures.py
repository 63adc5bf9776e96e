"""Outages as events: nodes, pools, centers and links go down for a while and come back."""

from __future__ import annotations

import pytest

from engine_policies import fastest_first
from suanli.engine import Cluster, Engine, EngineJob, JobState, SimBackend, SimClock
from suanli.errors import SuanliError
from suanli.network.load import parse_network


def two_centers() -> Cluster:
    net = parse_network(
        {
            "name": "t",
            "centers": [
                {"id": "east", "name": "E", "region": "r-east", "lat": 0, "lon": 0,
                 "electricity_price_per_kwh": 1.0, "pue": 1.5,
                 "pools": [{"id": "a100", "accelerator": "A100", "nodes": 2,
                            "price_per_chip_hour": 10.0}]},
                {"id": "west", "name": "W", "region": "r-west", "lat": 0, "lon": 0,
                 "electricity_price_per_kwh": 0.5, "pue": 1.2,
                 "pools": [{"id": "a800", "accelerator": "A800", "nodes": 2,
                            "price_per_chip_hour": 8.0}]},
            ],
        },
        "test",
    )
    return Cluster.from_network(net)


FAST = {"east/a100": 2.0, "west/a800": 1.0}


def make(**kw) -> Engine:
    return Engine(two_centers(), fastest_first, SimClock(), SimBackend(), round_s=60.0, **kw)


def run_until(eng: Engine, t: float) -> None:
    while True:
        nxt = eng.step()
        if nxt is None or nxt > t:
            eng.clock.advance_to(t)
            eng.step()
            return
        eng.clock.advance_to(nxt)


@pytest.mark.parametrize("interval", [100.0, 250.0, 1000.0])
def test_center_outage_loses_at_most_the_work_since_the_last_checkpoint(interval):
    eng = make()
    jobs = [EngineJob(f"j{k}", 4, 10_000.0, FAST, 0.0, checkpoint_interval_s=interval)
            for k in range(4)]
    for j in jobs:
        eng.submit(j)
    outage_at = 1234.0
    eng.inject_failure("center", "east", at_s=outage_at, duration_s=2000.0)
    run_until(eng, outage_at - 1e-6)
    before = {j.job_id: eng.progress(j.job_id, outage_at) for j in jobs}
    on_east = [j.job_id for j in jobs if eng.jobs[j.job_id].placement is not None
               and eng.jobs[j.job_id].placement.center == "east"]
    assert on_east, "the fastest pool should be in use"
    run_until(eng, outage_at)
    for job_id in on_east:
        rec = eng.jobs[job_id]
        assert rec.state is not JobState.RUNNING or rec.placement.center != "east"
        assert rec.interruptions == 1
        lost = before[job_id] - rec.done_work
        assert 0.0 <= lost <= interval * FAST["east/a100"] + 1e-6
        assert rec.done_work == pytest.approx(rec.checkpoint_work)
    assert eng.up_capacity["east/a100"] == 0
    eng.run()
    assert all(eng.jobs[j.job_id].state is JobState.SUCCEEDED for j in jobs)
    assert eng.up_capacity["east/a100"] == 16  # back after the outage


def test_pool_outage_moves_jobs_to_the_other_center_and_they_return():
    eng = make()
    eng.submit(EngineJob("a", 8, 20_000.0, FAST, 0.0, checkpoint_interval_s=60.0))
    eng.inject_failure("pool", "east/a100", at_s=600.0, duration_s=600.0)
    result = eng.run()
    rec = eng.jobs["a"]
    assert rec.state is JobState.SUCCEEDED
    assert rec.pools[:2] == ["east/a100", "west/a800"]
    assert rec.interruptions == 1
    assert result.summary()["interruptions"] == 1


def test_node_outage_kills_only_jobs_with_chips_on_that_node():
    eng = make()
    # Two 8-chip gangs fill the two 8-chip nodes of east/a100, one node each.
    eng.submit(EngineJob("a", 8, 50_000.0, {"east/a100": 1.0}, 0.0))
    eng.submit(EngineJob("b", 8, 50_000.0, {"east/a100": 1.0}, 0.0))
    run_until(eng, 10.0)
    nodes = {k: eng.jobs[k].placement.nodes for k in ("a", "b")}
    assert {n for k in nodes for n, _ in nodes[k]} == {0, 1}
    victim = "a" if nodes["a"][0][0] == 1 else "b"
    survivor = "b" if victim == "a" else "a"
    eng.inject_failure("node", "east/a100/1", at_s=100.0, duration_s=500.0)
    run_until(eng, 100.0)
    assert eng.jobs[victim].state is JobState.PREEMPTED
    assert eng.jobs[survivor].state is JobState.RUNNING
    assert eng.up_capacity["east/a100"] == 8
    eng.run()
    assert eng.jobs[victim].state is JobState.SUCCEEDED


def test_link_outage_stops_jobs_cut_from_their_data():
    eng = make()
    eng.submit(EngineJob("remote", 4, 50_000.0, {"west/a800": 1.0}, 0.0,
                         meta={"data_region": "r-east"}))
    eng.submit(EngineJob("local", 4, 50_000.0, {"west/a800": 1.0}, 0.0,
                         meta={"data_region": "r-west"}))
    eng.inject_failure("link", "r-east~r-west", at_s=100.0, duration_s=1000.0)
    run_until(eng, 500.0)
    assert eng.jobs["remote"].state is JobState.PREEMPTED
    assert eng.jobs["local"].state is JobState.RUNNING
    eng.run()
    assert eng.jobs["remote"].state is JobState.SUCCEEDED
    assert eng.jobs["remote"].start_s == 0.0
    assert eng.jobs["remote"].finish_s > 1100.0


def test_failure_targets_are_checked():
    eng = make()
    with pytest.raises(SuanliError, match="unknown center"):
        eng.inject_failure("center", "mars", 0.0, 10.0)
    with pytest.raises(SuanliError, match="unknown pool"):
        eng.inject_failure("pool", "east/h100", 0.0, 10.0)
    with pytest.raises(SuanliError, match="nodes 0..1"):
        eng.inject_failure("node", "east/a100/7", 0.0, 10.0)
    with pytest.raises(SuanliError, match="scope"):
        eng.inject_failure("rack", "east", 0.0, 10.0)
    with pytest.raises(SuanliError, match="regionA~regionB"):
        eng.inject_failure("link", "r-east", 0.0, 10.0)


def test_overlapping_outages_keep_the_node_down_until_both_end():
    eng = make()
    eng.inject_failure("center", "east", 0.0, 100.0)
    eng.inject_failure("pool", "east/a100", 50.0, 100.0)
    run_until(eng, 120.0)
    assert eng.up_capacity["east/a100"] == 0
    run_until(eng, 151.0)
    assert eng.up_capacity["east/a100"] == 16


def test_cost_and_energy_follow_the_pool_that_ran_the_job():
    eng = make()
    eng.submit(EngineJob("a", 4, 7200.0, {"east/a100": 2.0}, 0.0))
    res = eng.run()
    j = res.jobs[0]
    assert j.chip_hours == pytest.approx(4.0)  # 3600 s x 4 chips
    assert j.cost == pytest.approx(40.0)  # 10 per chip-hour
    assert j.energy_kwh == pytest.approx(4.0 * 0.4 * 1.5)  # A100 400 W, PUE 1.5


def test_a_pool_without_a_live_node_sends_the_job_elsewhere_without_a_retry():
    backend = SimBackend(no_node_until={"east/a100": float("inf")})
    eng = Engine(two_centers(), fastest_first, SimClock(), backend, round_s=60.0)
    eng.submit(EngineJob("a", 8, 2_000.0, FAST, 0.0))
    eng.run()
    rec = eng.jobs["a"]
    assert rec.state is JobState.SUCCEEDED and rec.retries == 0
    assert rec.pools == ["east/a100", "west/a800"]  # tried the fastest pool, then re-placed
    waits = [reason for _at, state, reason in rec.events if state == "queued"
             and "no live node" in reason]
    assert waits == ["no live node in the pool; waiting: east/a100 avoided for 120s, "
                     "no retry used"]  # two rounds: the next round places it elsewhere


def test_a_job_with_no_live_node_anywhere_waits_until_one_joins():
    one_pool = {"east/a100": 2.0}
    backend = SimBackend(no_node_until={"east/a100": 300.0})
    eng = Engine(two_centers(), fastest_first, SimClock(), backend, round_s=60.0)
    eng.submit(EngineJob("a", 8, 2_000.0, one_pool, 0.0, max_retries=0))
    eng.run()
    rec = eng.jobs["a"]
    assert rec.state is JobState.SUCCEEDED and rec.retries == 0
    tries = [at for at, state, reason in rec.events if state == "queued" and "avoided" in reason]
    assert len(tries) >= 2 and all(t < 300.0 for t in tries)  # waited, not failed
    assert rec.finish_s == pytest.approx(300.0 + 1_000.0, abs=120.0)

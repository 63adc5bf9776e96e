"""Invariants of the engine over random workloads, policies and outages (Hypothesis).

- the chips in use never exceed a pool's capacity (or its up capacity during an outage);
- a gang holds all its chips in one pool or none;
- every job ends in a terminal state;
- the same seed gives the same result.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_policies import equal_share
from suanli.engine import Cluster, Engine, EngineJob, JobState, SimBackend, SimClock, Transition

POOLS = {"a/v100": 2.0, "a/k80": 1.0, "b/p100": 1.5}


def cluster() -> Cluster:
    from suanli.network.load import parse_network

    net = parse_network(
        {
            "name": "t",
            "centers": [
                {"id": "a", "name": "A", "region": "east", "lat": 0, "lon": 0,
                 "electricity_price_per_kwh": 1.0,
                 "pools": [{"id": "v100", "accelerator": "V100", "nodes": 2,
                            "chips_per_node": 4, "price_per_chip_hour": 3.0},
                           {"id": "k80", "accelerator": "K80", "nodes": 3,
                            "chips_per_node": 2, "price_per_chip_hour": 1.0}]},
                {"id": "b", "name": "B", "region": "west", "lat": 0, "lon": 0,
                 "electricity_price_per_kwh": 1.0,
                 "pools": [{"id": "p100", "accelerator": "P100", "nodes": 2,
                            "chips_per_node": 4, "price_per_chip_hour": 2.0}]},
            ],
        },
        "test",
    )
    return Cluster.from_network(net)


job_strategy = st.tuples(
    st.sampled_from([1, 1, 2, 4, 8, 16]),  # chips (16 fits nowhere)
    st.floats(10.0, 3000.0),  # work
    st.floats(0.0, 4000.0),  # arrival
    st.sets(st.sampled_from(sorted(POOLS)), min_size=0, max_size=3),  # where it can run
    st.sampled_from([0.0, 30.0]),  # restore_s
)

failure_strategy = st.lists(
    st.tuples(
        st.sampled_from(["node:a/v100/1", "pool:a/k80", "center:b", "center:a",
                         "link:east~west"]),
        st.floats(0.0, 5000.0),
        st.floats(1.0, 3000.0),
    ),
    max_size=3,
)


def run_engine(jobs, failures, *, seed, policy, gavel_mode=False, fail_rate=0.0):
    cl = cluster()
    caps = {p.pool_id: p.capacity for p in cl.pools}
    holding: dict[str, tuple[str, int]] = {}
    violations: list[str] = []
    eng_box: dict = {}

    def listener(t: Transition) -> None:
        eng = eng_box["engine"]
        if t.new is JobState.STARTING:
            pl = t.placement
            assert pl is not None
            chips = sum(c for _, c in pl.nodes)
            want = eng.jobs[t.job_id].job.num_chips
            if chips != want or pl.num_chips != want:
                violations.append(f"{t.job_id}: gang of {want} got {chips} chips")
            holding[t.job_id] = (pl.pool_id, chips)
        elif t.old.on_chips and not t.new.on_chips:
            holding.pop(t.job_id, None)
        used: dict[str, int] = {}
        for pool, chips in holding.values():
            used[pool] = used.get(pool, 0) + chips
        for pool, u in used.items():
            if u > caps[pool]:
                violations.append(f"{pool}: {u} chips in use > capacity {caps[pool]}")
        for pool, u in eng.used_chips.items():
            if u > eng.up_capacity[pool] or u < 0:
                violations.append(f"{pool}: {u} in use, {eng.up_capacity[pool]} up")

    eng = Engine(cl, policy, SimClock(), SimBackend(seed=seed, failure_rate_per_hour=fail_rate),
                 listener=listener, seed=seed, round_s=300.0, gavel_mode=gavel_mode)
    eng_box["engine"] = eng
    for k, (chips, work, arrival, pools, restore) in enumerate(jobs):
        thr = {p: POOLS[p] for p in pools}
        meta = {"data_region": "east"} if k % 3 == 0 else {}
        eng.submit(EngineJob(f"j{k}", chips, work, thr, arrival, restore_s=restore,
                             checkpoint_interval_s=600.0, max_retries=2, meta=meta))
    for spec, at, dur in failures:
        scope, target = spec.split(":", 1)
        eng.inject_failure(scope, target, at, dur)
    result = eng.run()
    return eng, result, violations


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=st.lists(job_strategy, min_size=1, max_size=25), failures=failure_strategy,
       gavel_mode=st.booleans(), fail_rate=st.sampled_from([0.0, 0.5]))
def test_capacity_gangs_and_terminal_states_hold(jobs, failures, gavel_mode, fail_rate):
    eng, result, violations = run_engine(jobs, failures, seed=1, policy=equal_share,
                                         gavel_mode=gavel_mode, fail_rate=fail_rate)
    assert violations == []
    assert all(rec.state.terminal for rec in eng.jobs.values())
    assert eng.used_chips == {pid: 0 for pid in eng.used_chips}
    for rec in eng.jobs.values():
        if rec.state is JobState.SUCCEEDED:
            assert rec.finish_s >= rec.job.arrival_s
            assert rec.start_s is not None and rec.start_s >= rec.job.arrival_s - 1e-9
        assert rec.retries <= rec.job.max_retries
    counts = result.summary()["states"]
    assert sum(counts.values()) == len(jobs)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=st.lists(job_strategy, min_size=1, max_size=20), failures=failure_strategy,
       seed=st.integers(0, 5))
def test_same_seed_gives_the_same_result(jobs, failures, seed):
    from suanli.policies import get_policy

    policy = get_policy("max_min_fairness_perf")
    _, a, _ = run_engine(jobs, failures, seed=seed, policy=policy, fail_rate=0.3)
    _, b, _ = run_engine(jobs, failures, seed=seed, policy=policy, fail_rate=0.3)
    assert a.jobs == b.jobs
    assert a.summary() == b.summary()

"""Every example job plans on the built-in east-west network; generated networks are sane."""

from __future__ import annotations

from pathlib import Path

import pytest

from suanli.jobs.spec import load_job, parse_job
from suanli.network import load_network
from suanli.network.generate import generate_network
from suanli.plan import plan, route_table

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_job_plans_on_east_west(path):
    result = plan(load_job(path), load_network("east-west"), top=5)
    assert result.feasible, result.infeasible
    assert result.chosen.finish_s > 0 and result.chosen.cost > 0
    assert result.explain()


def test_generated_network_has_the_asked_size_is_deterministic_and_connected():
    net = generate_network(40, 150, seed=3)
    assert len(net.centers) == 40 and len(net.pools()) == 150
    assert net == generate_network(40, 150, seed=3)
    tr = route_table(net).transfer(sorted(net.regions)[0], 1.0)
    assert (tr.fast_s < float("inf")).all()


def test_planning_over_a_generated_network_finds_options():
    net = generate_network(60, 200, seed=1)
    job = parse_job({"name": "g", "kind": "train", "model": "llama-3-8b",
                     "work": {"tokens": 1e9}, "resources": {"count": {"min": 8, "max": 64}},
                     "dataset": {"name": "dataset-0"}})
    result = plan(job, net, objective="time", top=10)
    assert result.feasible and len(result.options) == 10
    assert result.total_options >= 10

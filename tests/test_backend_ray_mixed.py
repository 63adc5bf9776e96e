"""A mixed-chip job on the Ray backend through the service: one task on the node of its
center, asking for both parts' chip markers and chips, started once with SUANLI_PLACEMENT."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import wait_for_state

pytest.importorskip("ray")

from suanli.backends.ray_backend import RayBackend, start_local_ray_cluster  # noqa: E402
from suanli.network import load_network  # noqa: E402

TERMINAL = {"succeeded", "failed", "cancelled"}

# One center with two pools of different chips, 16 chips each: a 32-chip gang needs both.
NETWORK = """\
name: ray-mixed
illustrative: true
currency: CNY
centers:
  - {id: c2, name: Center c2, region: r1, lat: 30.0, lon: 110.0,
     electricity_price_per_kwh: 0.5,
     pools: [{id: h800, accelerator: H800, nodes: 2, chips_per_node: 8,
              price_per_chip_hour: 17.0},
             {id: 910b, accelerator: 910B, nodes: 2, chips_per_node: 8,
              price_per_chip_hour: 7.0}]}
links: []
"""


@pytest.fixture(scope="module")
def network_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ray-mixed") / "network.yaml"
    path.write_text(NETWORK)
    return path


@pytest.fixture(scope="module")
def cluster(network_file):
    handle = start_local_ray_cluster(load_network(network_file), object_store_memory_mb=80)
    yield handle
    handle.shutdown()


@pytest.fixture(scope="module")
def backend(cluster, tmp_path_factory):
    # Keeps the module's driver connected while the service's backend reuses it.
    b = RayBackend(tmp_path_factory.mktemp("ray-jobs"), cluster.address, grace_s=1.0,
                   isolation="none")
    yield b
    b.shutdown(stop_jobs=True)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_mixed_chip_job_runs_as_one_ray_task_holding_both_parts(
        cluster, backend, network_file, db_url, start_service, http):
    server = start_service(db_url, backend="ray", ray_address=cluster.address,
                           network=str(network_file), isolation="none")
    token = http(server).post("/v1/tenants", json={"name": "team", "credits": "100000.00"})
    team = http(server, token.json()["token"])
    body = {"name": "split", "kind": "train", "model": "llama-2-70b", "max_retries": 0,
            "work": {"tokens": 1e8}, "resources": {"count": 32},
            "run": 'echo "placement=$SUANLI_PLACEMENT"'}
    r = team.post("/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    done = wait_for_state(team, r.json()["id"], TERMINAL, timeout_s=120)
    assert done["state"] == "succeeded", done
    assert {p["pool_id"]: p["count"] for p in done["placement"]["parts"]} == {
        "c2/h800": 16, "c2/910b": 16}
    result = server.state.runner.backend.result(str(done["id"]))
    assert result is not None and result["exit_code"] == 0
    assert cluster.center_of(result["node_id"]) == "c2"
    for acc in ("H800", "910B"):  # one task, pinned to a node carrying both chips
        assert result["resources"][f"accelerator_type:{acc}"] == pytest.approx(0.001)
    log = team.get(f"/v1/jobs/{done['id']}/logs").text
    parts = json.loads(log.split("placement=", 1)[1].splitlines()[0])
    assert sorted(p["accelerator"] for p in parts) == ["910B", "H800"]
    assert Decimal(done["charged"]) >= Decimal("0.01")


def test_a_mixed_gangs_task_asks_for_each_parts_chips_of_its_own_pool():
    from suanli.backends.ray_backend import placement_resources
    from suanli.backends.types import RunSpec

    parts = [{"pool_id": "c2/h800", "accelerator": "H800", "count": 16},
             {"pool_id": "c2/910b", "accelerator": "910B", "count": 8}]
    spec = RunSpec("m", "true", center="c2", accelerator="H800", count=24,
                   pool_id="c2/h800", placement=json.dumps(parts))
    assert placement_resources(spec, True) == {
        "center:c2": 0.001, "accelerator_type:H800": 0.001, "accelerator_type:910B": 0.001,
        "pool:c2/h800": 16.0, "pool:c2/910b": 8.0}

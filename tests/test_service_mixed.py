"""A mixed-chip job against a real server with the local backend: neither pool alone holds its
gang, both together do; it runs once over both, sees its parts in SUANLI_PLACEMENT, and is
billed for each part at its own pool's price."""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, Decimal

from conftest import wait_for_state
from suanli.jobs.spec import parse_job
from suanli.network import load_network
from suanli.plan import plan
from suanli.store.types import money
from suanli.tables import placement_text

TERMINAL = {"succeeded", "failed", "cancelled"}

MIXED = """
name: mixed
illustrative: true
currency: CNY
centers:
  - {id: mixed, name: Mixed, region: r, lat: 31.0, lon: 121.0, electricity_price_per_kwh: 0.5,
     pools: [{id: h800, accelerator: H800, nodes: 2, chips_per_node: 8,
              price_per_chip_hour: 17.0},
             {id: 910b, accelerator: 910B, nodes: 2, chips_per_node: 8,
              price_per_chip_hour: 7.0}]}
links: []
"""


def test_a_mixed_chip_job_runs_once_over_both_pools_and_pays_each_parts_price(
        db_url, start_service, http, tmp_path):
    net = tmp_path / "mixed.yaml"
    net.write_text(MIXED)
    server = start_service(db_url, backend="local", network=str(net), isolation="none")
    admin = http(server)
    r = admin.post("/v1/tenants", json={"name": "team", "credits": "100000.00"})
    assert r.status_code == 201, r.text
    team = http(server, r.json()["token"])
    body = {"name": "split", "kind": "train", "model": "llama-2-70b", "max_retries": 0,
            "work": {"tokens": 1e8}, "resources": {"count": 32},
            "run": 'echo "placement=$SUANLI_PLACEMENT"; echo "parts=$SUANLI_PARTS '
                   '$SUANLI_PART_0_ACCELERATOR:$SUANLI_PART_0_COUNT '
                   '$SUANLI_PART_1_ACCELERATOR:$SUANLI_PART_1_COUNT"; sleep 2'}
    preview = team.post("/v1/plan", json=body)
    assert preview.status_code == 200, preview.text
    now = preview.json()["placement_now"]  # the option the scheduler uses now: the split
    assert now["heterogeneous"] and now["count"] == 32
    r = team.post("/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    chosen = plan(parse_job(body), load_network(net)).chosen
    assert chosen.heterogeneous
    assert r.json()["reserved"] == str(money(repr(float(chosen.cost))))  # the split's cost
    done = wait_for_state(team, r.json()["id"], TERMINAL, timeout_s=120)
    assert done["state"] == "succeeded", done
    placement = done["placement"]
    assert placement["count"] == 32
    parts = {p["pool_id"]: p for p in placement["parts"]}
    assert {k: p["count"] for k, p in parts.items()} == {"mixed/h800": 16, "mixed/910b": 16}
    assert {k: Decimal(p["price_per_chip_hour"]) for k, p in parts.items()} == {
        "mixed/h800": Decimal(17), "mixed/910b": Decimal(7)}
    assert placement_text(done) in ("16 H800 + 16 910B @ mixed", "16 910B + 16 H800 @ mixed")
    log = team.get(f"/v1/jobs/{done['id']}/logs").text
    env_parts = json.loads(log.split("placement=", 1)[1].splitlines()[0])
    assert sorted((p["accelerator"], p["count"]) for p in env_parts) == [("910B", 16),
                                                                         ("H800", 16)]
    assert sum(p["layers"] for p in env_parts) == 80
    assert "parts=2 " in log
    # Started once: one placement event, one process.
    events = team.get(f"/v1/jobs/{done['id']}/events").json()["events"]
    assert [e["new"] for e in events].count("starting") == 1
    assert log.count("placement=") == 1
    # Each part at its own price: 16 x 17 + 16 x 7 CNY per hour of the run.
    per_hour = Decimal(16 * 17 + 16 * 7)
    truth = per_hour * Decimal(repr(done["run_s"])) / 3600
    assert Decimal(done["charged"]) == max(truth.quantize(Decimal("0.01"), ROUND_CEILING),
                                           Decimal("0.01"))

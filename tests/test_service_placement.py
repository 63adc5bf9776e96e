"""One brain, against a real server on east-west: on an idle network every example job runs
where `suanli plan` puts it and holds that option's cost; on a busy one the job's events and
detail say why it went elsewhere; the plan preview shows the scheduler's choice now."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import yaml

from conftest import wait_for_state
from suanli.jobs.spec import load_job
from suanli.network import load_network
from suanli.plan import plan
from suanli.store.types import money

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
TERMINAL = {"succeeded", "failed", "cancelled"}


def _tenant(admin) -> str:
    r = admin.post("/v1/tenants", json={"name": "team", "credits": "100000000.00"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _body(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["run"] = "sleep 120"
    data.pop("workdir", None)  # its code is not run here (the CLI packs it: test_job_workdir)
    return data


def _cancel(client, job_id: int) -> None:
    client.post(f"/v1/jobs/{job_id}/cancel")
    wait_for_state(client, job_id, TERMINAL)


def test_each_example_runs_where_plan_says_and_holds_that_options_cost(
        db_url, start_service, http):
    server = start_service(db_url, backend="local", network="east-west", isolation="none")
    team = http(server, _tenant(http(server)))
    network = load_network("east-west")
    moved: set[tuple[str, str]] = set()
    for path in EXAMPLES:
        chosen = plan(load_job(path), network).chosen
        assert chosen is not None, path.name
        r = team.post("/v1/jobs", json=_body(path))
        assert r.status_code == 201, (path.name, r.text)
        job = r.json()
        assert job["reserved"] == str(money(repr(float(chosen.cost)))), path.name
        # Placed: running, or staging first where its dataset lives in another region.
        running = wait_for_state(team, job["id"], {"staging", "running"} | TERMINAL)
        assert running["state"] in ("staging", "running"), (path.name, running)
        spec = load_job(path)
        if spec.dataset is not None and chosen.transfer_s > 60:
            where = (spec.dataset.name, chosen.region)
            staged = running["state"] == "staging" and "staging dataset" in running["reason"]
            assert staged == (where not in moved), (path.name, running["reason"])
            moved.add(where)  # a dataset already in a region is not moved twice
        assert (running["placement"]["center"], running["placement"]["pool"],
                running["placement"]["count"]) == (chosen.center, chosen.pool, chosen.count), \
            path.name
        assert running["planned"]["center"] == chosen.center
        assert running["placement_note"] is None
        assert Decimal(running["reserved"]) == money(repr(float(chosen.cost))), path.name
        _cancel(team, job["id"])
        if running["state"] == "staging":  # the tenant pays the egress, even if cancelled
            egress = Decimal(running["reason"].rsplit("egress ", 1)[1])
            assert egress > 0
            assert Decimal(team.get(f"/v1/jobs/{job['id']}").json()["charged"]) >= egress


def test_a_full_pool_sends_the_job_elsewhere_and_its_events_say_why(
        db_url, start_service, http):
    server = start_service(db_url, backend="local", network="east-west", isolation="none")
    team = http(server, _tenant(http(server)))
    path = EXAMPLES[0].parent / "llama2-70b-lora.yaml"
    body = _body(path)
    network = load_network("east-west")
    chosen = plan(load_job(path), network).chosen
    pool = next(p for c, p in network.pools() if (c.id, p.id) == (chosen.center, chosen.pool))
    # Fill the planned pool with one job that asks for all of it there.
    filler = {"name": "filler", "kind": "generic", "run": "sleep 120",
              "work": {"reference_accelerator": chosen.accelerator, "duration_s": 600,
                       "reference_count": pool.chips},
              "resources": {"accelerators": [chosen.accelerator], "count": pool.chips},
              "regions": [chosen.region]}
    r = team.post("/v1/jobs", json=filler)
    assert r.status_code == 201, r.text
    first = wait_for_state(team, r.json()["id"], {"running"} | TERMINAL)
    assert first["state"] == "running" and first["placement"]["pool"] == chosen.pool, first
    # The preview now shows the option the scheduler would use now: not the full pool (the
    # planner's first choice may still be to wait for it: that is the cost objective).
    preview = team.post("/v1/plan", json=body).json()
    live = preview["placement_now"]
    assert (live["center"], live["pool"]) != (chosen.center, chosen.pool)
    assert live["wait_s"] == 0
    r = team.post("/v1/jobs", json=body)
    job = wait_for_state(team, r.json()["id"], {"running"} | TERMINAL)
    assert job["state"] == "running", job
    assert (job["placement"]["center"], job["placement"]["pool"]) == (live["center"],
                                                                        live["pool"])
    assert job["planned"]["center"] == chosen.center
    assert f"planned {chosen.label}, but that pool has 0 free chips now" in \
        job["placement_note"]
    events = team.get(f"/v1/jobs/{job['id']}/events").json()["events"]
    assert any("that pool has 0 free chips now" in e["reason"] for e in events)
    time.sleep(0.1)
    _cancel(team, job["id"])
    _cancel(team, first["id"])


TWO_REGIONS = """
name: two-regions
illustrative: true
currency: CNY
centers:
  - {id: east, name: East, region: e, lat: 31.0, lon: 121.0, electricity_price_per_kwh: 0.8,
     pools: [{id: l20, accelerator: L20, nodes: 1, chips_per_node: 1,
              price_per_chip_hour: 30.0}]}
  - {id: west, name: West, region: w, lat: 38.0, lon: 106.0, electricity_price_per_kwh: 0.3,
     pools: [{id: l20, accelerator: L20, nodes: 1, chips_per_node: 2,
              price_per_chip_hour: 3.0}]}
links:
  - {a: e, b: w, bandwidth_gbps: 10, latency_ms: 30, price_per_gb: 0.5}
datasets:
  - {name: corpus, location: e, size_gb: 2.0, path: "@PATH@"}
"""


def test_a_registered_dataset_is_copied_to_the_center_once_with_progress_and_egress(
        db_url, start_service, http, tmp_path):
    src = tmp_path / "corpus"
    (src / "shards").mkdir(parents=True)
    for k in range(4):
        (src / "shards" / f"part-{k}.txt").write_text(f"shard {k}\n" * 20000)
    net = tmp_path / "two.yaml"
    net.write_text(TWO_REGIONS.replace("@PATH@", str(src)))
    server = start_service(db_url, backend="local", network=str(net), isolation="none")
    team = http(server, _tenant(http(server)))
    job = {"name": "reads-corpus", "kind": "generic", "max_retries": 0,
           "run": 'cat "$SUANLI_DATASET_DIR"/shards/part-3.txt | wc -l',
           "work": {"reference_accelerator": "L20", "duration_s": 3600},
           "resources": {"accelerators": ["L20"], "count": 1},
           "dataset": {"name": "corpus"}}
    first = team.post("/v1/jobs", json=job).json()
    done = wait_for_state(team, first["id"], TERMINAL)
    assert done["state"] == "succeeded", done
    assert done["placement"]["center"] == "west"  # cheap chips beat the 1 CNY of egress
    copy = tmp_path / "runs" / "centers" / "west" / "datasets" / "corpus"
    assert sorted(p.name for p in (copy / "shards").iterdir()) == [
        f"part-{k}.txt" for k in range(4)]
    reasons = [e["reason"] for e in team.get(f"/v1/jobs/{first['id']}/events").json()["events"]]
    assert any(r.startswith("placed on west/l20; staging dataset corpus") for r in reasons)
    assert any(r.startswith("staging corpus: 100%") for r in reasons), reasons
    assert "20000" in team.get(f"/v1/jobs/{first['id']}/logs").text
    assert Decimal(done["charged"]) >= Decimal("1.00")  # 2 GB x 0.5 CNY of egress
    # The copy is there now: a second job moves nothing.
    second = team.post("/v1/jobs", json={**job, "name": "again"}).json()
    again = wait_for_state(team, second["id"], TERMINAL)
    assert again["state"] == "succeeded", again
    events = team.get(f"/v1/jobs/{second['id']}/events").json()["events"]
    assert "staging" not in [e["new"] for e in events]

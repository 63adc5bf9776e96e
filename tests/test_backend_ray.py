"""The ray backend on a real local multi-node Ray cluster: one node per center, on loopback.

The cluster is built from a small network (RAY_NETWORK) that the service test below also runs
on, so the scheduler's centers and pools are exactly the cluster's nodes and resources.
"""

from __future__ import annotations

import dataclasses
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import wait_for_state

pytest.importorskip("ray")

from typer.testing import CliRunner  # noqa: E402

from suanli.backends import _proc  # noqa: E402
from suanli.backends.ray_backend import (  # noqa: E402
    RayBackend,
    node_resources,
    placement_resources,
    start_local_ray_cluster,
)
from suanli.backends.types import BackendEvent, RunSpec  # noqa: E402
from suanli.cli.main import app  # noqa: E402
from suanli.network import load_network  # noqa: E402

CENTERS = {"c1": ["A100"], "c2": ["H20", "910B"], "c3": ["H800"]}

# Written by hand for these tests (Apache-2.0 like the project): the centers of CENTERS, one
# region (no WAN links needed), each pool named by its accelerator with 64 chips, so a job's
# allowed accelerator alone decides its center.
RAY_NETWORK = """\
name: ray-three-centers
illustrative: true
currency: CNY
centers:
""" + "".join(
    f"""\
  - id: {cid}
    name: Center {cid}
    region: r1
    lat: 30.0
    lon: 110.0
    electricity_price_per_kwh: 0.5
    pools:
""" + "".join(f"      - {{id: {acc}, accelerator: {acc}, nodes: 8, chips_per_node: 8, "
              f"price_per_chip_hour: 7.2}}\n" for acc in accs)
    for cid, accs in CENTERS.items())


@pytest.fixture(scope="module")
def network_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ray-network") / "network.yaml"
    path.write_text(RAY_NETWORK)
    return path


@pytest.fixture(scope="module")
def cluster(network_file):
    handle = start_local_ray_cluster(load_network(network_file), object_store_memory_mb=80)
    yield handle
    handle.shutdown()


@pytest.fixture(scope="module")
def backend(cluster, tmp_path_factory):
    # single-user: these tests pin placement and process plumbing (a job's host pid); the
    # sandbox on Ray is pinned by test_a_sandboxed_ray_job_gets_only_its_own_environment
    b = RayBackend(tmp_path_factory.mktemp("ray-jobs"), cluster.address, grace_s=1.0,
                   isolation="none")
    yield b
    b.shutdown(stop_jobs=True)


def spec(job_id: str, center: str, accelerator: str, run: str | None, **kw) -> RunSpec:
    return RunSpec(job_id=job_id, run=run, center=center, accelerator=accelerator, count=2,
                   pool_id=f"{center}/{accelerator}", **kw)


def wait_events(b: RayBackend, n: int, timeout_s: float = 40.0) -> dict[str, BackendEvent]:
    events: dict[str, BackendEvent] = {}
    deadline = time.monotonic() + timeout_s
    while len(events) < n and time.monotonic() < deadline:
        events.update({e.job_id: e for e in b.poll(time.monotonic())})
        time.sleep(0.05)
    assert len(events) >= n, f"only {events} after {timeout_s}s"
    return events


def wait_until(cond, timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def log_of(b: RayBackend, job_id: str) -> str:
    return (b.root_dir / job_id / "job.log").read_text()


def test_nodes_carry_center_accelerator_and_pool_resources(cluster):
    assert set(cluster.node_ids) == {"c1", "c2", "c3"}
    assert cluster.resources["c2"]["accelerator_type:910B"] > 0
    assert cluster.resources["c2"]["pool:c2/H20"] == 64
    assert node_resources(SimpleNamespace(centers=[SimpleNamespace(
        id="x", pools=[SimpleNamespace(id="p", accelerator="H20", chips=16)])]))["x"] == {
        "center:x": 1000.0, "accelerator_type:H20": 1000.0, "pool:x/p": 16.0}


def test_jobs_land_on_their_centers_node_and_output_reaches_the_log(cluster, backend):
    placed = {"on-c1": ("c1", "A100"), "on-c2": ("c2", "910B"), "on-c3": ("c3", "H800")}
    for job_id, (center, acc) in placed.items():
        backend.launch(spec(job_id, center, acc, run='echo "here $SUANLI_CENTER '
                            '$SUANLI_ACCELERATOR $SUANLI_COUNT $SUANLI_RAY_NODE_ID"'), 0.0)
    events = wait_events(backend, 3)
    for job_id, (center, acc) in placed.items():
        assert events[job_id].kind == "succeeded", events[job_id]
        result = backend.result(job_id)
        assert result is not None
        assert cluster.center_of(result["node_id"]) == center
        assert result["resources"][f"center:{center}"] == pytest.approx(0.001)
        assert result["resources"][f"accelerator_type:{acc}"] == pytest.approx(0.001)
        assert f"here {center} {acc} 2 {result['node_id']}" in log_of(backend, job_id)


def test_exit_codes_map_to_states(backend):
    backend.launch(spec("ok", "c2", "H20", run="exit 0"), 0.0)
    backend.launch(spec("bad", "c2", "H20", run="echo failing; exit 9"), 0.0)
    backend.launch(spec("sim", "c1", "A100", run=None, duration_s=0.1), 0.0)
    events = wait_events(backend, 3)
    assert events["ok"].kind == "succeeded" and events["sim"].kind == "succeeded"
    assert events["bad"].kind == "failed" and events["bad"].detail.startswith("exit 9")
    assert "failing" in log_of(backend, "bad")


def test_a_placement_no_node_carries_is_reported_unplaceable_at_once(backend):
    backend.launch(spec("nowhere", "c9", "A100", run="true"), 0.0)
    backend.launch(spec("wrong-chip", "c1", "H20", run="true"), 0.0)  # c1 has no H20
    backend.launch(spec("no-run", "c1", "A100", run=None), 0.0)
    events = {e.job_id: e for e in backend.poll(0.0)}
    assert "center:c9" in events["nowhere"].detail
    assert events["nowhere"].kind == events["wrong-chip"].kind == "unplaceable"
    assert events["no-run"].kind == "failed"
    assert "no `run` command" in events["no-run"].detail


def test_pool_chips_can_be_requested_as_a_resource(cluster, backend, tmp_path: Path):
    chips = RayBackend(tmp_path, cluster.address, request_pool_chips=True)  # reuses the driver
    assert placement_resources(spec("p", "c2", "H20", "true"), True)["pool:c2/H20"] == 2
    chips.launch(spec("pool-job", "c2", "H20", run="true"), 0.0)
    events = wait_events(chips, 1)
    assert events["pool-job"].kind == "succeeded"
    assert chips.result("pool-job")["resources"]["pool:c2/H20"] == 2
    too_many = RunSpec("greedy", "true", center="c2", accelerator="H20", count=65,
                       pool_id="c2/H20")
    chips.launch(too_many, 0.0)
    assert "pool:c2/H20" in chips.poll(0.0)[0].detail


def test_cancel_kills_the_jobs_process_group_on_its_node(backend):
    backend.launch(spec("long", "c3", "H800", run="sleep 300 & echo $! > child.pid; wait"), 0.0)
    pid_file = backend.root_dir / "long" / "work" / "child.pid"
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip())
    child = int(pid_file.read_text())
    assert backend.running() == ["long"]
    backend.stop("long", 1.0, "cancel")
    wait_until(lambda: not _alive(child))
    assert backend.running() == []
    assert backend.poll(2.0) == []  # a stop the engine asked for is not reported back
    assert "stop requested: cancel" in log_of(backend, "long")


def _events_until_done(b: RayBackend, job_id: str, timeout_s: float = 60.0) -> list[BackendEvent]:
    seen: list[BackendEvent] = []
    deadline = time.monotonic() + timeout_s
    while not any(e.kind in ("succeeded", "failed") for e in seen):
        assert time.monotonic() < deadline, f"{job_id} did not end: {seen}"
        seen += [e for e in b.poll(time.monotonic()) if e.job_id == job_id]
        time.sleep(0.05)
    return seen


def test_a_dataset_is_staged_by_a_task_on_the_target_centers_node_once(cluster, backend,
                                                                         tmp_path: Path):
    src = tmp_path / "corpus"
    (src / "shards").mkdir(parents=True)
    for k in range(4):
        (src / "shards" / f"part-{k}.txt").write_text(f"shard {k}\n" * 20000)
    run = 'wc -l < "$SUANLI_DATASET_DIR"/shards/part-3.txt'
    first = spec("reads-corpus", "c3", "H800", run=run, dataset_name="corpus",
                 dataset_path=str(src))
    backend.stage(first, 0.0)
    events = _events_until_done(backend, "reads-corpus")
    assert events[-1].kind == "succeeded", events
    progress = [e.detail for e in events if e.kind == "progress"]
    assert [p.split(":")[1].split()[0] for p in progress] == ["25%", "50%", "75%", "100%"]
    assert progress[-1].startswith("staging corpus: 100%")
    staged = backend.staging_result("reads-corpus")
    assert staged is not None and staged["ok"]
    assert cluster.center_of(staged["node_id"]) == "c3"  # the copy ran on c3's node
    copy = backend.root_dir / "centers" / "c3" / "datasets" / "corpus"
    assert staged["dst"] == str(copy)
    assert sorted(p.name for p in (copy / "shards").iterdir()) == [
        f"part-{k}.txt" for k in range(4)]
    assert "20000" in log_of(backend, "reads-corpus")
    # Already at c3: a second job's staging task finds the copy and moves nothing.
    copied_ns = (copy / "shards" / "part-0.txt").stat().st_mtime_ns
    backend.stage(dataclasses.replace(first, job_id="again"), 0.0)
    again = _events_until_done(backend, "again")
    assert again[-1].kind == "succeeded", again
    assert [e.detail for e in again if e.kind == "progress"] == [
        f"dataset already at {copy}: nothing to move"]
    assert cluster.center_of(backend.staging_result("again")["node_id"]) == "c3"
    assert (copy / "shards" / "part-0.txt").stat().st_mtime_ns == copied_ns
    # A job stopped while its data moves is never launched.
    backend.stage(dataclasses.replace(first, job_id="stopped", center="c1",
                                      accelerator="A100", pool_id="c1/A100"), 0.0)
    backend.stop("stopped", 0.1, "cancel")
    time.sleep(3.0)
    assert [e for e in backend.poll(time.monotonic()) if e.job_id == "stopped"] == []
    assert backend.result("stopped") is None and "stopped" not in backend.running()
    assert not (backend.root_dir / "stopped").exists()  # no job directory: never started
    c1 = backend.root_dir / "centers" / "c1" / "datasets"
    assert not [p.name for p in c1.glob("*.partial-*")]  # a copy cut short leaves nothing


def test_a_sandboxed_ray_job_gets_only_its_own_environment(cluster, backend, tmp_path: Path):
    """Nothing of the service's or the Ray worker's environment travels with a job, and it
    cannot read the worker's (or any other) process environment."""
    sandboxed = RayBackend(tmp_path, cluster.address, isolation="sandbox")  # reuses the driver
    run = ('env | cut -d= -f1 | sort | tr "\\n" " "; echo; '
           'cat /proc/[0-9]*/environ 2>/dev/null | tr "\\0" "\\n" | grep -c "^RAY_" || true')
    sandboxed.launch(spec("env-probe", "c1", "A100", run=run, env={"MINE": "1"}), 0.0)
    assert wait_events(sandboxed, 1)["env-probe"].kind == "succeeded"
    keys_line, ray_vars = log_of(sandboxed, "env-probe").splitlines()[1:3]
    extra = set(keys_line.split()) - {"HOME", "LANG", "PATH", "TMPDIR", "PWD", "SHLVL", "_",
                                      "MINE"}
    assert "MINE" in keys_line and all(k.startswith("SUANLI_") for k in extra), keys_line
    assert ray_vars == "0"


def _alive(pid: int) -> bool:
    fields = _proc._stat_fields(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


# -- through the service: the scheduler places, Ray runs ---------------------------------------

TERMINAL = {"succeeded", "failed", "cancelled"}


def _job(name: str, run: str, accelerator: str) -> dict:
    return {"name": name, "kind": "generic", "run": run, "max_retries": 0,
            "work": {"reference_accelerator": accelerator, "duration_s": 600},
            "resources": {"accelerators": [accelerator]}}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_service_jobs_run_on_the_ray_node_of_the_center_the_scheduler_chose(
        cluster, backend, network_file, db_url, start_service, http, tmp_path):
    """The service on backend=ray: the scheduler picks each job's center from its allowed
    accelerator; the Ray task runs on that center's node; logs, credits and cancel work."""
    # `backend` keeps the module's driver connected, so the service's backend reuses it and
    # its shutdown does not disconnect the other tests.
    server = start_service(db_url, backend="ray", ray_address=cluster.address,
                           network=str(network_file), isolation="none")
    token = http(server).post("/v1/tenants", json={"name": "alice", "credits": "100.00"})
    alice = http(server, token.json()["token"])
    wanted = {"A100": "c1", "910B": "c2", "H800": "c3"}
    run = 'echo "ran at $SUANLI_CENTER on $SUANLI_ACCELERATOR node $SUANLI_RAY_NODE_ID"'
    ids = {acc: alice.post("/v1/jobs", json=_job(f"on-{acc}", run, acc)).json()["id"]
           for acc in wanted}
    ray_backend = server.state.runner.backend
    assert ray_backend.name == "ray"
    charged = Decimal("0")
    for acc, center in wanted.items():
        done = wait_for_state(alice, ids[acc], TERMINAL)
        assert done["state"] == "succeeded", done
        charged += Decimal(done["charged"])
        assert done["placement"]["center"] == center  # the scheduler's choice ...
        assert done["placement"]["accelerator"] == acc
        result = ray_backend.result(str(ids[acc]))
        assert result is not None and result["exit_code"] == 0
        assert cluster.center_of(result["node_id"]) == center  # ... is where Ray ran it
        assert result["resources"][f"center:{center}"] == pytest.approx(0.001)
        log = alice.get(f"/v1/jobs/{ids[acc]}/logs").text
        assert f"ran at {center} on {acc} node {result['node_id']}" in log
        assert f"ray-node={result['node_id']}" in log
    usage = alice.get("/v1/usage").json()
    assert usage["reserved"] == "0.00"
    assert Decimal(usage["balance"]) == Decimal("100.00") - charged  # every hold released
    assert usage["ledger_balance"] == usage["balance"]

    pid_file = tmp_path / "child.pid"
    long = alice.post("/v1/jobs", json=_job(
        "long", f"sleep 300 & echo $! > {pid_file}; wait", "H800")).json()
    wait_for_state(alice, long["id"], {"running"})
    wait_until(pid_file.exists)
    child = int(pid_file.read_text())
    assert alice.post(f"/v1/jobs/{long['id']}/cancel").status_code == 202
    done = wait_for_state(alice, long["id"], TERMINAL)
    assert done["state"] == "cancelled", done
    assert done["placement"]["center"] == "c3"
    wait_until(lambda: not _alive(child), timeout_s=15.0)  # the process went with its task
    assert ray_backend.running() == []
    assert alice.get("/v1/usage").json()["reserved"] == "0.00"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_job_placed_on_a_center_with_no_live_node_is_re_placed_without_a_retry(
        cluster, backend, db_url, start_service, http, tmp_path):
    """c4 is the cheapest A100 center but no Ray node stands for it: the job waits and the
    scheduler re-places it on c1 with the reason in its events; max_retries 0 is not spent."""
    network = tmp_path / "network.yaml"
    network.write_text(RAY_NETWORK + """\
  - id: c4
    name: Center c4, no node attached
    region: r1
    lat: 30.0
    lon: 110.0
    electricity_price_per_kwh: 0.1
    pools:
      - {id: A100, accelerator: A100, nodes: 8, chips_per_node: 8, price_per_chip_hour: 0.5}
""")
    server = start_service(db_url, backend="ray", ray_address=cluster.address,
                           network=str(network), isolation="none")
    token = http(server).post("/v1/tenants", json={"name": "bob", "credits": "100.00"})
    bob = http(server, token.json()["token"])
    job = bob.post("/v1/jobs", json=_job("cheap", "echo ran", "A100")).json()
    done = wait_for_state(bob, job["id"], TERMINAL)
    assert done["state"] == "succeeded", done
    assert done["placement"]["center"] == "c1"
    events = bob.get(f"/v1/jobs/{job['id']}/events").json()["events"]
    reasons = [e["reason"] or "" for e in events]
    waited = [r for r in reasons if "no live Ray node carries center:c4" in r]
    assert waited and "no retry used" in waited[0], reasons
    assert not any("retry 1" in r or "retries exhausted" in r for r in reasons), reasons

    nodes = {n["center"]: n for n in http(server).get("/healthz").json()["nodes"]}
    assert set(nodes) == {"c1", "c2", "c3"}  # c4: no machine stands for it
    assert nodes["c2"]["accelerators"] == ["910B", "H20"] and nodes["c1"]["nodes"] == 1
    assert nodes["c2"]["chips"] == {"H20": 64, "910B": 64}
    status = CliRunner().invoke(app, ["status", "--url", server.url, "--token",
                                      token.json()["token"]], env={"COLUMNS": "100"})
    assert status.exit_code == 0, status.output
    line_c4 = next(line for line in status.stdout.splitlines() if line.strip().startswith("c4"))
    assert "none: jobs wait" in line_c4
    assert "1 node (910B 64, H20 64)" in status.stdout

"""Admin edits reach the scheduler: a pool shrunk through the API is obeyed by the next round,
on a real server with the local backend (both databases)."""

from __future__ import annotations

import json
import time

from conftest import wait_for_state

TERMINAL = {"succeeded", "failed", "cancelled"}


def _job(name: str, run: str, accelerator: str = "A800") -> dict:
    return {"name": name, "kind": "generic", "run": run, "max_retries": 1,
            "work": {"reference_accelerator": accelerator, "duration_s": 600},
            "resources": {"accelerators": [accelerator], "count": 1}}


def _alice(server, http):
    r = http(server).post("/v1/tenants", json={"name": "alice", "credits": "1000.00"})
    return http(server, r.json()["token"])


def _states(alice, ids) -> dict[int, str]:
    return {i: alice.get(f"/v1/jobs/{i}").json()["state"] for i in ids}


def _wait(predicate, timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_shrunk_pool_requeues_runs_and_the_next_round_obeys(db_url, start_service, http,
                                                               tmp_path):
    server = start_service(db_url, backend="local")
    admin, alice = http(server), _alice(server, http)
    ids = [alice.post("/v1/jobs", json=_job(f"j{k}", "sleep 60")).json()["id"]
           for k in range(3)]
    for i in ids:
        wait_for_state(alice, i, {"running"})
    pids = {i: json.loads((tmp_path / "runs" / str(i) / "process.json").read_text())["pid"]
            for i in ids}

    r = admin.patch("/v1/centers/alpha/pools/a800", json={"reserved_chips": 7})
    assert r.status_code == 200, r.text
    _wait(lambda: list(_states(alice, ids).values()).count("running") == 1, what="shrink")
    states = _states(alice, ids)
    requeued = [i for i, s in states.items() if s != "running"]
    assert len(requeued) == 2 and all(states[i] in ("queued", "preempted") for i in requeued)
    for i in requeued:
        reasons = [e["reason"] for e in alice.get(f"/v1/jobs/{i}/events").json()["events"]]
        assert "preempted: pool alpha/a800 was removed or shrunk" in reasons
        _wait(lambda i=i: not _alive(pids[i]), what=f"job {i}'s process still runs")
    kept = next(i for i, s in states.items() if s == "running")
    assert _alive(pids[kept])

    late = alice.post("/v1/jobs", json=_job("late", "sleep 60")).json()["id"]
    time.sleep(2.0)  # several rounds
    assert _states(alice, ids + [late]) == {**states, late: "queued"}

    r = admin.patch("/v1/centers/alpha/pools/a800", json={"reserved_chips": 0})
    assert r.status_code == 200, r.text
    # On chips again; a requeued job restores from its checkpoint first (starting).
    _wait(lambda: set(_states(alice, ids + [late]).values()) <= {"starting", "running"},
          what=f"regrow: {_states(alice, ids + [late])}")
    for i in ids + [late]:
        alice.post(f"/v1/jobs/{i}/cancel")
    for i in ids + [late]:
        wait_for_state(alice, i, TERMINAL)
    usage = alice.get("/v1/usage").json()
    assert usage["balance"] == usage["ledger_balance"] and usage["reserved"] == "0.00"


def test_jobs_no_pool_can_run_after_an_edit_fail_with_the_reason(db_url, start_service, http):
    server = start_service(db_url, backend="local")
    admin, alice = http(server), _alice(server, http)
    running = alice.post("/v1/jobs", json=_job("first", "sleep 60", "L20")).json()["id"]
    wait_for_state(alice, running, {"running"})
    waiting = alice.post("/v1/jobs", json=_job("second", "sleep 60", "L20")).json()["id"]
    wait_for_state(alice, waiting, {"queued"})

    r = admin.patch("/v1/centers/alpha/pools/l20", json={"reserved_chips": 1})
    assert r.status_code == 200, r.text
    for i in (running, waiting):
        done = wait_for_state(alice, i, TERMINAL)
        assert done["state"] == "failed"
        assert "after a network change" in done["reason"], done
    ran = alice.get(f"/v1/jobs/{running}").json()
    assert ran["run_s"] > 0  # it is charged for what it ran
    usage = alice.get("/v1/usage").json()
    assert usage["balance"] == usage["ledger_balance"] and usage["reserved"] == "0.00"


def test_a_removed_pool_requeues_its_run_on_another_pool_and_bills_each_part(
        db_url, start_service, http):
    server = start_service(db_url, backend="local")
    admin, alice = http(server), _alice(server, http)
    job = {**_job("mover", "sleep 60"),
           "resources": {"accelerators": ["L20", "A800"], "count": 1}}
    job_id = alice.post("/v1/jobs", json=job).json()["id"]
    first = wait_for_state(alice, job_id, {"running"})["placement"]["pool"]
    time.sleep(1.0)  # some run time to bill on the first pool

    r = admin.delete(f"/v1/centers/alpha/pools/{first}")
    assert r.status_code == 204, r.text  # a pool that runs jobs can be removed
    def moved() -> bool:  # on chips again (restoring from its checkpoint first) elsewhere
        job = alice.get(f"/v1/jobs/{job_id}").json()
        pool = (job.get("placement") or {}).get("pool")
        return pool not in (None, first) and job["state"] in ("starting", "running")

    _wait(moved, what="the run did not move to the other pool")
    reasons = [e["reason"] for e in alice.get(f"/v1/jobs/{job_id}/events").json()["events"]]
    assert f"preempted: pool alpha/{first} was removed or shrunk" in reasons
    time.sleep(1.0)
    alice.post(f"/v1/jobs/{job_id}/cancel")
    done = wait_for_state(alice, job_id, TERMINAL)
    assert done["run_s"] > 1.5 and float(done["charged"]) > 0
    usage = alice.get("/v1/usage").json()
    assert usage["balance"] == usage["ledger_balance"] and usage["reserved"] == "0.00"

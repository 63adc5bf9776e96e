"""Jobs run for real on the local backend through the service: the full lifecycle, and a
restart in the middle that loses nothing."""

from __future__ import annotations

import json
import os
import signal
import time
from decimal import ROUND_CEILING, Decimal

import pytest

from conftest import wait_for_state

TERMINAL = {"succeeded", "failed", "cancelled"}


def _job(name: str, run: str, accelerator: str = "L20", **extra) -> dict:
    return {"name": name, "kind": "generic", "run": run, "max_retries": 1,
            "work": {"reference_accelerator": accelerator, "duration_s": 600},
            "resources": {"accelerators": [accelerator]}, **extra}


@pytest.fixture
def alice_token(http):
    def make(server) -> str:
        r = http(server).post("/v1/tenants", json={"name": "alice", "credits": "100.00"})
        return r.json()["token"]
    return make


def test_a_job_runs_to_success_with_logs_env_and_settled_credits(db_url, start_service, http,
                                                                 alice_token):
    server = start_service(db_url, backend="local")
    alice = http(server, alice_token(server))
    run = 'echo "training on $SUANLI_COUNT $SUANLI_ACCELERATOR at $SUANLI_CENTER"; ' \
          'test -d "$SUANLI_CHECKPOINT_DIR" && echo ckpt-ok; sleep 0.5; echo done'
    job = alice.post("/v1/jobs", json=_job("lifecycle", run)).json()
    assert job["state"] == "pending" and job["reserved"] == "0.60"  # 1 L20 x 600 s x 3.60/h
    done = wait_for_state(alice, job["id"], TERMINAL)
    assert done["state"] == "succeeded", done
    assert done["placement"] == {"center": "alpha", "pool": "l20", "accelerator": "L20",
                                 "count": 1}
    states = [e["new"] for e in alice.get(f"/v1/jobs/{job['id']}/events").json()["events"]]
    assert states[0] == "pending" and states[-1] == "succeeded"
    assert "queued" in states and "running" in states
    log = alice.get(f"/v1/jobs/{job['id']}/logs").text
    assert "training on 1 L20 at alpha" in log and "ckpt-ok" in log and "done" in log
    # Settled: charge = 1 chip x measured seconds x 3.60 / 3600, rounded up to the fen (never
    # 0.00 for a job that ran), the rest of the hold refunded.
    charge = Decimal(done["charged"])
    expected = (Decimal(repr(done["run_s"])) * Decimal("3.60") / 3600).quantize(
        Decimal("0.01"), rounding=ROUND_CEILING)
    assert done["run_s"] > 0 and charge == max(expected, Decimal("0.01"))
    usage = alice.get("/v1/usage").json()
    assert usage["reserved"] == "0.00"
    assert Decimal(usage["balance"]) == Decimal("100.00") - charge
    assert usage["ledger_balance"] == usage["balance"]
    # Reading the log from an offset returns only what follows it.
    offset = len(log.encode()) - 5
    tail = alice.get(f"/v1/jobs/{job['id']}/logs", params={"offset": offset})
    assert tail.text == log[-5:] and int(tail.headers["X-Next-Offset"]) == len(log.encode())


def test_cancel_stops_a_running_job(db_url, start_service, http, alice_token):
    server = start_service(db_url, backend="local")
    alice = http(server, alice_token(server))
    job = alice.post("/v1/jobs", json=_job("long", "sleep 60")).json()
    wait_for_state(alice, job["id"], {"running"})
    assert alice.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    done = wait_for_state(alice, job["id"], TERMINAL)
    assert done["state"] == "cancelled"
    assert alice.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409


def test_restart_mid_run_loses_nothing(db_url, start_service, http, alice_token, tmp_path,
                                      request):
    """Stop the service while one job sleeps on the only L20 chip and another waits for it;
    a new service on the same database adopts the running one, then runs the queued one."""
    first = start_service(db_url, backend="local")
    token = alice_token(first)
    alice = http(first, token)
    # The job sees only its own directories: the test releases it through its work dir.
    run = "echo started; while [ ! -e release ]; do sleep 0.1; done; echo finished"
    a = alice.post("/v1/jobs", json=_job("survivor", run)).json()
    marker = tmp_path / "runs" / str(a["id"]) / "work" / "release"
    request.addfinalizer(lambda: marker.parent.is_dir() and marker.touch())
    b = alice.post("/v1/jobs", json=_job("waiter", "echo second")).json()
    running = wait_for_state(alice, a["id"], {"running"})
    # b reaches the scheduler a tick after admission (pending) and then waits for a's chip.
    assert wait_for_state(alice, b["id"], {"queued", "running"})["state"] == "queued"
    first.stop()  # the job's process runs on; nobody watches it

    second = start_service(db_url, backend="local")
    alice = http(second, token)
    assert alice.get(f"/v1/jobs/{a['id']}").json()["state"] == "running"
    time.sleep(0.5)
    assert alice.get(f"/v1/jobs/{b['id']}").json()["state"] == "queued"  # chip still taken
    marker.touch()
    done_a = wait_for_state(alice, a["id"], TERMINAL)
    done_b = wait_for_state(alice, b["id"], TERMINAL)
    assert (done_a["state"], done_b["state"]) == ("succeeded", "succeeded")
    assert done_a["started_at"] == running["started_at"]  # the same run, not a second one
    log = alice.get(f"/v1/jobs/{a['id']}/logs").text
    assert log.count("started") == 1 and "finished" in log
    reasons = [e["reason"] for e in alice.get(f"/v1/jobs/{a['id']}/events").json()["events"]]
    assert any("adopted" in r for r in reasons)
    assert alice.get("/v1/usage").json()["reserved"] == "0.00"


def test_a_job_whose_process_died_while_down_is_retried(db_url, start_service, http,
                                                        alice_token, tmp_path):
    first = start_service(db_url, backend="local")
    token = alice_token(first)
    alice = http(first, token)
    # counted in the checkpoint directory, which is kept across attempts
    run = ('echo x >> "$SUANLI_CHECKPOINT_DIR/attempts"; '
           'if [ $(wc -l < "$SUANLI_CHECKPOINT_DIR/attempts") -lt 2 ]; then sleep 60; fi')
    job = alice.post("/v1/jobs", json=_job("phoenix", run)).json()
    attempts = tmp_path / "runs" / str(job["id"]) / "checkpoint" / "attempts"
    wait_for_state(alice, job["id"], {"running"})
    deadline = time.monotonic() + 10
    while True:  # the process identity is stored just after the process starts
        handle = _stored_handle(first, job["id"])
        if handle or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert handle, "the running job's process handle was not stored"
    first.stop()
    os.killpg(handle["pgid"], signal.SIGKILL)  # the machine lost the process meanwhile
    time.sleep(0.2)

    second = start_service(db_url, backend="local")
    alice = http(second, token)
    done = wait_for_state(alice, job["id"], TERMINAL)
    assert done["state"] == "succeeded", done
    assert done["retries"] == 1
    reasons = " ".join(e["reason"] for e in
                       alice.get(f"/v1/jobs/{job['id']}/events").json()["events"])
    assert "retry 1 of 1" in reasons
    assert attempts.read_text().count("x") == 2


def _stored_handle(server, job_id: int) -> dict | None:
    from suanli.store import jobs as store_jobs

    with server.state.db.read() as conn:
        raw = store_jobs.get_job(conn, job_id)["handle"]
    return json.loads(raw) if raw else None


def test_a_job_admitted_behind_the_schedulers_back_is_found_by_the_sweep(
        db_url, start_service, http, alice_token):
    """A pending job the scheduler was never told about (another API process admitted it, or
    its inbox item was lost) is picked up from the database."""
    from suanli.service.routes_jobs import request_hash
    from suanli.store.jobs import Admission

    server = start_service(db_url, backend="local")
    alice = http(server, alice_token(server))
    svc = server.state
    body = _job("stray", "echo stray-ran")
    who = svc.tokens.lookup(alice.headers["Authorization"].split()[1])
    adm = Admission(name="stray", spec_json=json.dumps(body), request_hash=request_hash(body),
                    estimate_cost=Decimal("0.60"), est_accelerator="L20", est_count=1,
                    est_run_s=600.0, max_retries=1)
    with svc.db.write() as conn:
        job_id = svc.fast.admit(conn, who.tenant_id, adm, None)["id"]
    done = wait_for_state(alice, job_id, TERMINAL, timeout_s=30)
    assert done["state"] == "succeeded"
    assert "stray-ran" in alice.get(f"/v1/jobs/{job_id}/logs").text


def test_a_run_whose_pool_vanished_while_down_is_stopped_and_requeued(
        db_url, start_service, http, alice_token):
    """The operator removed the L20 pool while the service was down: the orphan process is
    stopped and the job queues again; with no other L20 pool it fails, saying why."""
    import sqlalchemy as sa

    first = start_service(db_url, backend="local")
    token = alice_token(first)
    alice = http(first, token)
    job = alice.post("/v1/jobs", json=_job("orphan", "sleep 60")).json()
    wait_for_state(alice, job["id"], {"running"})
    deadline = time.monotonic() + 10
    while not (handle := _stored_handle(first, job["id"])) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert handle, "the running job's process handle was not stored"
    with first.state.db.write() as conn:  # behind the running service's back
        conn.execute(sa.text("DELETE FROM pools WHERE id = 'l20'"))
    first.stop()

    second = start_service(db_url, backend="local")
    alice = http(second, token)
    done = wait_for_state(alice, job["id"], TERMINAL)
    assert done["state"] == "failed"
    reasons = " ".join(e["reason"] for e in
                       alice.get(f"/v1/jobs/{job['id']}/events").json()["events"])
    assert "no longer has 1 free chips" in reasons
    deadline = time.monotonic() + 15
    while _alive(handle["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(handle["pid"]), "the orphan process was left running"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False

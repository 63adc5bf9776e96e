"""Replicas: several `suanli up` processes on one PostgreSQL database, exactly one scheduling.

Each test runs real `suanli up` processes (subprocesses, so that kill -9 and SIGSTOP are the
real thing) on a fresh PostgreSQL schema with the local backend. Every job appends a start and
an end line to a shared marker file, so a job that runs twice, or is stopped, shows there.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import suanli
from conftest import (
    ADMIN_TOKEN,
    UpProcess,
    _pg_exec,
    _pg_schema_url,
    postgres_reachable,
)

SRC = Path(suanli.__file__).resolve().parents[1]
TERMINAL = {"succeeded", "failed", "cancelled"}
A800_CHIPS = 8


class Replica(UpProcess):
    """One `suanli up` process on a loopback port."""

    def __init__(self, db: str, home: Path, name: str) -> None:
        # Jobs append to one marker file under tmp_path, which a sandboxed job cannot see:
        # these tests pin leadership, not isolation (tests/test_isolation.py does).
        super().__init__(db, home, "--round-s", "0.5", "--single-user", name=name)
        self.db = db
        self.http = httpx.Client(base_url=self.url, timeout=30,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def leader(self) -> dict[str, Any]:
        return self.http.get("/healthz").json()["leader"]

    def stop(self) -> None:
        super().stop()
        self.http.close()


@pytest.fixture
def pg_db() -> Iterator[str]:
    if not postgres_reachable():
        pytest.skip("PostgreSQL not reachable")
    schema = f"suanli_rep_{uuid.uuid4().hex[:12]}"
    _pg_exec(f"CREATE SCHEMA {schema}")
    try:
        yield _pg_schema_url(schema)
    finally:
        _pg_exec(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def replicas(pg_db: str, tmp_path: Path) -> Iterator[list[Replica]]:
    """Two replicas on one database; the first is started (and leads) before the second."""
    home = tmp_path / "home"
    home.mkdir()
    started: list[Replica] = []
    try:
        for name in ("a", "b"):
            r = Replica(pg_db, home, name)
            started.append(r)
            r.wait_ready()
        yield started
    finally:
        for r in started:
            r.stop()
        _kill_leftover_jobs(home)


def _kill_leftover_jobs(home: Path) -> None:
    for record in (home / "runs").glob("*/process.json"):
        try:
            os.killpg(int(json.loads(record.read_text())["pgid"]), signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            pass


def _leader_of(replicas: list[Replica]) -> tuple[Replica, Replica]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        leading = [r for r in replicas if r.proc.poll() is None and r.leader()["leading"]]
        if len(leading) == 1:
            return leading[0], next(r for r in replicas if r is not leading[0])
        time.sleep(0.2)
    raise AssertionError("no single leader")


def _tenant(r: Replica) -> str:
    resp = r.http.post("/v1/tenants", json={"name": "alice", "credits": "1000.00"})
    assert resp.status_code == 201, resp.text
    return resp.json()["token"]


def _job(name: str, marker: Path, sleep_s: float) -> dict[str, Any]:
    run = (f'echo "$SUANLI_JOB_ID start $(date +%s.%N)" >> {marker}; sleep {sleep_s}; '
           f'echo "$SUANLI_JOB_ID end $(date +%s.%N)" >> {marker}')
    return {"name": name, "kind": "generic", "run": run, "max_retries": 2,
            "work": {"reference_accelerator": "A800", "duration_s": 5},
            "resources": {"accelerators": ["A800"], "count": 1}}


def _submit(clients: list[httpx.Client], body: dict[str, Any], k: int) -> int:
    """Submit through replica k (round robin), falling over to the other one with the same
    idempotency key when a replica does not answer (killed or frozen)."""
    key = f"job-{body['name']}"
    for attempt in range(2 * len(clients)):
        c = clients[(k + attempt) % len(clients)]
        try:
            resp = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": key}, timeout=3)
        except httpx.HTTPError:
            continue
        assert resp.status_code in (200, 201), resp.text
        return int(resp.json()["id"])
    raise AssertionError(f"no replica accepted {body['name']}")


def _wait_all(client: httpx.Client, ids: list[int], timeout_s: float = 120.0) -> dict[int, dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = {i: client.get(f"/v1/jobs/{i}").json() for i in ids}
        if all(j["state"] in TERMINAL for j in jobs.values()):
            return jobs
        assert time.monotonic() < deadline, {i: j["state"] for i, j in jobs.items()
                                             if j["state"] not in TERMINAL}
        time.sleep(0.5)


def _check_ran_once_and_fit(marker: Path, ids: list[int]) -> None:
    """Every job started and ended exactly once (no double start, none stopped), and never
    more jobs ran at once than the A800 pool has chips."""
    lines = [ln.split() for ln in marker.read_text().splitlines() if ln.strip()]
    starts = collections.Counter(int(jid) for jid, what, _t in lines if what == "start")
    ends = collections.Counter(int(jid) for jid, what, _t in lines if what == "end")
    assert starts == collections.Counter(ids), starts
    assert ends == collections.Counter(ids), ends
    edges = sorted((float(t), 1 if what == "start" else -1) for _j, what, t in lines)
    busy = peak = 0
    for _t, d in sorted(edges, key=lambda e: (e[0], e[1])):
        busy += d
        peak = max(peak, busy)
    assert peak <= A800_CHIPS, peak


def _check_events_fit(client: httpx.Client, ids: list[int]) -> None:
    """The stored events never hold more chips of a pool than it has."""
    edges = []
    for i in ids:
        events = client.get(f"/v1/jobs/{i}/events").json()["events"]
        start = None
        for e in events:
            if e["new"] == "starting" and start is None:
                start = e["at"]
            elif e["new"] in TERMINAL | {"queued", "preempted"} and start is not None:
                edges += [(start, 1), (e["at"], -1)]
                start = None
    busy = peak = 0
    for _t, d in sorted(edges):
        busy += d
        peak = max(peak, busy)
    assert peak <= A800_CHIPS, peak


def _restored(client: httpx.Client, ids: list[int]) -> str:
    """The restart notes the new leader wrote (adoptions of runs the old one started)."""
    return " ".join(e["reason"] for i in ids
                    for e in client.get(f"/v1/jobs/{i}/events").json()["events"]
                    if "restart" in e["reason"])


def _check_ledger(client: httpx.Client, ids: list[int]) -> None:
    """Balance == sum of the ledger, nothing held, and each job refunded and settled once
    (a job may hold several times: at admission, re-priced at placement, extended as it runs)."""
    usage = client.get("/v1/usage").json()
    assert usage["balance"] == usage["ledger_balance"], usage
    assert usage["reserved"] == "0.00", usage
    entries = client.get("/v1/ledger").json()["entries"]
    per_job = collections.Counter((e["job_id"], e["kind"]) for e in entries if e["job_id"])
    for i in ids:
        assert per_job[(i, "reserve")] >= 1 and per_job[(i, "refund")] == 1, per_job
        assert per_job[(i, "settle")] == 1, per_job


def test_only_one_replica_leads(replicas):
    a, b = replicas
    for _ in range(10):
        la, lb = a.leader(), b.leader()
        assert [la["leading"], lb["leading"]].count(True) == 1, (la, lb)
        assert la["holder"] == lb["holder"] == (a if la["leading"] else b).leader()["replica"]
        assert la["token"] == lb["token"] >= 1
        time.sleep(0.2)
    status = subprocess.run(
        [sys.executable, "-c", "from suanli.cli.main import app; app()", "status", "--url",
         b.url, "--token", ADMIN_TOKEN], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(SRC)})
    assert status.returncode == 0, status.stderr
    assert "leader:" in status.stdout and "follower" in status.stdout


def test_leader_killed_mid_burst_every_job_runs_exactly_once(replicas, tmp_path):
    leader, other = _leader_of(replicas)
    token = _tenant(leader)
    marker = tmp_path / "marker"
    clients = [httpx.Client(base_url=r.url, headers={"Authorization": f"Bearer {token}"})
               for r in (leader, other)]
    ids: list[int] = []
    killed_at = None
    for k in range(40):
        ids.append(_submit(clients, _job(f"j{k}", marker, 2), k))
        if k == 15:
            time.sleep(1.5)  # some jobs are running when it dies
            os.kill(leader.proc.pid, signal.SIGKILL)
            leader.proc.wait()
            killed_at = time.monotonic()
    deadline = time.monotonic() + 30
    while not other.leader()["leading"]:
        assert time.monotonic() < deadline, "no takeover"
        time.sleep(0.1)
    takeover_s = time.monotonic() - killed_at
    assert takeover_s < 15, takeover_s
    jobs = _wait_all(clients[1], ids)
    assert {j["state"] for j in jobs.values()} == {"succeeded"}, jobs
    _check_ran_once_and_fit(marker, ids)
    _check_events_fit(clients[1], ids)
    _check_ledger(clients[1], ids)
    # It died with jobs on chips: the new leader re-attached to their processes (adopted, or
    # found ended with their exit codes: the jobs are short next to the lease).
    assert "restored after restart: process" in _restored(clients[1], ids)
    for c in clients:
        c.close()


def test_a_frozen_leader_wakes_up_a_follower_and_acts_on_nothing(replicas, tmp_path):
    leader, other = _leader_of(replicas)
    token = _tenant(leader)
    marker = tmp_path / "marker"
    clients = [httpx.Client(base_url=r.url, headers={"Authorization": f"Bearer {token}"})
               for r in (leader, other)]
    ids = [_submit(clients, _job(f"f{k}", marker, 3), k) for k in range(20)]
    time.sleep(2.0)  # the leader is starting and running them
    os.kill(leader.proc.pid, signal.SIGSTOP)
    time.sleep(12.0)
    assert other.leader()["leading"], "the other replica did not take over"
    os.kill(leader.proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while leader.leader()["leading"]:
        assert time.monotonic() < deadline, "the woken replica still believes it leads"
        time.sleep(0.1)
    woken = leader.leader()
    assert woken["holder"] == other.leader()["replica"]
    jobs = _wait_all(clients[1], ids)
    assert {j["state"] for j in jobs.values()} == {"succeeded"}, jobs
    _check_ran_once_and_fit(marker, ids)
    _check_events_fit(clients[1], ids)
    _check_ledger(clients[1], ids)
    assert "restored after restart: process" in _restored(clients[1], ids)  # froze mid-run
    assert "stepping down" in leader.log.read_text()
    for c in clients:
        c.close()


def test_a_cancel_through_a_follower_stops_the_job_and_charges_what_ran(replicas, tmp_path):
    leader, follower = _leader_of(replicas)
    token = _tenant(leader)
    marker = tmp_path / "marker"
    alice = httpx.Client(base_url=follower.url, headers={"Authorization": f"Bearer {token}"})
    job_id = _submit([alice], _job("long", marker, 600), 0)
    deadline = time.monotonic() + 30
    while alice.get(f"/v1/jobs/{job_id}").json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1.0)
    assert alice.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    done = _wait_all(alice, [job_id], timeout_s=30)[job_id]
    assert done["state"] == "cancelled"
    assert done["run_s"] > 0
    record = json.loads((marker.parent / "home" / "runs" / str(job_id) / "process.json")
                        .read_text())
    deadline = time.monotonic() + 15
    while Path(f"/proc/{record['pid']}").exists() and _not_zombie(record["pid"]):
        assert time.monotonic() < deadline, "the cancelled job's process still runs"
        time.sleep(0.2)
    _check_ledger(alice, [job_id])
    alice.close()


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_second_service_on_one_sqlite_file_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    db = f"sqlite:///{tmp_path / 'one.db'}"
    first = Replica(db, home, "first")
    try:
        first.wait_ready()
        second = Replica(db, home, "second")
        try:
            assert second.proc.wait(timeout=60) != 0
        finally:
            second.stop()
        text = second.log.read_text()
        assert "another suanli service already uses the SQLite database" in text, text
        assert first.http.get("/healthz").json()["leader"]["leading"]
    finally:
        first.stop()


def test_an_admin_edit_through_a_follower_reaches_the_leader(replicas, tmp_path):
    leader, follower = _leader_of(replicas)
    token = _tenant(leader)
    marker = tmp_path / "marker"
    alice = httpx.Client(base_url=follower.url, headers={"Authorization": f"Bearer {token}"})
    ids = [_submit([alice], _job(f"e{k}", marker, 600), 0) for k in range(2)]
    deadline = time.monotonic() + 30
    while {alice.get(f"/v1/jobs/{i}").json()["state"] for i in ids} != {"running"}:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    r = follower.http.patch("/v1/centers/alpha/pools/a800", json={"reserved_chips": 7})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 15
    while sorted(alice.get(f"/v1/jobs/{i}").json()["state"] for i in ids) != \
            ["preempted", "running"] and sorted(alice.get(f"/v1/jobs/{i}").json()["state"]
                                                for i in ids) != ["queued", "running"]:
        assert time.monotonic() < deadline, "the leader did not obey the follower's edit"
        time.sleep(0.2)
    for i in ids:
        alice.post(f"/v1/jobs/{i}/cancel")
    _wait_all(alice, ids, timeout_s=30)
    _check_ledger(alice, ids)
    alice.close()


def test_graceful_shutdowns_leave_jobs_running_and_hand_the_lease_over(replicas, tmp_path):
    """A follower that stops touches no job; a leader that stops (jobs left running) hands
    the lease back at once, and the next leader adopts its jobs, which finish once."""
    leader, follower = _leader_of(replicas)
    token = _tenant(leader)
    marker = tmp_path / "marker"
    clients = [httpx.Client(base_url=r.url, headers={"Authorization": f"Bearer {token}"})
               for r in (leader, follower)]
    ids = [_submit(clients, _job(f"g{k}", marker, 20), k) for k in range(4)]
    deadline = time.monotonic() + 30
    while {clients[0].get(f"/v1/jobs/{i}").json()["state"] for i in ids} != {"running"}:
        assert time.monotonic() < deadline
        time.sleep(0.2)

    third = Replica(leader.db, leader.log.parent, "c")
    try:
        third.wait_ready()
        assert not third.leader()["leading"]
        third.stop()  # a follower's graceful shutdown
        states = {clients[0].get(f"/v1/jobs/{i}").json()["state"] for i in ids}
        assert states == {"running"}, states

        leader.proc.terminate()  # the leader's graceful shutdown
        t0 = time.monotonic()
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert leader.proc.wait(timeout=30) in (0, -signal.SIGTERM)
        while not follower.leader()["leading"]:
            assert time.monotonic() - t0 < 3.0, "the lease was not handed over"
            time.sleep(0.05)
        jobs = _wait_all(clients[1], ids, timeout_s=60)
        assert {j["state"] for j in jobs.values()} == {"succeeded"}, jobs
        _check_ran_once_and_fit(marker, ids)
        _check_ledger(clients[1], ids)
        reasons = " ".join(e["reason"] for i in ids
                           for e in clients[1].get(f"/v1/jobs/{i}/events").json()["events"])
        assert "adopted" in reasons
    finally:
        third.stop()
        for c in clients:
            c.close()

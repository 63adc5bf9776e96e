"""An elastic job in the live service: submitted with `count: {min, max}`, it runs wide while
alone, is checkpointed and restarted narrower (its process sees the new SUANLI_COUNT, its
row the new count) when another job arrives, and widens again when that one leaves."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import wait_for_state

TERMINAL = {"succeeded", "failed", "cancelled"}


def _tenant(admin) -> str:
    r = admin.post("/v1/tenants", json={"name": "team", "credits": "100000000.00"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _job(name: str, count, duration_s: float, run: str) -> dict:
    return {"name": name, "kind": "generic", "run": run,
            "work": {"reference_accelerator": "A800", "duration_s": duration_s},
            "resources": {"accelerators": ["A800"], "count": count},
            "checkpoint_restore_s": 1}


def _wait_for_lines(path: Path, n: int, timeout_s: float = 30.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= n:
            return lines
        assert time.monotonic() < deadline, f"{path}: {lines}"
        time.sleep(0.1)


def _wait_for_count(client, job_id: int, count: int, timeout_s: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = wait_for_state(client, job_id, {"running"} | TERMINAL, timeout_s)
        if job["state"] == "running" and job["placement"]["count"] == count:
            return job
        assert job["state"] not in TERMINAL and time.monotonic() < deadline, job
        time.sleep(0.1)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_elastic_job_is_resized_by_the_elastic_policy_as_load_changes(
        db_url, start_service, http, tmp_path):
    server = start_service(db_url, backend="local", isolation="none", policy="elastic_jct",
                           realloc_interval_s=0.0)
    team = http(server, _tenant(http(server)))
    counts = tmp_path / "counts.txt"
    run = f'echo "$SUANLI_COUNT" >> {counts}; sleep 600'
    r = team.post("/v1/jobs", json=_job("wide", {"min": 2, "max": 8}, 36000.0, run))
    assert r.status_code == 201, r.text
    wide = r.json()["id"]
    _wait_for_count(team, wide, 8)  # alone on the 8-chip pool: all of it
    assert _wait_for_lines(counts, 1) == ["8"]

    r = team.post("/v1/jobs", json=_job("short", 4, 600.0, "sleep 600"))
    assert r.status_code == 201, r.text
    short = r.json()["id"]
    wait_for_state(team, short, {"running"})
    job = _wait_for_count(team, wide, 4)  # narrowed to make room, restarted at 4
    assert _wait_for_lines(counts, 2) == ["8", "4"]
    events = team.get(f"/v1/jobs/{wide}/events").json()["events"]
    reasons = [e["reason"] for e in events]
    assert any("resized from 8 to 4 chips" in why for why in reasons), reasons
    assert job["placement"]["count"] == 4

    team.post(f"/v1/jobs/{short}/cancel")
    wait_for_state(team, short, TERMINAL)
    _wait_for_count(team, wide, 8)  # the pool is free again: widened
    assert _wait_for_lines(counts, 3) == ["8", "4", "8"]
    team.post(f"/v1/jobs/{wide}/cancel")
    done = wait_for_state(team, wide, TERMINAL)
    assert done["state"] == "cancelled"
    assert float(done["charged"]) > 0  # billed at the counts that ran (store/billing.py)

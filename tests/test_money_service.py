"""Money that cannot leak, against a real server: an overrunning job is stopped when its
tenant's credits run out and the balance never goes below zero; a broke tenant is refused with
the numbers; a job placed on a dearer pool is re-priced before it starts; and parallel
submissions never pass a quota or a balance."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_CEILING, Decimal

from conftest import wait_for_state

TERMINAL = {"succeeded", "failed", "cancelled"}
A800_PRICE = Decimal("33.33")  # the tiny network's dear pool, per chip-hour


def _tenant(admin, name: str, credits: str, **extra) -> str:
    r = admin.post("/v1/tenants", json={"name": name, "credits": credits, **extra})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _job(name: str, run: str, accelerators: list[str], duration_s: float,
         reference: str | None = None) -> dict:
    return {"name": name, "kind": "generic", "run": run, "max_retries": 0,
            "work": {"reference_accelerator": reference or accelerators[0],
                     "duration_s": duration_s},
            "resources": {"accelerators": accelerators, "count": 1}}


def _ceil_cent(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_CEILING)


def test_an_overrunning_job_is_stopped_when_the_credits_run_out(db_url, start_service, http):
    server = start_service(db_url, backend="local")
    admin = http(server)
    alice = http(server, _tenant(admin, "alice", credits="0.15"))
    # Estimated at 1 s (0.01 CNY); it runs 30 s on a pool costing 0.00926 CNY a second.
    r = alice.post("/v1/jobs", json=_job("overrun", "sleep 30", ["A800"], 1.0))
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["reserved"] == "0.10"  # the minimum hold: 10 s of the placement, not 0.01
    deadline = time.monotonic() + 40
    while (cur := alice.get(f"/v1/jobs/{job['id']}").json())["state"] not in TERMINAL:
        usage = alice.get("/v1/usage").json()
        assert Decimal(usage["balance"]) >= 0 and usage["ledger_balance"] == usage["balance"]
        assert time.monotonic() < deadline, cur
        time.sleep(0.2)
    done = cur
    assert done["state"] == "cancelled", done
    assert done["reason"].startswith("credits exhausted: spent "), done["reason"]
    assert "of hold 0.15 CNY, balance 0.00" in done["reason"]
    assert 5.0 < done["run_s"] < 20.0  # stopped when 0.15 CNY ran out, long before 30 s
    charged = Decimal(done["charged"])
    assert charged == _ceil_cent(Decimal(repr(done["run_s"])) * A800_PRICE / 3600)
    assert charged <= Decimal(done["reserved"]) == Decimal("0.15")
    usage = alice.get("/v1/usage").json()
    assert usage["reserved"] == "0.00" and usage["ledger_balance"] == usage["balance"]
    assert Decimal(usage["balance"]) == Decimal("0.15") - charged >= 0
    kinds = [e["kind"] for e in alice.get("/v1/ledger").json()["entries"]]
    assert kinds.count("reserve") == 2 and kinds.count("refund") == 1  # held, then extended
    # Broke: the next job is refused, with what is available and what it needs.
    r = alice.post("/v1/jobs", json=_job("again", "sleep 30", ["A800"], 1.0))
    assert r.status_code == 402
    body = r.json()
    assert (body["available"], body["needed"]) == (usage["balance"], "0.10")
    assert body["field"] == "credits" and "needs 0.10" in body["error"]


def test_an_overrunning_job_is_still_stopped_after_a_restart(db_url, start_service, http):
    """The hold lives in the database: a new service adopts the run and goes on checking it;
    the time the service was down is billed (the process ran on)."""
    first = start_service(db_url, backend="local")
    token = _tenant(http(first), "alice", credits="0.15")
    job = http(first, token).post("/v1/jobs", json=_job("overrun", "sleep 30", ["A800"],
                                                        1.0)).json()
    started = wait_for_state(http(first, token), job["id"], {"running"})
    first.stop()  # the process runs on; nobody checks its spend
    second = start_service(db_url, backend="local")
    alice = http(second, token)
    done = wait_for_state(alice, job["id"], TERMINAL, timeout_s=40)
    assert done["state"] == "cancelled" and done["reason"].startswith("credits exhausted")
    assert done["started_at"] == started["started_at"]  # the same run, adopted
    assert Decimal(done["charged"]) <= Decimal(done["reserved"]) == Decimal("0.15")
    usage = alice.get("/v1/usage").json()
    assert usage["reserved"] == "0.00" and usage["ledger_balance"] == usage["balance"]
    assert Decimal(usage["balance"]) == Decimal("0.15") - Decimal(done["charged"]) >= 0
    kinds = [e["kind"] for e in alice.get("/v1/ledger").json()["entries"]]
    assert kinds.count("refund") == 1 and kinds.count("settle") == 1


def test_a_job_placed_on_a_dearer_pool_is_repriced_before_it_starts(db_url, start_service,
                                                                     http):
    server = start_service(db_url, backend="local")
    admin = http(server)
    rich = http(server, _tenant(admin, "rich", credits="100.00"))
    poor = http(server, _tenant(admin, "poor", credits="1.00"))
    # The cheap pool (1 L20) is taken for a while.
    blocker = rich.post("/v1/jobs", json=_job("blocker", "sleep 15", ["L20"], 1.0)).json()
    wait_for_state(rich, blocker["id"], {"running"})
    # Both are priced on L20 (the cheapest: 0.36 for 360 s) and can only go to the A800.
    spec = _job("flexible", "sleep 3", ["L20", "A800"], 360.0, reference="L20")
    poor_job = poor.post("/v1/jobs", json=spec).json()
    assert poor_job["estimate"]["accelerator"] == "L20" and poor_job["reserved"] == "0.36"
    refused = wait_for_state(poor, poor_job["id"], TERMINAL)
    assert refused["state"] == "cancelled", refused
    assert refused["reason"].startswith("insufficient credits at placement on alpha/a800"), \
        refused["reason"]
    assert refused["run_s"] == 0 and refused["charged"] == "0.00"
    usage = poor.get("/v1/usage").json()
    assert (usage["balance"], usage["reserved"]) == ("1.00", "0.00")
    events = poor.get(f"/v1/jobs/{poor_job['id']}/events").json()["events"]
    assert "starting" not in [e["new"] for e in events]  # never told to start

    rich_job = rich.post("/v1/jobs", json=spec).json()
    done = wait_for_state(rich, rich_job["id"], TERMINAL)
    assert done["state"] == "succeeded", done
    assert done["placement"]["pool"] == "a800"
    assert Decimal(done["reserved"]) > Decimal("0.36")  # re-priced at 33.33/h
    assert Decimal(done["charged"]) == _ceil_cent(
        Decimal(repr(done["run_s"])) * A800_PRICE / 3600)  # charged where it ran
    rich.post(f"/v1/jobs/{blocker['id']}/cancel")
    wait_for_state(rich, blocker["id"], TERMINAL)
    usage = rich.get("/v1/usage").json()
    assert usage["reserved"] == "0.00" and usage["ledger_balance"] == usage["balance"]


def _burst(server, http, token: str, spec: dict, n: int = 20) -> list[int]:
    clients = [http(server, token) for _ in range(n)]
    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(lambda c: c.post("/v1/jobs", json=spec), clients))
    return [r.status_code for r in answers]


A800_MINUTE = {"name": "minute", "kind": "generic", "max_retries": 0,
               "work": {"reference_accelerator": "A800", "duration_s": 60},
               "resources": {"accelerators": ["A800"], "count": 1}}  # 0.56 CNY


def test_parallel_submissions_never_pass_a_quota(db_url, start_service, http):
    server = start_service(db_url)
    admin = http(server)
    token = _tenant(admin, "alice", credits="1000", quotas={"A800": 5})
    codes = _burst(server, http, token, A800_MINUTE)
    assert sorted(codes) == [201] * 5 + [409] * 15
    assert len(http(server, token).get("/v1/jobs").json()["jobs"]) == 5


def test_parallel_submissions_never_pass_the_balance(db_url, start_service, http):
    server = start_service(db_url)
    admin = http(server)
    token = _tenant(admin, "alice", credits="2.80")  # five holds of 0.56
    codes = _burst(server, http, token, A800_MINUTE)
    assert sorted(codes) == [201] * 5 + [402] * 15
    usage = http(server, token).get("/v1/usage").json()
    assert (usage["balance"], usage["reserved"]) == ("0.00", "2.80")
    assert usage["ledger_balance"] == usage["balance"]

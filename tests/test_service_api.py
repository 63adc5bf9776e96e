"""The API's rules against a real server and real databases: auth and tenant isolation,
idempotent submission, exact credits and quotas, error bodies that name the field."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

A800_HOUR = {  # costs exactly 33.33 CNY on the tiny network (1 A800 x 1 h x 33.33)
    "name": "hour-on-a800", "kind": "generic",
    "work": {"reference_accelerator": "A800", "duration_s": 3600},
    "resources": {"accelerators": ["A800"], "count": 1},
}


def _tenant(admin, name: str, credits: str = "1000", **extra) -> str:
    r = admin.post("/v1/tenants", json={"name": name, "credits": credits, **extra})
    assert r.status_code == 201, r.text
    return r.json()["token"]


@pytest.fixture
def api(db_url, start_service, http):
    server = start_service(db_url)
    return server, http(server)


def test_missing_or_wrong_token_is_401_and_names_the_header(api, http):
    server, _admin = api
    for client in (http(server, None), http(server, "sl_not-a-token")):
        r = client.get("/v1/jobs")
        assert r.status_code == 401
        assert r.json()["field"] == "Authorization"
    r = http(server, None).post("/v1/jobs", json=A800_HOUR)
    assert r.status_code == 401


def test_a_tenant_sees_and_cancels_only_its_own_jobs(api, http):
    server, admin = api
    alice = http(server, _tenant(admin, "alice"))
    bob = http(server, _tenant(admin, "bob"))
    job = alice.post("/v1/jobs", json=A800_HOUR).json()
    for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['id']}/events",
                 f"/v1/jobs/{job['id']}/logs"):
        r = bob.get(path)
        assert r.status_code == 404, path
        assert r.json()["field"] == "job_id"
    assert bob.post(f"/v1/jobs/{job['id']}/cancel").status_code == 404
    assert bob.get("/v1/jobs").json()["jobs"] == []
    assert [j["id"] for j in alice.get("/v1/jobs").json()["jobs"]] == [job["id"]]
    assert alice.get(f"/v1/jobs/{job['id']}").json()["spec"]["name"] == "hour-on-a800"


def test_admin_only_endpoints_refuse_tenants(api, http):
    server, admin = api
    alice = http(server, _tenant(admin, "alice"))
    assert alice.post("/v1/tenants", json={"name": "mallory"}).status_code == 403
    assert alice.patch("/v1/centers/alpha/pools/l20",
                       json={"price_per_chip_hour": "0.01"}).status_code == 403
    assert alice.get("/v1/centers").status_code == 200  # reading the network is for all


def test_same_idempotency_key_returns_the_first_job(api, http):
    server, admin = api
    alice = http(server, _tenant(admin, "alice"))
    first = alice.post("/v1/jobs", json=A800_HOUR, headers={"Idempotency-Key": "k-1"})
    again = alice.post("/v1/jobs", json=A800_HOUR, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(alice.get("/v1/jobs").json()["jobs"]) == 1
    assert alice.get("/v1/usage").json()["reserved"] == "33.33"  # held once, not twice
    changed = alice.post("/v1/jobs", json={**A800_HOUR, "name": "other"},
                         headers={"Idempotency-Key": "k-1"})
    assert changed.status_code == 409
    assert changed.json()["field"] == "Idempotency-Key"
    # The key is per tenant: another tenant may use the same one.
    bob = http(server, _tenant(admin, "bob"))
    assert bob.post("/v1/jobs", json=A800_HOUR,
                    headers={"Idempotency-Key": "k-1"}).status_code == 201


def test_concurrent_retries_with_one_key_make_one_job(api, http):
    server, admin = api
    token = _tenant(admin, "alice")
    clients = [http(server, token) for _ in range(8)]

    def submit(c):
        return c.post("/v1/jobs", json=A800_HOUR, headers={"Idempotency-Key": "race"})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(submit, clients * 3))
    assert {r.status_code for r in answers} <= {200, 201}
    assert sum(r.status_code == 201 for r in answers) == 1
    assert len({r.json()["id"] for r in answers}) == 1
    usage = clients[0].get("/v1/usage").json()
    assert usage["reserved"] == "33.33"
    assert usage["balance"] == "966.67"


def test_credits_are_exact_and_the_ledger_sums_to_the_balance(api, http):
    server, admin = api
    alice = http(server, _tenant(admin, "alice", credits="100.00"))
    ids = []
    for _ in range(3):
        r = alice.post("/v1/jobs", json=A800_HOUR)
        assert r.status_code == 201, r.text
        assert r.json()["estimate"]["cost"] == "33.33"
        ids.append(r.json()["id"])
    usage = alice.get("/v1/usage").json()
    assert usage["balance"] == "0.01"
    assert usage["reserved"] == "99.99"
    r = alice.post("/v1/jobs", json=A800_HOUR)
    assert r.status_code == 402
    body = r.json()
    assert (body["balance"], body["reserved"], body["required"]) == ("0.01", "99.99", "33.33")
    assert body["field"] == "credits"
    # A cancelled job that never ran is settled at 0: its hold comes back in full.
    alice.post(f"/v1/jobs/{ids[0]}/cancel")
    usage = alice.get("/v1/usage").json()
    assert (usage["balance"], usage["reserved"], usage["spent"]) == ("33.34", "66.66", "0.00")
    entries = alice.get("/v1/ledger").json()["entries"]
    assert sum(Decimal(e["amount"]) for e in entries) == Decimal("33.34")
    assert sorted(e["kind"] for e in entries) == sorted(
        ["grant", "reserve", "reserve", "reserve", "refund", "settle"])
    assert usage["ledger_balance"] == usage["balance"]
    # A voucher from the city tops the balance up, exactly.
    r = admin.post("/v1/tenants/alice/credits", json={"amount": "0.66", "note": "voucher"})
    assert r.json()["balance"] == "34.00"


def test_chip_quota_refuses_jobs_past_the_limit(api, http):
    server, admin = api
    alice = http(server, _tenant(admin, "alice", credits="1000", quotas={"A800": 2}))
    assert alice.post("/v1/jobs", json=A800_HOUR).status_code == 201
    assert alice.post("/v1/jobs", json=A800_HOUR).status_code == 201
    r = alice.post("/v1/jobs", json=A800_HOUR)
    assert r.status_code == 409
    body = r.json()
    assert (body["accelerator"], body["limit"], body["in_use"], body["requested"]) == \
        ("A800", 2, 2, 1)
    admin.put("/v1/tenants/alice/quotas", json={"A800": None})
    assert alice.post("/v1/jobs", json=A800_HOUR).status_code == 201


def test_yaml_bodies_are_accepted_like_json(api, http):
    server, admin = api
    alice = http(server, _tenant(admin, "alice"))
    text = ("name: from-yaml\nkind: generic\nwork: {reference_accelerator: L20, "
            "duration_s: 60}\nrun: echo hi\n")
    r = alice.post("/v1/jobs", content=text, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "from-yaml"


@pytest.mark.parametrize(("body", "ctype", "status", "field"), [
    (b"", "application/json", 400, "<body>"),
    (b"{not json", "application/json", 400, "<body>"),
    (b"kind: [", "application/yaml", 400, "<body>"),
    (b"[1, 2]", "application/json", 422, "<body>"),
    (b'{"kind": "juggle", "name": "x"}', "application/json", 422, "kind"),
    (b'{"kind": "generic", "name": "x", "work": {"reference_accelerator": "L20"}}',
     "application/json", 422, "work"),
    (b'{"kind": "generic", "name": "x", "work": {"reference_accelerator": "L20", '
     b'"duration_s": -1}}', "application/json", 422, "work.duration_s"),
    (b'{"kind": "generic", "name": "x", "work": {"reference_accelerator": "L20", '
     b'"duration_s": 5}, "resources": {"count": 0}}', "application/json", 422,
     "resources.count"),
    (b'{"kind": "generic", "name": "x", "work": {"reference_accelerator": "L20", '
     b'"duration_s": 5}, "colour": "red"}', "application/json", 422, "colour"),
    (b'{"kind": "generic", "name": "x", "work": {"reference_accelerator": "L20", '
     b'"duration_s": 5}, "resources": {"accelerators": ["H100"]}}', "application/json", 422,
     "resources"),
    (b"name: x", "text/csv", 415, "Content-Type"),
])
def test_malformed_submissions_get_a_4xx_naming_the_field(api, http, body, ctype, status,
                                                          field):
    server, admin = api
    alice = http(server, _tenant(admin, "alice"))
    r = alice.post("/v1/jobs", content=body, headers={"Content-Type": ctype})
    assert r.status_code == status, r.text
    err = r.json()
    assert set(err) >= {"error", "field", "value"}
    assert err["field"] is not None and err["field"].startswith(field), err


def test_bad_query_and_path_parameters_are_422_with_the_field(api, http):
    server, admin = api
    r = admin.get("/v1/jobs/not-a-number")
    assert r.status_code == 422 and r.json()["field"] == "job_id"
    r = admin.get("/v1/jobs", params={"state": "sleeping"})
    assert r.status_code == 422 and r.json()["field"] == "state"
    r = admin.post("/v1/tenants", json={"name": "x", "credits": "1.234"})
    assert r.status_code == 422 and r.json()["field"] == "credits"
    r = admin.post("/v1/tenants", json={"name": "x", "quotas": {"NoSuchChip": 3}})
    assert r.status_code == 422 and "NoSuchChip" in r.json()["error"]


def test_admin_edits_prices_and_the_estimate_follows(api, http):
    server, admin = api
    alice = http(server, _tenant(admin, "alice"))
    r = admin.patch("/v1/centers/alpha/pools/a800", json={"price_per_chip_hour": "10.00"})
    assert r.status_code == 200, r.text
    assert alice.post("/v1/jobs", json=A800_HOUR).json()["estimate"]["cost"] == "10.00"
    r = admin.post("/v1/centers", json={
        "id": "beta", "name": "Beta", "region": "r2", "lat": 1, "lon": 2,
        "electricity_price_per_kwh": 0.4,
        "pools": [{"id": "a800", "accelerator": "a800", "nodes": 1, "price_per_chip_hour": 5}]})
    assert r.status_code == 201, r.text
    assert r.json()["pools"][0]["accelerator"] == "A800"
    assert alice.post("/v1/jobs", json=A800_HOUR).json()["estimate"]["cost"] == "5.00"
    assert admin.delete("/v1/centers/beta").status_code == 204
    centers = alice.get("/v1/centers").json()["centers"]
    assert [c["id"] for c in centers] == ["alpha"]


def test_metrics_and_health(api, http):
    server, admin = api
    alice = http(server, _tenant(admin, "alice"))
    alice.post("/v1/jobs", json=A800_HOUR)
    assert http(server, None).get("/metrics").status_code == 401
    text = alice.get("/metrics").text
    assert 'suanli_submissions_total{result="accepted"} 1' in text
    assert 'suanli_jobs{state="pending"} 1' in text
    assert "suanli_http_request_duration_seconds_bucket" in text
    assert http(server, None).get("/healthz").json()["ok"] is True
    schema = http(server, None).get("/openapi.json").json()
    assert "/v1/jobs" in schema["paths"] and "JobSpec" in schema["components"]["schemas"]

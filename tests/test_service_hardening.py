"""Hostile input against a real server on both databases: each bad input of issue 8 gets a 4xx
that names the field, never a 500; a large anonymous body is refused without being read."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from conftest import ADMIN_TOKEN, TINY_NETWORK, UpProcess, wait_for_state

JOB = {
    "name": "hour-on-a800", "kind": "generic",
    "work": {"reference_accelerator": "A800", "duration_s": 3600},
    "resources": {"accelerators": ["A800"], "count": 1},
}
JOB_YAML = """\
name: hour-on-a800
kind: generic
work: {reference_accelerator: A800, duration_s: 3600}
resources: {accelerators: [A800], count: 1}
"""


def _tenant(admin: httpx.Client, name: str, credits: str = "1000") -> str:
    r = admin.post("/v1/tenants", json={"name": name, "credits": credits})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _refused(r: httpx.Response, status: int, field: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field, body
    return body


@pytest.fixture
def api(start_service, http, db_url):
    server = start_service(db_url)
    admin = http(server)
    r = admin.post("/v1/tenants/admin/credits", json={"amount": "100000"})
    assert r.status_code == 200, r.text
    return server, admin


# -- nesting, numbers, strings ----------------------------------------------------------------

def test_json_nested_ten_thousand_deep_is_refused_naming_the_body(api):
    _server, admin = api
    deep = b"[" * 10_000 + b"]" * 10_000
    for path in ("/v1/jobs", "/v1/plan", "/v1/tenants"):
        r = admin.post(path, content=deep, headers={"Content-Type": "application/json"})
        body = _refused(r, 422, "<body>")
        assert "nested deeper than 64" in body["error"]
    inside = {**JOB, "env": {"X": json.loads("[" * 100 + "]" * 100)}}
    r = admin.post("/v1/jobs", json=inside)
    assert r.status_code == 422 and r.json()["field"].startswith("env.X.0.0"), r.text


def test_yaml_nested_ten_thousand_deep_is_refused_and_aliases_are_not_expanded(api):
    _server, admin = api
    yaml_headers = {"Content-Type": "application/yaml"}
    r = admin.post("/v1/jobs", content="[" * 10_000 + "]" * 10_000, headers=yaml_headers)
    assert "nested deeper than 64" in _refused(r, 422, "<body>")["error"]
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    r = admin.post("/v1/jobs", content=laughs, headers=yaml_headers)
    assert r.status_code == 400 and "aliases are not accepted" in r.json()["error"], r.text
    r = admin.post("/v1/jobs", content=JOB_YAML, headers=yaml_headers)
    assert r.status_code == 201, r.text


def test_nan_and_infinity_are_refused_naming_the_field(api):
    _server, admin = api
    cases = [
        ('"duration_s": NaN', "work.duration_s"),
        ('"duration_s": Infinity', "work.duration_s"),
        ('"duration_s": -Infinity', "work.duration_s"),
        ('"duration_s": 1e400', "work.duration_s"),  # overflows to inf in the parser
    ]
    for literal, field in cases:
        raw = ('{"name": "n", "kind": "generic", "work": {"reference_accelerator": "A800", '
               + literal + '}}')
        body = _refused(admin.post("/v1/jobs", content=raw.encode()), 422, field)
        assert "finite" in body["error"]
    r = admin.post("/v1/jobs", content=JOB_YAML.replace("3600", ".inf"),
                   headers={"Content-Type": "application/yaml"})
    _refused(r, 422, "work.duration_s")
    r = admin.post("/v1/centers", content=b'{"id": "c", "name": "c", "region": "r", "lat": NaN,'
                                          b' "lon": 0, "electricity_price_per_kwh": 1}')
    _refused(r, 422, "lat")


def test_magnitudes_that_would_price_at_infinity_are_refused_naming_the_field(api):
    _server, admin = api
    train = {**JOB, "kind": "train", "model": "llama-3-8b", "work": {"tokens": 1e300},
             "resources": {"accelerators": ["A800"], "count": 8}}
    for path in ("/v1/jobs", "/v1/plan"):
        _refused(admin.post(path, json=train), 422, "work.tokens")
        _refused(admin.post(path, json={**JOB, "work": {"reference_accelerator": "A800",
                                                        "duration_s": 1e300}}),
                 422, "work.duration_s")
        _refused(admin.post(path, json={**JOB, "kind": "inference", "model": "llama-3-8b",
                                        "work": {"requests": 1e300}}), 422, "work.requests")


def test_integers_beyond_the_columns_are_refused_naming_the_field(api):
    _server, admin = api
    for path in (f"/v1/jobs/{2**31 + 1}", f"/v1/jobs/{2**31 + 1}/events",
                 f"/v1/jobs/{2**63}/logs", f"/v1/tokens/{2**31}"):
        r = admin.delete(path) if "tokens" in path else admin.get(path)
        _refused(r, 422, "job_id" if "jobs" in path else "token_id")
    _refused(admin.get("/v1/jobs", params={"before": 2**40}), 422, "before")
    for value in (2**63, 2**31, 1001):
        body = _refused(admin.post("/v1/jobs", json={**JOB, "max_retries": value}), 422,
                        "max_retries")
        assert str(value) in body["error"] or body["value"] == value
    _refused(admin.post("/v1/jobs", json={**JOB, "priority": 2**63}), 422, "priority")
    r = admin.post("/v1/jobs", json={**JOB, "resources": {"accelerators": ["A800"],
                                                          "count": 2**64}})
    assert r.status_code == 422 and r.json()["field"].startswith("resources.count"), r.text


def test_nul_bytes_anywhere_are_refused_naming_the_field(api):
    _server, admin = api
    _refused(admin.post("/v1/jobs", json={**JOB, "name": "a\x00b"}), 422, "name")
    _refused(admin.post("/v1/jobs", json={**JOB, "env": {"K": "v\x00"}}), 422, "env.K")
    _refused(admin.post("/v1/jobs", json={**JOB, "env": {"K\x00": "v"}}), 422, "env.K\x00")
    yaml_nul = JOB_YAML.replace("name: hour-on-a800", 'name: "a\\0b"')
    _refused(admin.post("/v1/jobs", content=yaml_nul,
                        headers={"Content-Type": "application/yaml"}), 422, "name")
    _tenant(admin, "lab")
    _refused(admin.post("/v1/tenants/lab/credits", json={"amount": "1", "note": "x\x00"}),
             422, "note")
    _refused(admin.get("/v1/usage", params={"tenant": "lab\x00"}), 422, "tenant")
    _refused(admin.get("/v1/centers/al%00pha"), 422, "<path>")


def test_lone_surrogates_are_refused_naming_the_field(api):
    _server, admin = api
    raw = json.dumps({**JOB, "name": "PLACEHOLDER"}).replace("PLACEHOLDER", "a\\ud800b")
    body = _refused(admin.post("/v1/jobs", content=raw.encode()), 422, "name")
    assert "surrogate" in body["error"] and body["value"] == "a\\ud800b"
    raw = json.dumps({"name": "t1", "credits": "1", "quotas": {"A800": 1}}).replace(
        '"A800"', '"\\udc00"')
    body = _refused(admin.post("/v1/tenants", content=raw.encode()), 422, "quotas.\\udc00")
    # Raw surrogate bytes (not UTF-8 at all): json.loads decodes them with 'surrogatepass'.
    _refused(admin.post("/v1/jobs", content=b'{"name": "\xed\xa0\x80"}'), 422, "name")


def test_the_bad_inputs_leave_the_service_working(api):
    _server, admin = api
    admin.post("/v1/jobs", content=b"[" * 10_000)
    admin.post("/v1/jobs", json={**JOB, "name": "\x00"})
    r = admin.post("/v1/jobs", json=JOB)
    assert r.status_code == 201, r.text
    assert admin.get(f"/v1/jobs/{r.json()['id']}").json()["spec"]["name"] == JOB["name"]


# -- bodies: counted while they stream, auth first --------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def up_process(db_url, tmp_path):
    """`suanli up --backend none` in its own process, so its memory is its own to measure."""
    up = UpProcess(db_url, tmp_path, "--json", backend="none")
    try:
        up.wait_ready()
        yield up.proc, up.port
    finally:
        up.stop()


def _send_streaming(port: int, head: str, total_bytes: int,
                    chunked: bool = False) -> tuple[int, int, bytes]:
    """Send the request head, then up to `total_bytes` of body in 64 KiB pieces (one buffer,
    reused: the client holds no more than that), stopping as soon as the server answers.
    Returns (status, body bytes sent, response)."""
    piece = b"x" * 65536
    if chunked:  # the same bytes, framed as HTTP/1.1 chunks of 64 KiB each
        piece = b"10000\r\n" + piece + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head.encode("latin-1"))
        s.setblocking(False)
        reply = b""
        while sent < total_bytes:
            try:
                reply += s.recv(65536)
            except BlockingIOError:
                pass
            if b"\r\n\r\n" in reply:
                break
            try:
                sent += s.send(piece)
            except BlockingIOError:
                time.sleep(0.001)
            except (BrokenPipeError, ConnectionResetError):
                break
        s.setblocking(True)
        s.settimeout(10)
        try:
            while not _complete(reply):
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1") else 0
    return status, sent, reply


def _complete(reply: bytes) -> bool:
    head, sep, body = reply.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def test_an_anonymous_200_mb_body_is_refused_unread_and_memory_stays_flat(up_process):
    proc, port = up_process
    size = 200 * 1024 * 1024
    # /v1/tenants takes a pydantic body, which FastAPI reads before it resolves the auth
    # dependency: before the guard, this body was read and parsed (RSS +400 MiB).
    for path in ("/v1/tenants", "/v1/jobs"):
        rss_before = _rss_bytes(proc.pid)
        status, sent, reply = _send_streaming(
            port, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {size}\r\n\r\n", size)
        assert status == 401 and b"missing API token" in reply, reply[:300]
        grown = _rss_bytes(proc.pid) - rss_before
        print(f"\nanonymous 200 MB body to {path}: refused 401 after {sent} bytes sent; "
              f"server RSS grew {grown / 2**20:.1f} MiB")
        assert sent < 32 * 2**20 and grown < 20 * 2**20


def test_a_streamed_body_with_a_token_is_cut_off_at_the_limit(up_process):
    proc, port = up_process
    size = 200 * 1024 * 1024
    rss_before = _rss_bytes(proc.pid)
    status, sent, reply = _send_streaming(
        port, f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
              "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        size, chunked=True)
    grown = _rss_bytes(proc.pid) - rss_before
    print(f"\nchunked 200 MB body with a token: HTTP {status} after {sent} bytes sent; "
          f"server RSS grew {grown / 2**20:.1f} MiB")
    assert status == 413 and b'"field":"<body>"' in reply, reply[:300]
    assert sent < 32 * 2**20 and grown < 20 * 2**20
    status, sent, reply = _send_streaming(
        port, f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
              f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n", size)
    assert status == 413 and b'"field":"<body>"' in reply, reply[:300]
    assert sent < 32 * 2**20 and _rss_bytes(proc.pid) - rss_before < 20 * 2**20


def test_a_chunked_body_past_the_limit_gets_413_naming_the_body(api):
    server, _admin = api

    def pieces():
        piece = b" " * 65536
        for _ in range(40):  # 2.5 MiB of whitespace, announced by no Content-Length
            yield piece

    r = httpx.post(f"{server.url}/v1/jobs", content=pieces(),
                   headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
    body = _refused(r, 413, "<body>")
    assert body["limit_bytes"] == 1 << 20
    r = httpx.post(f"{server.url}/v1/jobs", content=b" " * ((1 << 20) + 1),
                   headers={"Authorization": "Bearer sl_nobody"}, timeout=30)
    _refused(r, 401, "Authorization")


# -- a stored job that no longer loads --------------------------------------------------------

def test_a_stored_spec_that_no_longer_loads_fails_with_the_reason_and_frees_its_hold(
        start_service, http, db_url):
    first = start_service(db_url)
    admin = http(first)
    lab = http(first, _tenant(admin, "lab", credits="100"))
    job = lab.post("/v1/jobs", json=JOB).json()
    assert lab.get("/v1/usage").json()["reserved"] == "33.33"
    engine = create_engine(db_url)
    with engine.begin() as conn:  # an old row, written before Infinity was refused
        spec = conn.execute(text("SELECT spec FROM jobs WHERE id = :i"), {"i": job["id"]})
        bad = json.loads(spec.scalar_one())
        bad["checkpoint_interval_s"] = "PLACEHOLDER"
        bad_text = json.dumps(bad).replace('"PLACEHOLDER"', "Infinity")
        conn.execute(text("UPDATE jobs SET spec = :s WHERE id = :i"),
                     {"s": bad_text, "i": job["id"]})
    engine.dispose()
    first.stop()
    runner = start_service(db_url, backend="local")
    lab = http(runner, lab.headers["Authorization"].removeprefix("Bearer "))
    done = wait_for_state(lab, job["id"], {"failed"}, timeout_s=30)
    assert "stored spec does not load" in done["reason"]
    assert "checkpoint_interval_s" in done["reason"]
    usage = lab.get("/v1/usage").json()
    assert usage["reserved"] == "0.00" and usage["balance"] == "100.00", usage
    time.sleep(1.0)  # a few scheduler rounds: it is not retried
    assert len(lab.get(f"/v1/jobs/{job['id']}/events").json()["events"]) == 2


def test_what_is_stored_at_admission_loads_again(api):
    from suanli.jobs.spec import JobSpec

    _server, admin = api
    job = {**JOB, "model": "llama-3-8b", "kind": "train",
           "resources": {"accelerators": ["A800"], "count": 8},
           "work": {"tokens": 1e9, "seq_len": 8192}, "priority": -5, "max_retries": 1000,
           "env": {"UNICODE": "算力 ok"}}
    r = admin.post("/v1/jobs", json=job)
    assert r.status_code == 201, r.text
    spec = admin.get(f"/v1/jobs/{r.json()['id']}").json()["spec"]
    assert JobSpec.model_validate_json(json.dumps(spec)).env == {"UNICODE": "算力 ok"}


# -- tokens: listed, created, revoked at once on every replica --------------------------------

def test_a_token_revoked_through_one_replica_is_refused_at_once_by_another(
        start_service, http, db_url):
    # Replicas share one PostgreSQL (SQLite serves one process: there, both are one server).
    one = start_service(db_url)
    two = start_service(db_url) if db_url.startswith("postgresql") else one
    lab_token = _tenant(http(one), "lab")
    lab_one, lab_two = http(one, lab_token), http(two, lab_token)
    assert lab_two.get("/v1/jobs").status_code == 200  # known to replica two
    listing = lab_one.get("/v1/tokens").json()["tokens"]
    assert [t["prefix"] for t in listing] == [lab_token[:10]]
    r = lab_one.delete(f"/v1/tokens/{listing[0]['id']}")
    assert r.status_code == 200 and r.json()["revoked"] is True
    _refused(lab_two.get("/v1/jobs"), 401, "Authorization")
    _refused(lab_one.get("/v1/jobs"), 401, "Authorization")


def test_tokens_are_listed_created_and_revoked_without_showing_a_secret(api, http):
    server, admin = api
    lab_token = _tenant(admin, "lab")
    lab = http(server, lab_token)
    second = lab.post("/v1/tokens").json()
    assert second["token"].startswith("sl_") and second["revoked"] is False
    assert http(server, second["token"]).get("/v1/usage").json()["tenant"] == "lab"
    by_admin = admin.post("/v1/admin/tenants/lab/tokens")
    assert by_admin.status_code == 201, by_admin.text
    listing = admin.get("/v1/admin/tenants/lab/tokens").json()["tokens"]
    assert len(listing) == 3
    assert all(set(t) == {"id", "prefix", "created_at", "revoked"} for t in listing)
    text_of_listing = json.dumps(listing)
    for secret in (lab_token, second["token"], by_admin.json()["token"]):
        assert secret not in text_of_listing
    r = admin.delete(f"/v1/admin/tenants/lab/tokens/{second['id']}")
    assert r.status_code == 200 and r.json()["revoked"] is True
    _refused(http(server, second["token"]).get("/v1/usage"), 401, "Authorization")
    assert lab.get("/v1/usage").status_code == 200  # the other tokens still work
    # A tenant cannot touch another tenant's tokens, nor the admin's listing.
    admin_tokens = admin.get("/v1/tokens").json()["tokens"]
    _refused(lab.delete(f"/v1/tokens/{admin_tokens[0]['id']}"), 404, "token_id")
    _refused(lab.get("/v1/admin/tenants/lab/tokens"), 403, "Authorization")
    assert admin.get("/v1/usage").status_code == 200


def test_the_token_commands_list_create_and_revoke(api):
    from typer.testing import CliRunner

    from suanli.cli.main import app

    server, admin = api
    lab_token = _tenant(admin, "lab")

    def run(args: list[str], token: str) -> dict | list:
        r = CliRunner().invoke(app, [*args, "--json"], env={
            "SUANLI_URL": server.url, "SUANLI_TOKEN": token, "SUANLI_HOME": "/nonexistent"})
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    made = run(["admin", "token", "create", "lab"], ADMIN_TOKEN)
    assert made["tenant"] == "lab" and made["token"].startswith("sl_")
    mine = run(["token", "create"], lab_token)
    assert [t["id"] for t in run(["token", "list"], lab_token)] == \
        [t["id"] for t in run(["admin", "token", "list", "lab"], ADMIN_TOKEN)]
    assert run(["token", "revoke", str(mine["id"])], lab_token)["revoked"] is True
    assert run(["admin", "token", "revoke", "lab", str(made["id"])], ADMIN_TOKEN)["revoked"]
    listing = run(["token", "list"], lab_token)
    assert [t["revoked"] for t in listing] == [False, True, True]
    r = CliRunner().invoke(app, ["token", "list"], env={
        "SUANLI_URL": server.url, "SUANLI_TOKEN": mine["token"], "SUANLI_HOME": "/nonexistent"})
    assert r.exit_code == 2 and "HTTP 401" in r.output


# -- /metrics ---------------------------------------------------------------------------------

def test_metrics_need_a_token_and_name_no_tenant(api, http):
    server, admin = api
    tokens = {name: _tenant(admin, name) for name in ("acme-robotics", "zeta-labs")}
    for name, token in tokens.items():
        assert http(server, token).post("/v1/jobs", json={**JOB, "name": f"{name}-job"}) \
            .status_code == 201
    _refused(http(server, None).get("/metrics"), 401, "Authorization")
    _refused(http(server, "sl_not-a-token").get("/metrics"), 401, "Authorization")
    seen = http(server, tokens["zeta-labs"]).get("/metrics")
    assert seen.status_code == 200 and 'suanli_jobs{state="pending"} 2' in seen.text
    ids = [t["id"] for t in admin.get("/v1/tenants").json()["tenants"]]
    for line in seen.text.splitlines():
        assert 'tenant="' not in line and "acme" not in line and "zeta" not in line, line
        labels = line.partition("{")[2].partition("}")[0]
        assert not any(f'"{i}"' in labels for i in ids), line
    def families(text: str) -> set[str]:
        return {line.split("{")[0].split(" ")[0] for line in text.splitlines()}

    assert families(admin.get("/metrics").text) == families(seen.text)  # admin: same view


def test_a_revoked_admin_token_is_refused_at_the_next_start_with_the_reason(db_url, tmp_path):
    from suanli.errors import SuanliError
    from suanli.service.settings import Settings
    from suanli.service.state import open_state
    from suanli.store import tenants, tokens

    settings = Settings(db_url=db_url, network=str(TINY_NETWORK), backend="none",
                        admin_token=ADMIN_TOKEN, print_admin_token=False,
                        data_dir=tmp_path / "runs")
    state = open_state(settings)
    with state.db.write() as conn:
        admin = tenants.principal_for_token(conn, ADMIN_TOKEN)
        (listed,) = tokens.list_tokens(conn, admin.tenant_id)
        tokens.revoke_token(conn, admin.tenant_id, listed["id"])
    state.close()
    with pytest.raises(SuanliError) as err:
        open_state(settings)
    assert err.value.field == "SUANLI_ADMIN_TOKEN" and "revoked" in str(err.value)

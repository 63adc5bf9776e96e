"""The dashboard's server side without a browser: the public JSON leaks nothing of any tenant,
the sampler keeps the history, /metrics is prometheus_client's with units in its names, and the
pages and the API docs name only assets of this server."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from conftest import wait_for_state

SLEEPER = {"name": "hidden-name-xyz", "kind": "generic", "run": "sleep 30", "max_retries": 0,
           "work": {"reference_accelerator": "L20", "duration_s": 600},
           "resources": {"accelerators": ["L20"]}}


def _tenant(admin, name: str) -> str:
    return admin.post("/v1/tenants", json={"name": name, "credits": "500.00"}).json()["token"]


def test_the_public_network_shows_aggregate_use_and_nothing_of_any_tenant(db_url, start_service,
                                                                          http):
    server = start_service(db_url, backend="local", isolation="none")
    admin = http(server)
    token = _tenant(admin, "tenant-secret-co")
    acme = http(server, token)
    job = acme.post("/v1/jobs", json=SLEEPER).json()
    wait_for_state(acme, job["id"], {"running"})
    anon = http(server, None)
    net = anon.get("/dashboard/api/network")
    assert net.status_code == 200  # no token needed
    body = net.json()
    assert [c["id"] for c in body["centers"]] == ["alpha"]
    assert body["centers"][0]["lat"] == 30.0 and body["jobs_by_state"] == {"running": 1}
    l20 = next(p for p in body["centers"][0]["pools"] if p["id"] == "l20")
    assert l20["chips_used"] == 1 and l20["utilisation"] == 1.0
    server.app.state.history.take()
    hist = anon.get("/dashboard/api/history").json()
    last = hist["samples"][-1]
    assert last["running_jobs"] == 1 and last["pools"]["alpha/l20"] == {"chips_used": 1,
                                                                          "chips": 1}
    for text in (net.text, anon.get("/dashboard/api/history").text):
        assert "tenant-secret-co" not in text and "hidden-name-xyz" not in text
        assert token not in text and "tenant_id" not in text and "500.00" not in text
    acme.post(f"/v1/jobs/{job['id']}/cancel")
    wait_for_state(acme, job["id"], {"cancelled"})


def test_history_keeps_queue_length_over_time_and_filters_by_time(db_url, start_service, http):
    server = start_service(db_url, backend="none")
    alice = http(server, _tenant(http(server), "alice"))
    sampler = server.app.state.history
    before = sampler.take()
    assert before.queued_jobs == 0
    alice.post("/v1/jobs", json=SLEEPER)
    alice.post("/v1/jobs", json={**SLEEPER, "name": "second"})
    after = sampler.take()
    assert after.queued_jobs == 2 and after.at >= before.at
    newer = http(server, None).get("/dashboard/api/history", params={"since": before.at}).json()
    assert [s["queued_jobs"] for s in newer["samples"]] == [2]


def test_metrics_are_prometheus_client_families_with_units_in_their_names(db_url, start_service,
                                                                          http):
    server = start_service(db_url, backend="local", isolation="none")
    admin = http(server)
    alice = http(server, _tenant(admin, "alice"))
    alice.post("/v1/jobs", json={**SLEEPER, "run": "true"})
    assert http(server, None).get("/metrics").status_code == 401  # still behind a token
    r = alice.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert fams["suanli_submissions"].type == "counter"
    accepted = [s for s in fams["suanli_submissions"].samples
                if s.name == "suanli_submissions_total" and s.labels == {"result": "accepted"}]
    assert accepted[0].value == 1
    assert fams["suanli_http_request_duration_seconds"].type == "histogram"
    for name in ("suanli_pool_chips_used", "suanli_pool_chips", "suanli_pool_utilisation_ratio",
                 "suanli_jobs", "suanli_scheduler_steps"):
        assert fams[name].type == "gauge", name
    chips = {s.labels["pool"]: s.value for s in fams["suanli_pool_chips"].samples}
    assert chips == {"alpha/l20": 1.0, "alpha/a800": 8.0}


def test_two_apps_in_one_process_count_their_own_submissions(tmp_path, start_service, http):
    one = start_service(f"sqlite:///{tmp_path / 'one.db'}")
    two = start_service(f"sqlite:///{tmp_path / 'two.db'}")
    http(one, _tenant(http(one), "alice")).post("/v1/jobs", json=SLEEPER)
    text = http(two).get("/metrics").text
    assert 'suanli_submissions_total{result="accepted"} 0.0' in text


def test_the_pages_and_the_api_docs_load_only_this_servers_assets(db_url, start_service, http):
    server = start_service(db_url)
    anon = http(server, None)
    for path in ("/", "/dashboard", "/dashboard/jobs/1", "/docs", "/redoc"):
        r = anon.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        outside = re.findall(r"""(?:src|href)\s*=\s*["']?(https?:)?//""", r.text)
        assert outside == [], (path, outside)
    page = anon.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "/dashboard/static/app.js" in page.text
    for asset in ("/dashboard/static/app.js", "/dashboard/static/style.css",
                  "/dashboard/static/map/china.json",
                  "/dashboard/static/vendor/swagger-ui/swagger-ui-bundle.js",
                  "/dashboard/static/vendor/redoc/redoc.standalone.js"):
        assert anon.get(asset).status_code == 200, asset
    assert "cdn.redoc.ly" not in anon.get("/dashboard/static/vendor/redoc/redoc.standalone.js").text
    assert "validatorUrl" in anon.get("/docs").text
    assert anon.get("/dashboard/jobs/0").status_code == 422


def test_the_grafana_dashboard_queries_only_metrics_the_service_exposes(db_url, start_service,
                                                                         http):
    import json
    from pathlib import Path

    server = start_service(db_url, backend="local", isolation="none")
    http(server).get("/healthz")  # one request timed before the scrape
    text = http(server).get("/metrics").text
    exposed = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    board = json.loads((Path(__file__).parents[1] / "docs/grafana/suanli.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    queried = {m for e in exprs for m in re.findall(r"suanli_[a-z_]+", e)}
    assert len(queried) >= 6 and queried <= exposed, queried - exposed

"""The dashboard in a real browser: headless Chromium from the OS packages, driven through
Playwright, against a real service on loopback with the local backend running jobs.

Every page load records each request the browser makes; all must go to the server on
127.0.0.1 (the page ships its map, fonts and scripts; nothing comes from the internet). The
screenshots land in /tmp (dashboard_*.png), and the page weight and time to first render in
/tmp/dashboard_measure.json.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ADMIN_TOKEN, wait_for_state

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Debian's chromium (.ci/run installs it)")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage"]
TERMINAL = {"succeeded", "failed", "cancelled"}
SHOTS = Path("/tmp")


def _job(name: str, run: str, accelerator: str = "L20") -> dict:
    return {"name": name, "kind": "generic", "run": run, "max_retries": 0,
            "work": {"reference_accelerator": accelerator, "duration_s": 60},
            "resources": {"accelerators": [accelerator]}}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield b
        b.close()


class Tab:
    """A browser tab that records every request it makes."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 1000})
        self.page = self.context.new_page()
        self.base_url = base_url
        self.requests: list[str] = []
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.page.set_default_timeout(20_000)

    def open(self, path: str) -> Any:
        self.page.goto(self.base_url + path)
        return self.page

    def sign_in(self, token: str) -> None:
        self.page.fill("#token", token)
        self.page.click("#signin-btn")
        self.page.wait_for_selector("#signout-btn:not([hidden])")

    def outside_loopback(self) -> list[str]:
        """Requests to anywhere but the server (a blob: or data: URL the page made is local)."""
        local = (self.base_url + "/", "blob:" + self.base_url + "/", "data:")
        return [u for u in self.requests if not u.startswith(local)]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    tabs: list[Tab] = []

    def make(server: Any) -> Tab:
        t = Tab(browser, server.url)
        tabs.append(t)
        return t

    yield make
    for t in tabs:
        t.close()


@pytest.fixture
def east_west(start_service: Any, tmp_path: Path) -> Any:
    """The east-west network, jobs run by the local backend, SQLite."""
    return start_service(f"sqlite:///{tmp_path / 'dash.db'}", backend="local",
                         network="east-west", isolation="none")


def _tenant(server: Any, name: str) -> str:
    with httpx.Client(base_url=server.url, timeout=30,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        r = admin.post("/v1/tenants", json={"name": name, "credits": "1000.00"})
        assert r.status_code == 201, r.text
        return r.json()["token"]


def _client(server: Any, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def test_the_map_shows_every_center_of_east_west_and_nothing_leaves_loopback(east_west, tab):
    from suanli.network import load_network

    net = load_network("east-west")
    t = tab(east_west)
    t0 = time.monotonic()
    page = t.open("/")
    page.wait_for_selector("#map g.centerg")
    map_s = time.monotonic() - t0
    drawn = page.eval_on_selector_all("#map g.centerg", "gs => gs.map(g => g.dataset.center)")
    assert sorted(drawn) == sorted(c.id for c in net.centers) and len(drawn) == 10
    assert page.locator("#map g[data-link]").count() == len(net.links)
    assert page.locator("#map g[data-dataset]").count() == len(net.datasets)
    assert page.locator("#map path.land").count() >= 2  # the mainland, Hainan, Taiwan
    n_pools = sum(len(c.pools) for c in net.centers)
    assert page.locator("#pools tbody tr").count() == n_pools
    assert page.locator("#jobs-card").is_hidden()  # the public view shows no jobs
    # Sorting the pools by price puts the cheapest first, then (clicked again) the dearest.
    page.click("#pools th[data-key=price]")
    prices = sorted(p.price_per_chip_hour for c in net.centers for p in c.pools)
    first = page.locator("#pools tbody tr").first.locator("td").nth(7).inner_text()
    assert float(first.split()[0]) == prices[0]
    page.click("#pools th[data-key=price]")
    first = page.locator("#pools tbody tr").first.locator("td").nth(7).inner_text()
    assert float(first.split()[0]) == prices[-1]
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "dashboard_public.png"), full_page=True)
    timing = page.evaluate("""() => ({
        fcp_ms: performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
        dom_ms: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
        bytes: performance.getEntriesByType('navigation')[0].encodedBodySize
             + performance.getEntriesByType('resource')
                 .reduce((n, r) => n + r.encodedBodySize, 0)})""")
    assert timing["fcp_ms"] is not None and timing["bytes"] > 0
    (SHOTS / "dashboard_measure.json").write_text(json.dumps(
        {**timing, "kb": round(timing["bytes"] / 1024, 1), "map_drawn_s": round(map_s, 3),
         "requests": len(t.requests)}, indent=1))
    assert t.outside_loopback() == []


def test_a_submitted_job_appears_and_changes_state_without_reload(east_west, tab):
    token = _tenant(east_west, "alice")
    t = tab(east_west)
    page = t.open("/")
    t.sign_in(token)
    page.evaluate("window.__sameDocument = true")
    with _client(east_west, token) as alice:
        job = alice.post("/v1/jobs", json=_job("train-live", "sleep 3; echo ok")).json()
        row = f"#jobs tr[data-job='{job['id']}']"
        page.wait_for_selector(row)
        page.wait_for_selector(f"{row}[data-state=running]")
        page.screenshot(path=str(SHOTS / "dashboard_running.png"), full_page=True)
        assert "L20×1" in page.locator(row).inner_text()  # the placement, live
        page.wait_for_selector(f"{row}[data-state=succeeded]", timeout=30_000)
        assert wait_for_state(alice, job["id"], TERMINAL)["state"] == "succeeded"
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    assert "train-live" in page.locator("#jobs").inner_text()
    page.wait_for_selector("#account-body dd")
    assert "alice" in page.locator("#account").inner_text()
    # The history charts: queue length from the service's samples, Alice's spend from her ledger.
    page.wait_for_selector("#chart-queue polyline[data-series=running]", state="attached",
                           timeout=15_000)
    page.wait_for_selector("#chart-util polyline[data-series='wuhu/l20']", state="attached")
    page.wait_for_selector("#chart-spend polyline[data-series=spent]", state="attached")
    page.screenshot(path=str(SHOTS / "dashboard_history.png"), full_page=True)
    assert t.outside_loopback() == []


def test_a_signed_in_tenant_sees_its_jobs_and_not_another_tenants(east_west, tab):
    tokens = {name: _tenant(east_west, name) for name in ("alice", "bob")}
    ids = {}
    for name, token in tokens.items():
        with _client(east_west, token) as c:
            ids[name] = c.post("/v1/jobs", json=_job(f"{name}-secret-job", "sleep 30")).json()["id"]
    public = tab(east_west)
    page = public.open("/")
    page.wait_for_selector("#map g.centerg")
    page.wait_for_timeout(2500)  # a full poll: the public view still shows no job
    assert "secret-job" not in page.content()
    assert page.locator("#stats").inner_text().count("2") >= 1  # aggregates only
    t = tab(east_west)
    page = t.open("/")
    t.sign_in(tokens["alice"])
    page.wait_for_selector(f"#jobs tr[data-job='{ids['alice']}']")
    page.wait_for_timeout(2500)
    assert page.locator("#jobs tbody tr").count() == 1
    assert "bob-secret-job" not in page.content()
    assert page.evaluate("sessionStorage.getItem('suanli.token')") == tokens["alice"]
    assert not any(tokens["alice"] in u for u in t.requests)  # the token never in a URL
    page.screenshot(path=str(SHOTS / "dashboard_alice.png"), full_page=True)
    # Bob's job page, opened by Alice, shows nothing of it.
    page.goto(f"{east_west.url}/dashboard/jobs/{ids['bob']}")
    page.wait_for_selector("#updated:has-text('failed')")
    assert "bob-secret-job" not in page.content()
    # The admin sees both.
    admin = tab(east_west)
    page = admin.open("/")
    admin.sign_in(ADMIN_TOKEN)
    for name in ("alice", "bob"):
        page.wait_for_selector(f"#jobs tr[data-job='{ids[name]}']")
    assert "bob" in page.locator(f"#jobs tr[data-job='{ids['bob']}']").inner_text()
    for t_ in (public, t, admin):
        assert t_.outside_loopback() == []


def test_the_job_page_follows_events_and_logs_live(east_west, tab):
    token = _tenant(east_west, "carol")
    t = tab(east_west)
    page = t.open("/")
    t.sign_in(token)
    with _client(east_west, token) as carol:
        job = carol.post("/v1/jobs", json=_job(
            "logger", "for i in 1 2 3 4; do echo step-$i; sleep 1; done")).json()
        page.goto(f"{east_west.url}/dashboard/jobs/{job['id']}")  # the token stays in the tab
        page.wait_for_selector("#job-log:has-text('step-1')")
        assert "step-4" not in page.locator("#job-log").inner_text()  # still following
        page.wait_for_selector("#job-log:has-text('step-4')", timeout=30_000)
        page.wait_for_selector("body[data-state=succeeded]")
        page.wait_for_selector("#job-events tr[data-event=succeeded]")
    log = page.locator("#job-log").inner_text()
    assert [ln for ln in log.splitlines() if ln.startswith("step-")] == \
        ["step-1", "step-2", "step-3", "step-4"]  # each line once: offsets followed
    assert page.locator("#job-placement tr[data-actual=placed]").count() == 1
    page.screenshot(path=str(SHOTS / "dashboard_job.png"), full_page=True)
    assert t.outside_loopback() == []


@pytest.mark.parametrize("path, ready", [("/docs", ".swagger-ui .opblock"),
                                         ("/redoc", "h1:has-text('suanli')")])
def test_the_api_docs_render_offline(east_west, tab, path, ready):
    t = tab(east_west)
    page = t.open(path)
    page.wait_for_selector(ready)
    assert "suanli" in page.content()
    page.screenshot(path=str(SHOTS / f"dashboard_{path.strip('/')}.png"))
    assert t.outside_loopback() == []


ALPS = """
name: alps
currency: EUR
centers:
  - {id: zurich, name: Zurich, region: ch, lat: 47.37, lon: 8.54, electricity_price_per_kwh: 0.2,
     pools: [{id: a100, accelerator: A100, nodes: 4, price_per_chip_hour: 2.0}]}
  - {id: milan, name: Milan, region: it, lat: 45.46, lon: 9.19, electricity_price_per_kwh: 0.25,
     pools: [{id: h100, accelerator: H100, nodes: 8, price_per_chip_hour: 4.0}]}
  - {id: lyon, name: Lyon, region: fr, lat: 45.76, lon: 4.84, electricity_price_per_kwh: 0.15,
     pools: [{id: l20, accelerator: L20, nodes: 2, price_per_chip_hour: 1.0}]}
links:
  - {a: ch, b: it, bandwidth_gbps: 100}
datasets:
  - {name: alpine-weather, location: lyon, size_gb: 300}
"""


def test_any_network_with_coordinates_is_drawn_within_the_map(start_service, tab, tmp_path):
    net_file = tmp_path / "alps.yaml"
    net_file.write_text(ALPS)
    server = start_service(f"sqlite:///{tmp_path / 'alps.db'}", network=str(net_file))
    t = tab(server)
    page = t.open("/")
    page.wait_for_selector("#map g.centerg")
    assert sorted(page.eval_on_selector_all("#map g.centerg", "gs => gs.map(g => g.dataset.center)")
                  ) == ["lyon", "milan", "zurich"]
    box = page.locator("#map").bounding_box()
    for c in ("zurich", "milan", "lyon"):
        dot = page.locator(f"#map g[data-center={c}] circle").bounding_box()
        assert box["x"] <= dot["x"] and dot["x"] + dot["width"] <= box["x"] + box["width"], c
        assert box["y"] <= dot["y"] and dot["y"] + dot["height"] <= box["y"] + box["height"], c
    assert page.locator("#map g[data-link='ch~it']").count() == 1
    assert page.locator("#map g[data-dataset=alpine-weather]").count() == 1
    assert "EUR" in page.locator("#pools").inner_text()
    page.screenshot(path=str(SHOTS / "dashboard_alps.png"))
    assert t.outside_loopback() == []

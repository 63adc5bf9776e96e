"""Prometheus metrics through `prometheus_client`: a registry per app (so two apps in one
process, as the tests start, never share a counter), request latency by route template, and
whole-network gauges read from the database at scrape time (the database, not this process,
holds them, so every replica reports the same)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class GaugeFamily:
    """One gauge read at scrape time: its name carries its unit (`_chips`, `_ratio`)."""

    name: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


class _Snapshot(Collector):
    """Yields the gauges of one scrape; built per scrape, so concurrent scrapes never mix."""

    def __init__(self, gauges: list[GaugeFamily]) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for g in self.gauges:
            names = sorted({k for labels, _v in g.samples for k in labels})
            fam = GaugeMetricFamily(g.name, g.help, labels=names)
            for labels, value in g.samples:
                fam.add_metric([labels.get(k, "") for k in names], float(value))
            yield fam


class Metrics:
    """Process-local counters and histograms of this service process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.submissions = Counter("suanli_submissions", "Job submissions by result.",
                                   ["result"], registry=self.registry)
        self.submissions.labels(result="accepted")  # present from the start, at 0
        self.latency = Histogram("suanli_http_request_duration_seconds",
                                 "HTTP request latency by route.",
                                 ["method", "route", "status"], buckets=BUCKETS_S,
                                 registry=self.registry)

    def count_submission(self, result: str) -> None:
        self.submissions.labels(result=result).inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.latency.labels(method=method, route=route,
                            status=str(status // 100) + "xx").observe(seconds)

    def render(self, gauges: list[GaugeFamily]) -> str:
        """Text format 0.0.4: this process's counters, then the gauges of this scrape."""
        snap = CollectorRegistry(auto_describe=False)
        snap.register(_Snapshot(gauges))
        return (generate_latest(self.registry) + generate_latest(snap)).decode("utf-8")


class LatencyMiddleware:
    """Pure ASGI middleware (cheap): times each HTTP request by its route template."""

    def __init__(self, app: Any, metrics: Metrics, clock: Callable[[], float] = time.perf_counter):
        self.app = app
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = self.clock()
        status = [500]

        async def _send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(scope.get("method", ""), route, status[0], self.clock() - t0)

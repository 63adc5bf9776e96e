"""Prometheus text exposition, hand-rolled: a few counters, gauges and one histogram."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _escape(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Process-local metrics; gauges that live in the database are read at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.submissions: dict[str, int] = {}
        self._hist: dict[tuple[str, str, str], list[float]] = {}  # bucket counts + sum + count

    def count_submission(self, result: str) -> None:
        with self._lock:
            self.submissions[result] = self.submissions.get(result, 0) + 1

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status // 100) + "xx")
        with self._lock:
            h = self._hist.get(key)
            if h is None:
                h = self._hist[key] = [0.0] * (len(BUCKETS_S) + 2)
            i = bisect_left(BUCKETS_S, seconds)
            if i < len(BUCKETS_S):
                h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def render(self, gauges: dict[str, tuple[str, list[tuple[dict[str, str], float]]]]) -> str:
        """Text format 0.0.4. `gauges`: name -> (help, [(labels, value)])."""
        out: list[str] = []
        with self._lock:
            subs = dict(self.submissions)
            hist = {k: list(v) for k, v in self._hist.items()}
        out.append("# HELP suanli_submissions_total Job submissions by result.")
        out.append("# TYPE suanli_submissions_total counter")
        for result in sorted(set(subs) | {"accepted"}):
            out.append(f"suanli_submissions_total{_labels([('result', result)])} "
                       f"{subs.get(result, 0)}")
        for name, (help_text, samples) in gauges.items():
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} gauge")
            for labels, value in samples:
                out.append(f"{name}{_labels(sorted(labels.items()))} {_num(value)}")
        name = "suanli_http_request_duration_seconds"
        out.append(f"# HELP {name} HTTP request latency by route.")
        out.append(f"# TYPE {name} histogram")
        for (method, route, status), h in sorted(hist.items()):
            base = [("method", method), ("route", route), ("status", status)]
            cum = 0.0
            for le, n in zip(BUCKETS_S, h[: len(BUCKETS_S)], strict=True):
                cum += n
                out.append(f"{name}_bucket{_labels([*base, ('le', repr(le))])} {_num(cum)}")
            out.append(f"{name}_bucket{_labels([*base, ('le', '+Inf')])} {_num(h[-1])}")
            out.append(f"{name}_sum{_labels(base)} {h[-2]!r}")
            out.append(f"{name}_count{_labels(base)} {_num(h[-1])}")
        return "\n".join(out) + "\n"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


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

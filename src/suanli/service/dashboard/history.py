"""Samples for the history charts: pool utilisation and queue length over time.

Kept in memory by each service process, in a ring buffer (`MAX_SAMPLES` at `SAMPLE_S`: four
hours), so the page needs no Prometheus server; a restart starts the history afresh, and each
replica keeps its own (utilisation is known on the replica that schedules). Operators who want
long history scrape `/metrics` (see docs/grafana/suanli.json).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from suanli.service.state import ServiceState
from suanli.store import jobs as store_jobs

SAMPLE_S = 5.0
MAX_SAMPLES = 2880
QUEUED_STATES = ("pending", "queued", "preempted")  # waiting for chips
RUNNING_STATES = ("starting", "running", "checkpointing")  # holding chips
log = logging.getLogger("suanli.service.dashboard")


@dataclass(frozen=True)
class Sample:
    """The network at one moment: aggregates only, nothing of any tenant."""

    at: float  # Unix seconds
    queued_jobs: int  # pending or queued
    running_jobs: int  # starting, running or checkpointing
    pools: dict[str, tuple[int, int]]  # pool id -> (chips used, chips)

    def to_json(self) -> dict[str, object]:
        return {"at": self.at, "queued_jobs": self.queued_jobs, "running_jobs": self.running_jobs,
                "pools": {p: {"chips_used": u, "chips": c} for p, (u, c) in self.pools.items()}}


class Sampler:
    """Takes a `Sample` every `interval_s` on a daemon thread."""

    def __init__(self, svc: ServiceState, interval_s: float = SAMPLE_S,
                 max_samples: int = MAX_SAMPLES) -> None:
        self.svc = svc
        self.interval_s = interval_s
        self.samples: deque[Sample] = deque(maxlen=max_samples)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self) -> Sample:
        with self.svc.db.read() as conn:
            by_state = store_jobs.counts_by_state(conn)
        runner = self.svc.runner
        pools = dict(runner.utilisation) if runner is not None else {}
        s = Sample(at=time.time(), queued_jobs=sum(by_state.get(k, 0) for k in QUEUED_STATES),
                   running_jobs=sum(by_state.get(k, 0) for k in RUNNING_STATES),
                   pools=pools)
        self.samples.append(s)
        return s

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="suanli-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.take()
            except Exception:  # a database hiccup costs one sample, not the sampler
                log.exception("dashboard sample failed")
            self._stop.wait(self.interval_s)

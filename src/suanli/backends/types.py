"""What a real backend needs to run one attempt of a job, independent of the engine's classes.

The engine hands a backend an `EngineJob` and a `Placement`; `run_spec_from` reads them by
attribute name (duck typing), so this package depends on the field names only, not on the
engine's classes, and the core never imports a backend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from suanli.engine.types import BackendEvent  # the engine's record; backends may import it
from suanli.errors import SuanliError

__all__ = ["AdoptingBackend", "BackendCapabilities", "BackendEvent", "ProcessHandle", "RunSpec",
           "ServiceBackend", "StopReason", "run_spec_from"]

StopReason = Literal["preempt", "cancel", "failure"]


@dataclass(frozen=True)
class RunSpec:
    """One attempt of a job: the commands, the environment and where it was placed."""

    job_id: str
    run: str | None
    setup: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    center: str = ""
    accelerator: str = ""
    count: int = 1
    pool_id: str = ""  # "center/pool"
    log_path: str | None = None  # None: <backend root>/<job>/job.log
    checkpoint_dir: str | None = None  # None: <backend root>/<job>/checkpoint
    duration_s: float | None = None  # used only when there is no `run` (a simulated sleep)
    dataset_name: str | None = None  # staged before the run when `dataset_path` is set
    dataset_path: str | None = None  # the registered directory to copy to the center
    workdir: str | None = None  # "sha256:<hex>": the job's code, unpacked into work/ first
    retry_on_exit_codes: tuple[int, ...] = ()  # other non-zero exits fail the job at once
    # Every part of the placement as JSON (SUANLI_PLACEMENT): one for a single pool, two for
    # a mixed-chip gang (pool_id, center, pool, accelerator, count, nodes, layers each).
    placement: str = ""


@dataclass(frozen=True)
class ProcessHandle:
    """What the service stores so a restarted service can re-attach to a running job.

    `started_at_ticks` is field 22 of /proc/<pid>/stat (clock ticks after boot) and `boot_id`
    the kernel's boot id: together with the pid they name one process, even if the pid is
    later reused by another.
    """

    pid: int
    pgid: int
    started_at_ticks: int
    boot_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "pgid": self.pgid, "started_at_ticks": self.started_at_ticks,
                "boot_id": self.boot_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessHandle:
        return cls(pid=int(data["pid"]), pgid=int(data["pgid"]),
                   started_at_ticks=int(data["started_at_ticks"]),
                   boot_id=str(data.get("boot_id", "")))


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def run_spec_from(job: Any, placement: Any) -> RunSpec:
    """Build a RunSpec from the engine's job and placement (read by attribute name).

    The service puts the job file's `run`, `setup`, `env` and the log path into `job.meta`
    (keys: run, setup, env, log_path, checkpoint_dir, duration_s, workdir,
    retry_on_exit_codes).
    """
    job_id = str(_get(job, "job_id"))
    meta: Mapping[str, Any] = _get(job, "meta") or {}
    pool_id = str(_get(placement, "pool_id", "") or "")
    center = _get(placement, "center") or (pool_id.split("/", 1)[0] if pool_id else "")
    count = _get(placement, "count") or _get(placement, "num_chips") or _get(job, "num_chips") or 1
    env = meta.get("env") or {}
    if not isinstance(env, Mapping):
        raise SuanliError(f"job {job_id}: meta.env must be a mapping", field="env", value=env)
    duration = meta.get("duration_s")
    parts = [p.to_dict() for p in _get(placement, "parts", ()) or ()] or [{
        "pool_id": pool_id, "center": str(center), "pool": pool_id.partition("/")[2],
        "accelerator": str(_get(placement, "accelerator", "") or ""), "count": int(count),
        "nodes": [list(n) for n in _get(placement, "nodes", ()) or ()], "layers": 0}]
    return RunSpec(
        job_id=job_id,
        run=meta.get("run"),
        setup=meta.get("setup"),
        env={str(k): str(v) for k, v in env.items()},
        center=str(center),
        accelerator=str(_get(placement, "accelerator", "") or ""),
        count=int(count),
        pool_id=pool_id,
        log_path=meta.get("log_path"),
        checkpoint_dir=meta.get("checkpoint_dir"),
        duration_s=float(duration) if duration is not None else None,
        dataset_name=meta.get("dataset_name"),
        dataset_path=meta.get("dataset_path") if _get(placement, "staging_s", 0.0) else None,
        workdir=meta.get("workdir"),
        retry_on_exit_codes=tuple(int(c) for c in meta.get("retry_on_exit_codes") or ()),
        placement=json.dumps(parts),
    )


@dataclass(frozen=True)
class BackendCapabilities:
    """What a backend can do beyond the engine's protocol; the service reads this instead of
    probing for methods.

    `adopt`: a new instance can re-attach to a run an earlier instance (or another replica on
    the same machine) started, by the process identity the service stored; the backend then
    implements `AdoptingBackend`. Without it a run found after a restart is run again.
    `live_nodes`: machines join and leave (Ray): the backend implements `NodeReportingBackend`,
    so `suanli status` can say which centers have a live node now.
    """

    adopt: bool = False
    live_nodes: bool = False


class ServiceBackend(Protocol):
    """What the live service needs of every real backend: the engine's Backend protocol
    (start, stop, poll, next_event_s) plus the service's own calls."""

    name: ClassVar[str]
    capabilities: ClassVar[BackendCapabilities]

    def start(self, job: Any, placement: Any, now_s: float) -> None: ...

    def stop(self, job_id: str, now_s: float, reason: str = "cancel") -> None: ...

    def poll(self, now_s: float) -> list[BackendEvent]: ...

    def next_event_s(self) -> float | None: ...

    def running(self) -> list[str]:
        """Jobs this instance runs now."""
        ...

    def report_lost(self, job_id: str, now_s: float, detail: str = "process gone") -> None:
        """Queue a failure for a job the service knows ran here but cannot re-attach to."""
        ...

    def shutdown(self, stop_jobs: bool = False) -> None:
        """Forget every job; with stop_jobs, terminate them (else they run on)."""
        ...


class AdoptingBackend(ServiceBackend, Protocol):
    """A backend with `capabilities.adopt`: it names each run's process and re-attaches."""

    def handle(self, job_id: str) -> ProcessHandle:
        """The running attempt's process identity (KeyError if it does not run here)."""
        ...

    def adopt(self, job_id: str, pid: int, pgid: int, log_path: str | Path | None = None,
              started_at_ticks: int | None = None, *, boot_id: str = "",
              spec: RunSpec | None = None, now_s: float = 0.0) -> bool:
        """Re-attach to a run by its stored identity; False if it ended meanwhile."""
        ...


class NodeReportingBackend(ServiceBackend, Protocol):
    """A backend with `capabilities.live_nodes`: it says which centers have live machines."""

    def live_centers(self) -> list[dict[str, Any]]:
        """Per center with a live node: {"center", "nodes", "accelerators", "chips"} where
        chips maps a pool id to the chips its live nodes declare."""
        ...

"""The one place the service meets the engine: it owns the Engine, its backend and the loop.

The loop thread is the only caller of the engine. HTTP handlers hand it work through a
thread-safe inbox (submit, cancel, network change). The engine reports every state change to
`_on_transition` *before* the backend acts on it; that writes the change in one database
transaction, so when the backend is told to start or stop a process the database already says
so. Within one tick the changes are held and written together, in one transaction, at the end
of the tick or, sooner, before the engine calls the backend at all (`_WriteFirst`). A killed
service therefore loses nothing: `recover()` at start-up resubmits waiting jobs and re-attaches
(adopts) running ones by the process identity stored with them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import queue
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from suanli.jobs.spec import JobSpec
from suanli.network import Network
from suanli.store import jobs as store_jobs
from suanli.store import network as store_network
from suanli.store.db import Database
from suanli.store.fastpath import FastPath
from suanli.store.models import TERMINAL_STATES

log = logging.getLogger("suanli.service.runner")

ON_CHIPS = ("starting", "running", "checkpointing")
SWEEP_S = 5.0
WAITING = ("pending", "queued", "preempted")


def placement_dict(placement: Any) -> dict[str, Any] | None:
    """The engine's Placement as the database stores it: center, pool, accelerator, count."""
    if placement is None:
        return None
    pool_id = str(getattr(placement, "pool_id", "") or "")
    center, _, pool = pool_id.partition("/")
    return {
        "center": getattr(placement, "center", "") or center,
        "pool": pool or pool_id,
        "pool_id": pool_id,
        "accelerator": getattr(placement, "accelerator", "") or None,
        "count": int(getattr(placement, "num_chips", 0) or 0) or None,
        "nodes": [list(n) for n in getattr(placement, "nodes", ()) or ()],
    }


class _WriteFirst:
    """The backend as the engine sees it: every call first commits the transitions held."""

    def __init__(self, backend: Any, flush: Any) -> None:
        self._backend = backend
        self._flush = flush

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._backend, name)
        if not callable(attr):
            return attr
        flush = self._flush

        def call(*args: Any, **kwargs: Any) -> Any:
            flush()
            return attr(*args, **kwargs)

        return call


TEMPLATES_MAX = 1024


class Runner:
    """Engine + backend + the loop that steps them on the wall clock."""

    def __init__(self, db: Database, network: Network, *, backend: str = "local",
                 policy: str = "fifo", round_s: float = 2.0, tick_s: float = 0.25,
                 data_dir: Path, ray_address: str | None = None,
                 stop_jobs_on_shutdown: bool = False,
                 realloc_interval_s: float | None = None) -> None:
        from suanli.backends import make_backend
        from suanli.engine import Cluster, Engine, WallClock
        from suanli.policies.registry import get_policy

        self.db = db
        self.data_dir = Path(data_dir)
        self.tick_s = tick_s
        self.stop_jobs_on_shutdown = stop_jobs_on_shutdown
        self._network = network
        self.cluster = Cluster.from_network(network)
        self.clock = WallClock()
        kwargs: dict[str, Any] = {"root_dir": self.data_dir}
        if backend == "ray" and ray_address:
            kwargs["address"] = ray_address
        self.backend = make_backend(backend, **kwargs)
        self._fast = FastPath(db.dialect)
        self._held: list[dict[str, Any]] | None = None  # transitions not yet written
        self._templates: dict[tuple[str, int | None], Any] = {}  # spec shape -> EngineJob
        self.engine = Engine(self.cluster, get_policy(policy), self.clock,
                             _WriteFirst(self.backend, self._write_held),
                             round_s=round_s, listener=self._on_transition,
                             realloc_interval_s=realloc_interval_s)
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prices: dict[tuple[str, str], tuple[Decimal, Decimal | None]] = {}
        self._spot: dict[str, bool] = {}  # job id -> may run on spot price
        self._handles_known: set[str] = set()
        self._recovering = False
        self._next_sweep = time.monotonic() + SWEEP_S
        self._drained_at = time.time()  # when the inbox was last read
        self.utilisation: dict[str, tuple[int, int]] = {}  # pool id -> (chips used, capacity)
        self.steps = 0
        self.last_error: str | None = None
        self._refresh_prices()

    # -- called from HTTP handlers (any thread) ----------------------------------------------

    def submit(self, job_id: int, row: dict[str, Any] | None = None) -> None:
        """Schedule a pending job; `row`: the job as just committed (saves reading it back)."""
        self._inbox.put(("submit", job_id if row is None else (job_id, row)))

    def cancel(self, job_id: int) -> None:
        self._inbox.put(("cancel", job_id))

    def network_changed(self, network: Network) -> None:
        self._inbox.put(("network", network))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="suanli-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        shutdown = getattr(self.backend, "shutdown", None)
        if shutdown is not None:
            shutdown(stop_jobs=self.stop_jobs_on_shutdown)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive one bad step
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("scheduler step failed")
            self._stop.wait(self.tick_s)

    def tick(self) -> None:
        """Drain the inbox, step the engine once, remember new process handles.

        The transitions of the drain and the step are written in one transaction (sooner if
        the engine calls the backend meanwhile)."""
        self._held = []
        try:
            self._drained_at = time.time()
            self._drain()
            self.engine.step()
        finally:
            try:
                self._write_held()
            finally:
                self._held = None
        self.steps += 1
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_S
            self._sweep()
        self._store_handles()
        self._measure()

    # -- inbox -------------------------------------------------------------------------------

    def _drain(self) -> None:
        while True:
            try:
                kind, arg = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                if kind == "submit":
                    if isinstance(arg, tuple):
                        self._submit(*arg)
                    else:
                        self._submit(arg)
                elif kind == "cancel":
                    self._cancel(arg)
                elif kind == "network":
                    self._set_network(arg)
            except Exception:  # noqa: BLE001 - one bad item must not stop the others
                log.exception("runner could not handle %s %s (the sweep retries it)", kind, arg)

    def _sweep(self) -> None:
        """Catch up with the database: pending jobs the engine has not seen (an inbox item
        lost to an error, or a job admitted by another API process) and unheeded cancels."""
        from sqlalchemy import select

        from suanli.store.models import Job

        J = Job.__table__
        with self.db.read() as conn:
            rows = conn.execute(select(J.c.id, J.c.state, J.c.cancel_requested).where(
                J.c.state.in_(store_jobs.ACTIVE_STATES),
                # Older than the last drain by a margin: its inbox item, if any, was read
                # (a long step must not make the jobs admitted during it look lost).
                J.c.submitted_at < self._drained_at - 2.0)).all()
        for job_id, state, cancel in rows:
            known = str(job_id) in self.engine.jobs
            if state == "pending" and not known:
                self._inbox.put(("submit", job_id))
            if cancel:
                self._inbox.put(("cancel", job_id))

    def _submit(self, job_id: int, row: dict[str, Any] | None = None) -> None:
        if row is None:
            with self.db.read() as conn:
                row = store_jobs.get_job(conn, job_id)
        if row["state"] in TERMINAL_STATES or str(job_id) in self.engine.jobs:
            return
        ej = self._enter(row, self.clock.now())
        if ej is not None:
            self.engine.submit(ej)

    def _enter(self, row: dict[str, Any], arrival_s: float) -> Any:
        """Build the engine's job for a stored row; a job no pool can run, or whose stored
        spec no longer loads, fails here (its hold released), never retried forever."""
        jid = str(row["id"])
        try:
            spec = JobSpec.model_validate_json(row["spec"])
        except Exception as exc:  # noqa: BLE001 - an unloadable spec ends the job, with why
            self._finish_outside_engine(row["id"], row["state"], "failed",
                                        f"stored spec does not load: {exc}")
            return None
        self._spot[jid] = spec.resources.spot
        try:
            count = row.get("est_count")
            if not count or not spec.min_count <= count <= spec.max_count:
                count = None  # the engine's default gang: the spec's minimum
            ej = self._engine_job(jid, spec, arrival_s, count)
        except Exception as exc:  # noqa: BLE001 - any refusal ends the job, with the reason
            self._finish_outside_engine(row["id"], row["state"], "failed",
                                        f"cannot be scheduled: {exc}")
            return None
        meta = dict(getattr(ej, "meta", {}) or {})
        meta.update(self._job_meta(row, spec))
        return dataclasses.replace(ej, meta=meta, max_retries=row["max_retries"],
                                   tenant=str(row["tenant_id"]))

    def _engine_job(self, jid: str, spec: JobSpec, arrival_s: float, count: int | None) -> Any:
        """`engine_job_from_spec`, with the performance model run once per job shape: jobs
        that differ only in name, arrival and id share the timings (the cluster is fixed
        until the network changes, which clears the templates)."""
        from suanli.engine import engine_job_from_spec

        key = (spec.model_dump_json(exclude={"name"}), count)
        template = self._templates.get(key)
        if template is None:
            template = engine_job_from_spec(jid, spec, self.cluster, arrival_s, count=count)
            if len(self._templates) >= TEMPLATES_MAX:
                self._templates.clear()
            self._templates[key] = template
            return template
        deadline = arrival_s + spec.deadline_s if spec.deadline_s else math.inf
        return dataclasses.replace(template, job_id=jid, arrival_s=float(arrival_s),
                                   deadline_s=deadline,
                                   meta={**template.meta, "name": spec.name})

    def _job_meta(self, row: dict[str, Any], spec: JobSpec) -> dict[str, Any]:
        env = {**spec.env, "SUANLI_TENANT_ID": str(row["tenant_id"])}
        meta: dict[str, Any] = {"run": spec.run, "setup": spec.setup, "env": env,
                                "log_path": row["log_path"] or str(self.log_path(row["id"]))}
        if not spec.run and row.get("est_run_s"):
            meta["duration_s"] = float(row["est_run_s"])
        return meta

    def log_path(self, job_id: int) -> Path:
        return self.data_dir / str(job_id) / "job.log"

    def _cancel(self, job_id: int) -> None:
        jid = str(job_id)
        rec = self.engine.jobs.get(jid)
        if rec is not None:
            if _state(rec) not in TERMINAL_STATES:
                self.engine.cancel(jid)
            return
        with self.db.read() as conn:
            row = store_jobs.get_job(conn, job_id)
        if row["state"] not in TERMINAL_STATES:
            self._finish_outside_engine(job_id, row["state"], "cancelled", "cancelled by tenant")

    def _finish_outside_engine(self, job_id: int, old: str, new: str, reason: str) -> None:
        with self.db.write() as conn:
            store_jobs.record_transition(conn, job_id, old, new, reason, None,
                                         at=self.clock.now())

    def _set_network(self, network: Network) -> None:
        self._network = network
        self._templates.clear()
        self._refresh_prices()
        update = getattr(self.engine, "set_cluster", None)
        if update is not None:
            from suanli.engine import Cluster

            update(Cluster.from_network(network))

    def _refresh_prices(self) -> None:
        with self.db.read() as conn:
            self._prices = store_network.prices(conn)

    # -- the listener: the database first ----------------------------------------------------

    def _on_transition(self, tr: Any) -> None:
        new, old = str(tr.new), str(tr.old) if tr.old is not None else None
        if self._recovering and not self._recovery_writes(tr.job_id, new):
            return
        placement = placement_dict(tr.placement)
        price = None
        if new in TERMINAL_STATES:
            price = self._price_of(tr.job_id, placement)
        extra: dict[str, Any] = {}
        rec = self.engine.jobs.get(tr.job_id)
        if rec is not None:
            extra["retries"] = int(getattr(rec, "retries", 0) or 0)
            extra["done_work"] = float(getattr(rec, "done_work", 0.0) or 0.0)
        if new not in ON_CHIPS:
            self._handles_known.discard(tr.job_id)
            if new in WAITING or new in TERMINAL_STATES:
                extra["handle"] = None
        item = {"job_id": int(tr.job_id), "old": old, "new": new, "reason": tr.reason or "",
                "placement": placement, "at": tr.at_s, "price": price, "extra": extra}
        if self._held is not None and not self._recovering:
            self._held.append(item)  # written before the backend acts (see _WriteFirst)
            return
        with self.db.write() as conn:
            self._write(conn, item)

    def _write_held(self) -> None:
        """Commit the held transitions in one transaction, in the order they happened."""
        held = self._held
        if not held:
            return
        with self.db.write() as conn:
            for item in held:
                self._write(conn, item)
        held.clear()

    def _write(self, conn: Any, item: dict[str, Any]) -> None:
        if item["new"] not in TERMINAL_STATES:  # no credits settle: the plain-SQL path
            self._fast.record_transition(conn, item["job_id"], item["old"], item["new"],
                                         item["reason"], item["placement"], item["at"],
                                         item["extra"] or None)
            return
        store_jobs.record_transition(conn, item["job_id"], item["old"], item["new"],
                                     item["reason"], item["placement"], at=item["at"],
                                     price_per_chip_hour=item["price"],
                                     extra=item["extra"] or None)

    def _recovery_writes(self, job_id: str, new: str) -> bool:
        """While rebuilding the engine, the database is the truth: replaying a job into the
        engine passes it through queued again, which must not be written over 'running'."""
        if new in TERMINAL_STATES:
            return True
        with self.db.read() as conn:
            stored = store_jobs.get_job(conn, int(job_id))["state"]
        return stored == "pending" and new == "queued"

    def _price_of(self, job_id: str, placement: dict[str, Any] | None) -> Decimal:
        """The chip-hour price of where the job ran (its last placement), spot if it asked."""
        if placement is None or not placement.get("center"):
            placement = self._held_placement(job_id)
        if placement is None:
            with self.db.read() as conn:
                row = store_jobs.get_job(conn, int(job_id))
            placement = {"center": row["center"], "pool": row["pool"]}
        price, spot = self._prices.get((placement["center"], placement["pool"]), (Decimal(0), None))
        if self._spot.get(job_id) and spot is not None:
            return spot
        return price

    def _held_placement(self, job_id: str) -> dict[str, Any] | None:
        """The job's latest placement among the transitions not yet written, if any."""
        for item in reversed(self._held or ()):
            p = item["placement"]
            if item["job_id"] == int(job_id) and p and p.get("center"):
                return p
        return None

    # -- process handles and recovery --------------------------------------------------------

    def _store_handles(self) -> None:
        get = getattr(self.backend, "handle", None)
        if get is None:
            return
        running = getattr(self.backend, "running", lambda: [])()
        for jid in running:
            if jid in self._handles_known:
                continue
            try:
                h = get(jid)
            except KeyError:
                continue
            data = h.to_dict() if hasattr(h, "to_dict") else dict(h)
            with self.db.write() as conn:
                store_jobs.update_job(conn, int(jid), handle=json.dumps(data))
            self._handles_known.add(jid)

    def recover(self) -> dict[str, int]:
        """Put the database's active jobs back into a fresh engine (after a restart)."""
        with self.db.read() as conn:
            rows = store_jobs.active_jobs(conn)
        counts = {"requeued": 0, "adopted": 0, "lost": 0}
        self._recovering = True
        try:
            for row in rows:
                self._recover_one(row, counts)
        finally:
            self._recovering = False
        return counts

    def _recover_one(self, row: dict[str, Any], counts: dict[str, int]) -> None:
        from suanli.engine.types import JobState, Placement

        now = self.clock.now()
        ej = self._enter(row, row["submitted_at"])
        if ej is None:
            return
        state = row["state"]
        if state in ("pending", "queued"):
            self._retries(self.engine.submit(ej), row)
            counts["requeued"] += 1
            return
        if state in ON_CHIPS and not hasattr(self.backend, "adopt"):
            # This backend cannot re-attach to a run (e.g. ray): run the job again.
            rec = self.engine.restore(ej, JobState.QUEUED, None, row["done_work"] or 0.0)
            self._retries(rec, row)
            self._note(row, "queued", "requeued after restart: the backend cannot re-attach")
            counts["requeued"] += 1
            return
        if state == "preempted" or not row["center"]:
            rec = self.engine.restore(ej, JobState.PREEMPTED if state == "preempted"
                                      else JobState.QUEUED, None, row["done_work"] or 0.0)
            self._retries(rec, row)
            self._note(row, str(rec.state), "restored after restart: waiting for chips")
            counts["requeued"] += 1
            return
        placement = Placement(pool_id=f"{row['center']}/{row['pool']}",
                              num_chips=int(row["count"] or ej.num_chips),
                              accelerator=row["accelerator"] or "", center=row["center"])
        handle = json.loads(row["handle"]) if row["handle"] else self._launch_record(row)
        if not self._room_for(placement):
            # The pool shrank or vanished while we were down: end the orphan run, queue again.
            self._stop_orphan(row, handle, ej, placement, now)
            self._note(row, "queued", f"requeued after restart: pool {placement.pool_id} no "
                                      f"longer has {placement.num_chips} free chips")
            self._retries(self.engine.submit(ej), row)  # may fail it: nowhere else to run
            counts["requeued"] += 1
            return
        # Restore first (so the engine knows the job holds chips), then adopt: a process
        # that ended while we were down shows up as a backend event on the next step.
        rec = self.engine.restore(ej, JobState.RUNNING, placement, row["done_work"] or 0.0)
        self._retries(rec, row)
        if handle and hasattr(self.backend, "adopt"):
            alive = self._adopt(row, handle, ej, placement, now)
            counts["adopted" if alive else "lost"] += 1
            if alive:
                self._handles_known.add(str(row["id"]))
                self._note(row, "running", f"restored after restart: process "
                                           f"{handle['pid']} adopted")
            else:
                self._note(row, "running", "restored after restart: process ended while "
                                           "the service was down")
        else:
            counts["lost"] += 1
            self._report_lost(str(row["id"]), now)

    def _room_for(self, placement: Any) -> bool:
        """Whether the restored engine's pool still has the chips a stored run holds."""
        free = self.engine.up_capacity.get(placement.pool_id, 0) - self.engine.used_chips.get(
            placement.pool_id, 0)
        return free >= placement.num_chips

    def _stop_orphan(self, row: dict[str, Any], handle: dict[str, Any] | None, ej: Any,
                     placement: Any, now: float) -> None:
        """Adopt a still-running process only to stop it: its placement is gone."""
        if handle and hasattr(self.backend, "adopt") and self._adopt(row, handle, ej,
                                                                      placement, now):
            self.backend.stop(str(row["id"]), now, "failure")

    def _adopt(self, row: dict[str, Any], handle: dict[str, Any], ej: Any, placement: Any,
               now: float) -> bool:
        """Re-attach the backend to a run's process by its stored identity."""
        from suanli.backends.types import run_spec_from

        return self.backend.adopt(
            str(row["id"]), int(handle["pid"]), int(handle["pgid"]), ej.meta.get("log_path"),
            int(handle.get("started_at_ticks") or 0) or None,
            boot_id=str(handle.get("boot_id", "")), spec=run_spec_from(ej, placement), now_s=now)

    @staticmethod
    def _retries(rec: Any, row: dict[str, Any]) -> None:
        """Retries survive a restart: the engine counts from the stored number."""
        if hasattr(rec, "retries"):
            rec.retries = max(int(rec.retries), int(row["retries"] or 0))

    def _note(self, row: dict[str, Any], state: str, reason: str) -> None:
        """An event that records a restart without changing the stored state's meaning."""
        from sqlalchemy import insert

        from suanli.store.models import JobEvent

        with self.db.write() as conn:
            conn.execute(insert(JobEvent.__table__).values(
                job_id=row["id"], at=self.clock.now(), old_state=row["state"],
                new_state=state if state in ON_CHIPS or state in WAITING else row["state"],
                reason=reason))
            if state != row["state"] and state in WAITING:
                store_jobs.update_job(conn, row["id"], state=state, reason=reason)

    def _launch_record(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The backend's own launch record, for a job that died before its handle was stored."""
        path = self.data_dir / str(row["id"]) / "process.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def _report_lost(self, job_id: str, now: float) -> None:
        """A job that was on chips with no process to adopt: the backend failed it."""
        queue_event = getattr(self.backend, "_queue", None)
        if queue_event is not None:
            from suanli.backends.types import BackendEvent

            queue_event(BackendEvent(job_id, "failed", now, "process gone (never recorded)"))

    # -- metrics -----------------------------------------------------------------------------

    def _measure(self) -> None:
        used = self.engine.used_chips
        self.utilisation = {p.pool_id: (used.get(p.pool_id, 0), p.capacity)
                            for p in self.cluster.pools}


def _state(rec: Any) -> str:
    return str(getattr(rec, "state", ""))

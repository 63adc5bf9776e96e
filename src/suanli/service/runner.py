"""The one place the service meets the engine: it owns the Engine, its backend and the loop.

The loop thread is the only caller of the engine. HTTP handlers hand it work through a
thread-safe inbox (submit, cancel, network change). The engine reports every state change to
`_on_transition` *before* the backend acts on it; that writes the change in one database
transaction, so when the backend is told to start or stop a process the database already says
so. Within one tick the changes are held and written together, in one transaction, at the end
of the tick or, sooner, before the engine calls the backend at all (`_WriteFirst`). A killed
service therefore loses nothing: `recover()` at start-up resubmits waiting jobs and re-attaches
(adopts) running ones by the process identity stored with them.

Replicas: with a `Lease` (`service/leadership.py`), only the replica holding the database
lease runs the loop; the others serve the API and try to take the lease over when it expires,
then build a fresh engine and `recover()`. Every write the loop makes goes through
`_fenced_write` (the lease's token checked in the same transaction) and every backend action
is preceded by a check that the lease is still valid, so a leader that stalled and lost its
lease steps down (`LostLeadership`) without writing or touching a process. Admin edits made
through any replica bump `meta.network_version`; the loop polls it and hands the new pools to
the engine (`Engine.set_cluster`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any, cast

from suanli.backends.types import AdoptingBackend, BackendEvent, ServiceBackend
from suanli.engine.types import EngineJob, JobRecord, Placement
from suanli.jobs.spec import JobSpec
from suanli.network import Network
from suanli.plan.state import NetworkState
from suanli.service import uploads
from suanli.service.leadership import Lease, LostLeadership
from suanli.store import billing
from suanli.store import jobs as store_jobs
from suanli.store import leader as store_leader
from suanli.store import network as store_network
from suanli.store.db import Database
from suanli.store.fastpath import FastPath
from suanli.store.models import TERMINAL_STATES
from suanli.store.types import money
from suanli.store.vouchers import active_terms

log = logging.getLogger("suanli.service.runner")

ON_CHIPS = ("staging", "starting", "running", "checkpointing")
SWEEP_S = 5.0
FOLLOW_S = 0.5  # how often a follower tries the lease
NETWORK_POLL_S = 1.0  # how often the network version is read
WAITING = ("pending", "queued", "preempted")


def placement_dict(placement: Placement | None) -> dict[str, Any] | None:
    """The engine's Placement as the database stores it: center, pool, accelerator, count
    (a mixed-chip gang: its primary part's pool, the whole gang's count, and `parts`)."""
    if placement is None:
        return None
    pool_id = placement.pool_id
    center, _, pool = pool_id.partition("/")
    out = {
        "center": placement.center or center,
        "pool": pool or pool_id,
        "pool_id": pool_id,
        "accelerator": placement.accelerator or None,
        "count": int(placement.count) or None,
        "nodes": [list(n) for n in placement.nodes],
    }
    if placement.parts:
        out["parts"] = [part.to_dict() for part in placement.parts]
    return out


class _WriteFirst:
    """The backend as the engine sees it: before it starts or stops anything, the transitions
    held are committed and the lease is checked (`before_act`), so the database says so first
    and a replica that lost its lease acts on nothing."""

    def __init__(self, backend: Any, flush: Callable[[], None],
                 before_act: Callable[[], None] | None = None,
                 before_start: Callable[[EngineJob], None] | None = None) -> None:
        self._backend = backend
        self._flush = flush
        self._before_act = before_act or (lambda: None)
        self._before_start = before_start or (lambda job: None)

    def start(self, job: EngineJob, placement: Placement, now_s: float) -> None:
        self._flush()
        self._before_act()
        self._before_start(job)
        self._backend.start(job, placement, now_s)

    def stop(self, job_id: str, now_s: float, reason: str) -> None:
        self._flush()
        self._before_act()
        self._backend.stop(job_id, now_s, reason)

    def poll(self, now_s: float) -> list[BackendEvent]:
        return self._backend.poll(now_s)

    def next_event_s(self) -> float | None:
        return self._backend.next_event_s()


TEMPLATES_MAX = 1024


class Runner:
    """Engine + backend + the loop that steps them on the wall clock."""

    def __init__(self, db: Database, network: Network, *, backend: str = "local",
                 policy: str = "fifo", round_s: float = 2.0, tick_s: float = 0.25,
                 data_dir: Path, ray_address: str | None = None,
                 stop_jobs_on_shutdown: bool = False,
                 realloc_interval_s: float | None = None, lease: Lease | None = None,
                 sweep_s: float = SWEEP_S,
                 on_network: Callable[[Network], None] | None = None,
                 isolation: str = "sandbox") -> None:
        from suanli.engine import WallClock

        self.db = db
        self.data_dir = Path(data_dir)
        self.tick_s = tick_s
        self.stop_jobs_on_shutdown = stop_jobs_on_shutdown
        self.lease = lease  # None: this process alone schedules (no replicas)
        self.sweep_s = sweep_s
        self.on_network = on_network  # told of a network edited through any replica
        self._network = network
        self.clock = WallClock()
        self._backend_name, self._ray_address = backend, ray_address
        self._isolation = isolation
        self._policy, self._round_s, self._realloc_s = policy, round_s, realloc_interval_s
        self._fast = FastPath(db.dialect)
        self._held: list[dict[str, Any]] | None = None  # transitions not yet written
        self._templates: dict[tuple[str, int | None], Any] = {}  # spec shape -> EngineJob
        self._build()
        self.is_leader = lease is None
        with db.read() as conn:
            self._network_version = store_leader.network_version(conn)
        self._network_nudged = False
        self._next_network_check = time.monotonic() + NETWORK_POLL_S
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prices: dict[tuple[str, str], tuple[Decimal, Decimal | None]] = {}
        self._spot: dict[str, bool] = {}  # job id -> may run on spot price
        self._stop_reasons: dict[str, str] = {}  # job id -> why the runner ends it (credits)
        self._voucher_terms: dict[int, tuple[Any, ...]] = {}  # tenant -> vouchers, this tick
        self._next_hold_check = 0.0  # monotonic time of the next overrun check
        self._handles_known: set[str] = set()
        self._recovering = False
        self._next_sweep = time.monotonic() + sweep_s
        self._drained_at = time.time()  # when the inbox was last read
        self.utilisation: dict[str, tuple[int, int]] = {}  # pool id -> (chips used, capacity)
        # The engine's load as the planner sees it, for the plan preview (any thread reads it).
        self.live_state: NetworkState = NetworkState()
        self._state_round = -1
        self.steps = 0
        self.last_error: str | None = None
        self._refresh_prices()

    def _build(self) -> None:
        """A fresh backend and engine (at start, and at each new leadership)."""
        from suanli.backends import make_backend
        from suanli.engine import Cluster, Engine
        from suanli.policies.registry import get_policy

        self.cluster = Cluster.from_network(self._network)
        kwargs: dict[str, Any] = {"root_dir": self.data_dir, "isolation": self._isolation}
        if self._backend_name == "ray" and self._ray_address:
            kwargs["address"] = self._ray_address
        self.backend: ServiceBackend = make_backend(self._backend_name, **kwargs)
        self.engine = Engine(self.cluster, get_policy(self._policy), self.clock,
                             _WriteFirst(self.backend, self._write_held, self._check_lease,
                                         self._fetch_workdir),
                             round_s=self._round_s, listener=self._on_transition,
                             realloc_interval_s=self._realloc_s)

    def _fetch_workdir(self, job: EngineJob) -> None:
        """The job's uploaded code from the database into this machine's cache, where the
        backend reads it (another replica may have taken the submission)."""
        digest = job.meta.get("workdir")
        if digest:
            uploads.ensure_local(self.db, self.data_dir, digest)

    # -- called from HTTP handlers (any thread) ----------------------------------------------

    def submit(self, job_id: int, row: dict[str, Any] | None = None) -> None:
        """Schedule a pending job; `row`: the job as just committed (saves reading it back).
        A follower ignores it: the leader's sweep finds the job in the database."""
        if self.is_leader:
            self._inbox.put(("submit", job_id if row is None else (job_id, row)))

    def cancel(self, job_id: int) -> None:
        """Act on a cancel (its flag is in the database: a follower leaves it to the leader)."""
        if self.is_leader:
            self._inbox.put(("cancel", job_id))

    def network_changed(self, network: Network | None = None) -> None:
        """The network was edited: given, use it now; else read it from the database soon."""
        if network is not None:
            self._inbox.put(("network", network))
        self._network_nudged = True

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Recover and loop; with a lease, only once this replica has taken it."""
        if self.lease is None:
            self.recover()
        else:
            try:
                self._lead()
            except LostLeadership as exc:
                self._step_down(str(exc))
        self._thread = threading.Thread(target=self._loop, name="suanli-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop. The leader stops its jobs only if told to, and hands the lease
        back; a follower touches no job."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.is_leader:
            self.backend.shutdown(stop_jobs=self.stop_jobs_on_shutdown)
        else:
            self.backend.shutdown(stop_jobs=False)  # a follower's backend ran nothing
        self.is_leader = self.lease is None
        if self.lease is not None:
            self.lease.release()

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = self.tick_s
            try:
                if self._lead():
                    self.tick()
                else:
                    wait = FOLLOW_S
                    self._poll_network()
            except LostLeadership as exc:
                self._step_down(str(exc))
            except Exception as exc:  # noqa: BLE001 - the loop must outlive one bad step
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("scheduler step failed")
            self._stop.wait(wait)

    # -- leadership --------------------------------------------------------------------------

    def _lead(self) -> bool:
        """Whether this replica schedules now; takes the lease over when it is free."""
        if self.is_leader:
            return True
        assert self.lease is not None
        if not self.lease.try_acquire():
            return False
        self._become_leader()
        return True

    def _become_leader(self) -> None:
        """A fresh engine and backend, rebuilt from the database (adopting what runs)."""
        self._poll_network(force=True)
        self._build()
        self._templates.clear()
        self._handles_known.clear()
        self._spot.clear()
        self._inbox = queue.SimpleQueue()
        self.is_leader = True
        self._drained_at = time.time()
        counts = self.recover()
        log.warning("scheduler recovered: %s", counts)

    def _step_down(self, reason: str) -> None:
        """The lease is lost: stop scheduling, forget every job, and touch no process (the
        new leader adopts them)."""
        log.warning("stepping down: %s", reason)
        self.last_error = f"stepped down: {reason}"
        self.is_leader = False
        self._held = None
        self._recovering = False
        self.utilisation = {}
        if self.lease is not None:
            self.lease.step_down()
        self.backend.shutdown(stop_jobs=False)

    def _check_lease(self) -> None:
        if self.lease is not None:
            self.lease.check()

    @contextlib.contextmanager
    def _fenced_write(self) -> Iterator[Any]:
        """`db.write()`, but only while this replica leads: the lease's token is checked in
        the same transaction (and the transaction rolled back if another replica took it)."""
        with self.db.write() as conn:
            if self.lease is not None:
                token = self.lease.check()
                if not store_leader.fence(conn, token):
                    self.lease.step_down()
                    raise LostLeadership(f"fencing token {token} is no longer current")
            yield conn

    def leader_info(self) -> dict[str, Any]:
        """Which replica leads, for /healthz and `suanli status`."""
        with self.db.read() as conn:
            info = store_leader.current(conn)
        me = self.lease.holder if self.lease is not None else None
        return {**info, "replica": me, "leading": self.is_leader,
                "token_held": self.lease.token if self.lease is not None else None}

    # -- the loop ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Drain the inbox, step the engine once, remember new process handles.

        The transitions of the drain and the step are written in one transaction (sooner if
        the engine calls the backend meanwhile)."""
        self._check_lease()
        self._poll_network()
        self._held = []
        self._voucher_terms.clear()
        try:
            self._drained_at = time.time()
            self._drain()
            self.engine.step()
            self._check_holds()
        finally:
            try:
                if self._held:
                    self._write_held()
            finally:
                self._held = None
        self.steps += 1
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.sweep_s
            self._sweep()
        self._store_handles()
        self._measure()

    def _poll_network(self, force: bool = False) -> None:
        """Read the network version (about once a second, or at once after a local edit);
        when an admin edit through any replica changed it, load the network and use it."""
        now = time.monotonic()
        if not (force or self._network_nudged or now >= self._next_network_check):
            return
        self._network_nudged = False
        self._next_network_check = now + NETWORK_POLL_S
        with self.db.read() as conn:
            version = store_leader.network_version(conn)
            if version == self._network_version:
                return
            net = store_network.load(conn)
        self._network_version = version
        if self.on_network is not None:
            self.on_network(net)
        if self.is_leader:
            self._set_network(net)
        else:
            self._network = net

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
        unseen = [job_id for job_id, state, _c in rows
                  if state == "pending" and str(job_id) not in self.engine.jobs]
        if unseen:  # admitted through another replica (or an inbox item lost): one read
            with self.db.read() as conn:
                found = conn.execute(select(J).where(J.c.id.in_(unseen)).order_by(J.c.id))
                for row in found.mappings():
                    self._inbox.put(("submit", (int(row["id"]), dict(row))))
        for job_id, _state, cancel in rows:
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
        meta = dict(ej.meta)
        meta.update(self._job_meta(row, spec))
        return dataclasses.replace(ej, meta=meta, max_retries=row["max_retries"],
                                   tenant=str(row["tenant_id"]),
                                   vouchers=self._vouchers_of(int(row["tenant_id"])))

    def _vouchers_of(self, tenant_id: int) -> tuple[Any, ...]:
        """The tenant's vouchers that can pay now, read once per tick (a burst of one tenant's
        submissions is one read, not one per job)."""
        terms = self._voucher_terms.get(tenant_id)
        if terms is None:
            terms = self._voucher_terms[tenant_id] = active_terms(self.db, tenant_id)
        return terms

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
        return dataclasses.replace(template, job_id=jid, arrival_s=float(arrival_s), spec=spec,
                                   deadline_s=deadline,
                                   meta={**template.meta, "name": spec.name})

    def _job_meta(self, row: dict[str, Any], spec: JobSpec) -> dict[str, Any]:
        env = {**spec.env, "SUANLI_TENANT_ID": str(row["tenant_id"])}
        meta: dict[str, Any] = {"run": spec.run, "setup": spec.setup, "env": env,
                                "log_path": row["log_path"] or str(self.log_path(row["id"])),
                                "workdir": spec.workdir,
                                "retry_on_exit_codes": spec.retry_on_exit_codes}
        if not spec.run and row.get("est_run_s"):
            meta["duration_s"] = float(row["est_run_s"])
        known = self._network.dataset(spec.dataset.name) if spec.dataset is not None else None
        if known is not None and known.path:  # registered: the backend copies it when staged
            meta["dataset_name"], meta["dataset_path"] = known.name, known.path
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
        with self._fenced_write() as conn:
            store_jobs.record_transition(conn, job_id, old, new, reason, None,
                                         at=self.clock.now())

    def _set_network(self, network: Network) -> None:
        """Hand the engine the new pools: runs on removed capacity are checkpointed and
        requeued, the next round places on what there is now."""
        from suanli.engine import Cluster

        self._network = network
        self._templates.clear()
        self._refresh_prices()
        self.cluster = Cluster.from_network(network)
        stopped = self.engine.set_cluster(self.cluster, self.clock.now())
        if stopped:
            log.warning("network change: jobs %s checkpointed and requeued", stopped)

    def _refresh_prices(self) -> None:
        with self.db.read() as conn:
            self._prices = store_network.prices(conn)

    # -- the listener: the database first ----------------------------------------------------

    def _on_transition(self, tr: Any) -> None:
        new, old = str(tr.new), str(tr.old) if tr.old is not None else None
        if self._recovering and not self._recovery_writes(tr.job_id, new):
            return
        placement = placement_dict(tr.placement)
        hold = None
        if new in ("staging", "starting") and old != "staging" and placement and \
                placement.get("count"):  # placed: the hold is re-priced before it starts
            hold = self._placement_hold(tr.job_id, tr.placement, placement)
        reason = tr.reason or ""
        if new in TERMINAL_STATES:
            reason = self._stop_reasons.pop(tr.job_id, reason)
        extra: dict[str, Any] = {}
        rec = self.engine.jobs.get(tr.job_id)
        if rec is not None:
            extra["retries"] = rec.retries
            extra["done_work"] = rec.done_work
        if new not in ON_CHIPS:
            self._handles_known.discard(tr.job_id)
            if new in WAITING or new in TERMINAL_STATES:
                extra["handle"] = None
        item = {"job_id": int(tr.job_id), "old": old, "new": new, "reason": reason,
                "placement": placement, "at": tr.at_s, "hold": hold, "extra": extra}
        if self._held is not None and not self._recovering:
            self._held.append(item)  # written before the backend acts (see _WriteFirst)
            if hold is not None:
                self._write_held()  # the re-priced hold is taken (or refused) now
        else:
            with self._fenced_write() as conn:
                self._write(conn, item)
        refused = item.get("refused")
        if refused is not None:  # the tenant cannot pay for this pool: it must not start
            self._stop_reasons[tr.job_id] = refused.reason
            self.engine.cancel(tr.job_id)

    def _placement_hold(self, job_id: str, engine_placement: Placement,
                        placement: dict[str, Any]) -> store_jobs.PlacementHold:
        """What the job must hold where it is placed: the pool's price x chips x the engine's
        estimate of its run there (at least billing.MIN_HOLD_S)."""
        thr = float(engine_placement.throughput)
        work = float(engine_placement.work_remaining)
        remaining = work / thr if thr > 0 and math.isfinite(work / thr) else None
        planned = engine_placement.planned_cost
        price = self._price_of(job_id, placement)
        if placement.get("parts"):
            price = self._mixed_price(job_id, placement)
        option = None
        if planned is not None and math.isfinite(planned):
            option = money(repr(float(planned)))  # as the admission estimate prices it
        egress = money(repr(float(engine_placement.egress_cost)))
        return store_jobs.PlacementHold(price, int(placement["count"]), remaining,
                                        placement.get("pool_id") or str(placement["pool"]),
                                        option, egress)

    def _write_held(self) -> None:
        """Commit the held transitions in one transaction, in the order they happened."""
        held = self._held
        if not held:
            return
        with self._fenced_write() as conn:
            for item in held:
                self._write(conn, item)
        held.clear()

    def _write(self, conn: Any, item: dict[str, Any]) -> None:
        if item["new"] not in TERMINAL_STATES and item.get("hold") is None:
            # No money moves: the plain-SQL path.
            self._fast.record_transition(conn, item["job_id"], item["old"], item["new"],
                                         item["reason"], item["placement"], item["at"],
                                         item["extra"] or None)
            return
        try:
            store_jobs.record_transition(conn, item["job_id"], item["old"], item["new"],
                                         item["reason"], item["placement"], at=item["at"],
                                         extra=item["extra"] or None, hold=item.get("hold"))
        except billing.PlacementRefused as exc:  # nothing was written for this item
            item["refused"] = exc

    def _recovery_writes(self, job_id: str, new: str) -> bool:
        """While rebuilding the engine, the database is the truth: replaying a job into the
        engine passes it through queued again, which must not be written over 'running'."""
        if new in TERMINAL_STATES:
            return True
        with self.db.read() as conn:
            stored = store_jobs.get_job(conn, int(job_id))["state"]
        return stored == "pending" and new == "queued"

    def _mixed_price(self, job_id: str, placement: dict[str, Any]) -> Decimal:
        """A mixed-chip gang's price per chip-hour: each part at its own pool's price,
        averaged over the gang's chips (the job row bills count x price), rounded up to the
        price column's scale (never under the parts' sum). Each part's price is noted in it."""
        total, chips = Decimal(0), 0
        for part in placement["parts"]:
            part["price_per_chip_hour"] = str(self._price_of(job_id, part))
            total += Decimal(part["price_per_chip_hour"]) * int(part["count"])
            chips += int(part["count"])
        return (total / chips).quantize(Decimal("0.0001"), rounding=ROUND_CEILING)

    def _price_of(self, job_id: str, placement: dict[str, Any]) -> Decimal:
        """The chip-hour price of a placement, spot if the job asked for it and it is offered."""
        key = (placement["center"], placement["pool"])
        if key not in self._prices:  # a pool added since the prices were read
            self._refresh_prices()
        price, spot = self._prices.get(key, (Decimal(0), None))
        if self._spot.get(job_id) and spot is not None:
            return spot
        return price

    def _check_holds(self) -> None:
        """Every billing.CHECK_S: extend the hold of each running job whose spend nears it,
        and stop (cancel, with the numbers) those whose tenant has no credit left to extend
        it, before their spend passes the hold."""
        now_m = time.monotonic()
        if now_m < self._next_hold_check or not any(self.engine.used_chips.values()):
            return
        self._next_hold_check = now_m + billing.CHECK_S
        self._write_held()  # the database first: it must know what the engine just did
        now = self.clock.now()
        with self.db.read() as conn:
            running = billing.running_jobs(conn)
        running = [j for j in running if _state(self.engine.jobs.get(str(j["id"]))) in ON_CHIPS]
        if not billing.short_of_hold(running, now):
            return
        with self._fenced_write() as conn:
            stops = billing.enforce_holds(conn, running, now)
        for stop in stops:
            jid = str(stop.job_id)
            log.info("job %s: %s", jid, stop.reason)
            self._stop_reasons[jid] = stop.reason
            if not self.engine.cancel(jid):
                self._stop_reasons.pop(jid, None)

    # -- process handles and recovery --------------------------------------------------------

    def _adopting(self) -> AdoptingBackend | None:
        """The backend as one that names and re-attaches to processes, if it declares so."""
        if self.backend.capabilities.adopt:
            return cast(AdoptingBackend, self.backend)
        return None

    def _store_handles(self) -> None:
        backend = self._adopting()
        if backend is None:
            return
        for jid in backend.running():
            if jid in self._handles_known:
                continue
            try:
                h = backend.handle(jid)
            except KeyError:
                continue
            with self._fenced_write() as conn:
                store_jobs.update_job(conn, int(jid), handle=json.dumps(h.to_dict()))
            self._handles_known.add(jid)

    def recover(self) -> dict[str, int]:
        """Put the database's active jobs back into a fresh engine (after a restart)."""
        with self.db.read() as conn:
            rows = store_jobs.active_jobs(conn)
        counts = {"requeued": 0, "adopted": 0, "lost": 0}
        self._voucher_terms.clear()
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
        if state in ON_CHIPS and (self._adopting() is None or row.get("placement_parts")):
            # A mixed-chip gang is placed again as a whole rather than re-attached.
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
                              count=int(row["count"] or ej.num_chips),
                              accelerator=row["accelerator"] or "", center=row["center"])
        handle = json.loads(row["handle"]) if row["handle"] else self._launch_record(row)
        if handle is None and state == "starting":
            # Written as starting, but no process was ever launched (the leader died in
            # between): it never ran, so it queues again without using up a retry.
            rec = self.engine.restore(ej, JobState.QUEUED, None, row["done_work"] or 0.0)
            self._retries(rec, row)
            self._note(row, "queued", "requeued after restart: it had not started")
            counts["requeued"] += 1
            return
        if not self._room_for(placement):
            # The pool shrank or vanished while we were down: end the orphan run, queue again.
            self._stop_orphan(row, handle, ej, placement, now)
            self._note(row, "queued", f"requeued after restart: pool {placement.pool_id} no "
                                      f"longer has {placement.count} free chips")
            self._retries(self.engine.submit(ej), row)  # may fail it: nowhere else to run
            counts["requeued"] += 1
            return
        # Restore first (so the engine knows the job holds chips), then adopt: a process
        # that ended while we were down shows up as a backend event on the next step.
        rec = self.engine.restore(ej, JobState.RUNNING, placement, row["done_work"] or 0.0)
        self._retries(rec, row)
        if handle:
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
        return free >= placement.count

    def _stop_orphan(self, row: dict[str, Any], handle: dict[str, Any] | None, ej: Any,
                     placement: Any, now: float) -> None:
        """Adopt a still-running process only to stop it: its placement is gone."""
        if handle and self._adopt(row, handle, ej, placement, now):
            self._check_lease()
            self.backend.stop(str(row["id"]), now, "failure")

    def _adopt(self, row: dict[str, Any], handle: dict[str, Any], ej: Any, placement: Any,
               now: float) -> bool:
        """Re-attach the backend to a run's process by its stored identity."""
        from suanli.backends.types import run_spec_from

        backend = self._adopting()
        if backend is None:
            return False
        return backend.adopt(
            str(row["id"]), int(handle["pid"]), int(handle["pgid"]), ej.meta.get("log_path"),
            int(handle.get("started_at_ticks") or 0) or None,
            boot_id=str(handle.get("boot_id", "")), spec=run_spec_from(ej, placement), now_s=now)

    @staticmethod
    def _retries(rec: JobRecord, row: dict[str, Any]) -> None:
        """Retries survive a restart: the engine counts from the stored number."""
        rec.retries = max(int(rec.retries), int(row["retries"] or 0))

    def _note(self, row: dict[str, Any], state: str, reason: str) -> None:
        """An event that records a restart without changing the stored state's meaning."""
        from sqlalchemy import insert

        from suanli.store.models import JobEvent

        with self._fenced_write() as conn:
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
        self.backend.report_lost(job_id, now, "process gone (never recorded)")

    # -- metrics -----------------------------------------------------------------------------

    def _measure(self) -> None:
        used = self.engine.used_chips
        self.utilisation = {p.pool_id: (used.get(p.pool_id, 0), p.capacity)
                            for p in self.cluster.pools}
        if self.engine.rounds != self._state_round:  # the load changes at rounds
            self._state_round = self.engine.rounds
            self.live_state = self.engine.network_state(self.clock.now())


def _state(rec: JobRecord) -> str:
    return str(rec.state)

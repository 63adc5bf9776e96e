"""The `ray` backend: each job attempt is a Ray task on a node of its placement's center.

Centers are Ray nodes carrying custom resources `center:<id>` and `accelerator_type:<X>`
(and `pool:<center/pool>` with the pool's chip count; `start_local_ray_cluster` sets all
three). A task asks for 0.001 of `center:<center>` and of `accelerator_type:<accelerator>`:
markers that pin it to a node of the placement without limiting how many jobs share it,
because the engine already decides capacity (a second capacity check in Ray could queue a
task the engine believes is running). With `request_pool_chips=True` a task also asks for
`count` units of `pool:<center/pool>`, so Ray enforces the pool's chips as well; with
`num_gpus_per_chip` it asks for real GPUs. The task itself takes no CPU (`num_cpus_per_job`):
it only supervises the job's process.

Inside the task the job runs exactly as in the local backend (same wrapper, isolation, env
variables, job directory, appended log with a header per attempt; `SUANLI_RAY_NODE_ID` is added),
and
the task returns the exit code, node id, hostname and the resources it was granted
(`result(job_id)`). Nothing of the service's or the Ray worker's environment travels with a
job: the task's payload holds the job's own spec, and its environment is a minimal
PATH/LANG/TMPDIR, its `env:` and its SUANLI_* variables (`inherit_env` is empty unless the
operator names variables). By default (`isolation="sandbox"`) it runs in the same bubblewrap
sandbox as a local job, so it cannot read the Ray worker's /proc either; a node without
bubblewrap fails the job with an error naming the fix. The job directory root must be
reachable at the same path from every node (a shared filesystem, or one machine as in
`start_local_ray_cluster`).

A job whose dataset must move first (`RunSpec.dataset_path`) is staged by a Ray task on a node
of its center (the same `center:<id>` marker): it copies the registered directory into that
node's center data directory (`backends/staging.py`, nothing moved when a copy is there),
streaming each progress sentence back as the job's `progress` events; the job then launches
with SUANLI_DATASET_DIR. A job stopped mid-copy is never launched and leaves no partial copy.

`poll` is `ray.wait(timeout=0)`. `stop` is `ray.cancel(force=True)`, which kills the task's
worker; the wrapper watches its owner (the worker) and SIGTERMs the job's process group when
it is gone, then SIGKILLs it after `grace_s`, so the job's whole group goes wherever it runs.

Ray tasks belong to the driver that launched them: they do not outlive a service restart
(there is no `adopt`); the service reports such jobs lost and the engine retries them, and a
job resumes from SUANLI_CHECKPOINT_DIR.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from suanli.backends import _proc
from suanli.backends.sandbox import Isolation, make_isolation
from suanli.backends.staging import copy_dataset, dataset_dir
from suanli.backends.types import BackendCapabilities, BackendEvent, RunSpec, run_spec_from
from suanli.errors import SuanliError

MARKER = 0.001  # of a center / accelerator marker resource: a constraint, not a share
MARKER_CAPACITY = 1000.0  # markers a node of `start_local_ray_cluster` carries


def import_ray() -> Any:
    """Ray is an optional extra; say how to get it."""
    try:
        import ray
    except ImportError as exc:
        raise SuanliError("the ray backend needs Ray: pip install 'suanli[ray]'",
                          field="backend", value="ray") from exc
    return ray


def use_loopback() -> None:
    """Keep Ray on 127.0.0.1. On Linux Ray turns "127.0.0.1" into the machine's outward address
    (for multi-machine clusters) unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0; that variable is
    read when Ray is imported, so the constant is also set if Ray is already loaded."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    consts = sys.modules.get("ray._private.ray_constants")
    if consts is not None and hasattr(consts, "ENABLE_RAY_CLUSTER"):
        consts.ENABLE_RAY_CLUSTER = False


def _is_loopback(address: str | None) -> bool:
    return address is None or address.startswith(("127.0.0.1:", "localhost:", "[::1]:"))


def placement_resources(spec: RunSpec, request_pool_chips: bool = False) -> dict[str, float]:
    """The custom resources a job's task asks for. A mixed-chip gang is one task (it starts
    once, with SUANLI_PLACEMENT) on a node of its center that carries every part's chip
    marker, and with `request_pool_chips` each part's chips of its own pool: the parts of
    a split share one center (`plan/hetero.py`), which is one node of a local Ray cluster."""
    res = {f"center:{spec.center}": MARKER}
    parts = json.loads(spec.placement) if spec.placement else []
    if len(parts) > 1:
        for part in parts:
            res[f"accelerator_type:{part['accelerator']}"] = MARKER
            if request_pool_chips:
                res[f"pool:{part['pool_id']}"] = float(part["count"])
        return res
    if spec.accelerator:
        res[f"accelerator_type:{spec.accelerator}"] = MARKER
    if request_pool_chips and spec.pool_id:
        res[f"pool:{spec.pool_id}"] = float(spec.count)
    return res


@functools.cache
def _isolation_on_this_node(name: str, inherit_env: tuple[str, ...]) -> Isolation:
    """Built (and self-checked) once per worker process."""
    return make_isolation(name, inherit_env)


def _run_attempt(payload: dict[str, Any]) -> dict[str, Any]:
    """Body of the Ray task: run one attempt on this node, return how it ended and where."""
    import ray

    ctx = ray.get_runtime_context()
    node_id = ctx.get_node_id()
    hostname = socket.gethostname()
    resources = ctx.get_assigned_resources()
    spec = RunSpec(**payload["spec"])
    dirs = _proc.JobDirs.of(payload["root_dir"], spec.job_id)
    dirs.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    checkpoint = Path(spec.checkpoint_dir) if spec.checkpoint_dir else dirs.checkpoint
    log_path = Path(spec.log_path) if spec.log_path else dirs.default_log
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    dirs.prepare(checkpoint)
    attempt = dirs.next_attempt()
    _proc.append_log(log_path, f"attempt {attempt} job={spec.job_id} pool={spec.pool_id} "
                               f"accelerator={spec.accelerator} count={spec.count} "
                               f"ray-node={node_id} host={hostname}")
    if payload.get("workdir_archive") is not None:  # the job's code travels with the task
        from suanli.jobs import workdir

        workdir.store(Path(payload["root_dir"]), payload["workdir_archive"])
        _proc.unpack_workdir(spec, dirs, Path(payload["root_dir"]), log_path)
    run = payload["run"]
    if not spec.run:
        _proc.append_log(log_path, f"no `run` command: sleeping the estimated "
                                   f"{spec.duration_s:g} s")
    isolation = _isolation_on_this_node(payload["isolation"], tuple(payload["inherit_env"]))
    conf = isolation.confine(spec, dirs.work, checkpoint, {"SUANLI_RAY_NODE_ID": node_id})
    popen = _proc.spawn(setup=spec.setup, run=run, cwd=dirs.work, env=conf.wrapper_env,
                        log_path=log_path, exit_file=dirs.exit_file, owner_pid=os.getpid(),
                        grace_s=payload["grace_s"], prefix=conf.prefix)
    code = popen.wait()
    kind = "succeeded" if code == 0 else "failed"
    _proc.append_log(log_path, f"attempt {attempt} {kind}: {_proc.describe_exit(code)}")
    return {"exit_code": code, "retry_codes": list(spec.retry_on_exit_codes),
            "node_id": node_id, "hostname": hostname,
            "resources": dict(resources), "pid": popen.pid, "attempt": attempt}


def _stage_dataset(payload: dict[str, Any]) -> Iterable[Any]:
    """Body of the staging task (a Ray generator, on a node of the target center): copy the
    registered dataset into this node's center data directory, yielding each progress
    sentence as it is said, then a dict saying whether the copy is there and where it ran.
    The copy runs on a thread; a cancelled task tells it to stop between files, and
    `copy_dataset` then leaves no partial copy behind."""
    import queue

    import ray

    dst = dataset_dir(Path(payload["root_dir"]), payload["center"], payload["name"])
    lines: queue.Queue[str | None] = queue.Queue()
    stopped = threading.Event()
    ok: list[bool] = []

    def copy() -> None:
        try:
            ok.append(copy_dataset(Path(payload["src"]), dst, lines.put, stopped.is_set))
        finally:
            lines.put(None)

    worker = threading.Thread(target=copy, name="stage-dataset", daemon=True)
    worker.start()
    try:
        while (line := lines.get()) is not None:
            yield line
    finally:  # normal end, or the task was cancelled (KeyboardInterrupt) mid-copy
        stopped.set()
        worker.join()
    yield {"ok": bool(ok and ok[0]), "dst": str(dst),
           "node_id": ray.get_runtime_context().get_node_id()}


class RayBackend:
    """Runs jobs as Ray tasks pinned to their placement's center; the engine's Backend."""

    name = "ray"
    capabilities = BackendCapabilities(adopt=False, live_nodes=True)  # tasks die with driver

    def __init__(self, root_dir: str | Path, address: str | None = None, *,
                 grace_s: float = 10.0, request_pool_chips: bool = False,
                 num_gpus_per_chip: float = 0.0, num_cpus_per_job: float = 0.0,
                 isolation: str = "sandbox", inherit_env: Iterable[str] = (),
                 init_kwargs: Mapping[str, Any] | None = None) -> None:
        """`address`: None starts a local single-node Ray, "auto" or "host:port" joins one
        (a loopback address keeps the driver on 127.0.0.1, see `use_loopback`); a process
        already connected (ray.is_initialized()) is reused as it is."""
        if _is_loopback(address):
            use_loopback()
        ray = import_ray()
        self._ray = ray
        self.root_dir = Path(root_dir).resolve()
        self.root_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.grace_s = grace_s
        self.request_pool_chips = request_pool_chips
        self.num_gpus_per_chip = num_gpus_per_chip
        self.num_cpus_per_job = num_cpus_per_job
        self.isolation = isolation
        self.inherit_env = tuple(inherit_env)
        self._owns_ray = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False}
            if address is None:
                kwargs.update(include_dashboard=False, _node_ip_address="127.0.0.1")
            elif _is_loopback(address):
                kwargs.update(_node_ip_address="127.0.0.1")
            kwargs.update(init_kwargs or {})
            ray.init(address=address, **kwargs)
            self._owns_ray = True
        self._task = ray.remote(_run_attempt)
        self._stage_task = ray.remote(_stage_dataset)
        self._staging: dict[str, threading.Event] = {}  # job -> set when stopped mid-copy
        self._staging_refs: dict[str, Any] = {}  # job -> its staging task's generator
        self._stagings: dict[str, dict[str, Any]] = {}  # job -> how its last staging ended
        self._refs: dict[str, Any] = {}  # job id -> ObjectRef of its running attempt
        self._pending: list[BackendEvent] = []
        self._results: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -- the engine's Backend protocol -------------------------------------------------------

    def start(self, job: Any, placement: Any, now_s: float) -> None:
        spec = run_spec_from(job, placement)
        if spec.dataset_path and spec.dataset_name:
            self.stage(spec, now_s)
        else:
            self.launch(spec, now_s)

    def stop(self, job_id: str, now_s: float, reason: str = "cancel") -> None:
        """Force-cancel the task; the job's process group follows it (see module doc)."""
        with self._lock:
            ref = self._refs.pop(job_id, None)
            self._pending = [e for e in self._pending if e.job_id != job_id]
            staging = self._staging.pop(job_id, None)
            stage_ref = self._staging_refs.pop(job_id, None)
        if staging is not None:
            staging.set()  # never launched; the task's copy stops between files
            try:
                self._ray.cancel(stage_ref)
            except Exception:  # noqa: BLE001 - it may have finished meanwhile
                pass
        if ref is None:
            return
        try:
            self._ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001 - it may have finished meanwhile; nothing to stop
            pass
        try:
            _proc.append_log(self._log_path(job_id), f"stop requested: {reason}")
        except OSError:
            pass

    def poll(self, now_s: float) -> list[BackendEvent]:
        """Events for tasks that ended since the last poll (ray.wait with timeout 0)."""
        ray = self._ray
        with self._lock:
            events, self._pending = self._pending, []
            by_ref = {ref: job_id for job_id, ref in self._refs.items()}
        if by_ref:
            ready, _ = ray.wait(list(by_ref), num_returns=len(by_ref), timeout=0)
            for ref in ready:
                job_id = by_ref[ref]
                with self._lock:
                    if self._refs.get(job_id) is not ref:
                        continue  # stopped meanwhile
                    del self._refs[job_id]
                events.append(self._event_for(job_id, ref, now_s))
        return events

    def next_event_s(self) -> float | None:
        return None

    # -- launching ---------------------------------------------------------------------------

    def launch(self, spec: RunSpec, now_s: float) -> None:
        with self._lock:
            if spec.job_id in self._refs:
                raise SuanliError(f"job {spec.job_id} is already running on this backend",
                                  field="job_id", value=spec.job_id)
        run = _proc.command_for(spec)
        if run is None:
            self._queue(BackendEvent(spec.job_id, "failed", now_s,
                                     "job has no `run` command and no duration_s to simulate"))
            return
        resources = placement_resources(spec, self.request_pool_chips)
        missing = self._unplaceable(resources)
        if missing:  # not the job's failure: the engine re-places it, no retry (engine/avoid.py)
            self._queue(BackendEvent(spec.job_id, "unplaceable", now_s,
                                     f"no live Ray node carries {missing} (attach a machine: "
                                     f"suanli node join --center {spec.center} --address "
                                     f"RAY_HEAD)"))
            return
        payload = {"spec": {**asdict(spec), "env": dict(spec.env)}, "run": run,
                   "root_dir": str(self.root_dir), "grace_s": self.grace_s,
                   "isolation": self.isolation, "inherit_env": list(self.inherit_env),
                   "workdir_archive": self._workdir_archive(spec)}
        ref = self._task.options(
            num_cpus=self.num_cpus_per_job, num_gpus=self.num_gpus_per_chip * spec.count,
            resources=resources, max_retries=0, retry_exceptions=False,
            name=f"suanli:{spec.job_id}",
        ).remote(payload)
        with self._lock:
            self._refs[spec.job_id] = ref

    def stage(self, spec: RunSpec, now_s: float) -> None:
        """Move the job's dataset with a task on a node of its center (once per center: the
        task finds a copy already there), its progress sentences queued as the job's events;
        then launch the job with SUANLI_DATASET_DIR set to the copy. A job stopped meanwhile
        is not launched."""
        resources = {f"center:{spec.center}": MARKER}
        missing = self._unplaceable(resources)
        if missing:
            self._queue(BackendEvent(spec.job_id, "failed", now_s,
                                     f"no live Ray node carries {missing} to stage dataset "
                                     f"{spec.dataset_name} (attach a machine: suanli node join "
                                     f"--center {spec.center} --address RAY_HEAD)"))
            return
        cancel = threading.Event()
        payload = {"root_dir": str(self.root_dir), "center": spec.center,
                   "name": str(spec.dataset_name), "src": str(spec.dataset_path)}
        gen = self._stage_task.options(
            num_cpus=0, resources=resources, max_retries=0, retry_exceptions=False,
            name=f"suanli-stage:{spec.job_id}").remote(payload)
        with self._lock:
            self._staging[spec.job_id] = cancel
            self._staging_refs[spec.job_id] = gen
        t0 = time.monotonic()

        def clock() -> float:  # the engine's clock, as it was handed to start()
            return now_s + time.monotonic() - t0

        def follow() -> None:
            done: dict[str, Any] = {}
            try:
                for ref in gen:
                    item = self._ray.get(ref)
                    if isinstance(item, dict):
                        done = item
                    elif not cancel.is_set():
                        self._queue(BackendEvent(spec.job_id, "progress", clock(), item))
            except self._ray.exceptions.RayError as exc:
                done = {"ok": False, "error": f"{type(exc).__name__}"}
            with self._lock:
                if self._staging.get(spec.job_id) is not cancel or cancel.is_set():
                    return
                self._staging_refs.pop(spec.job_id, None)
                self._stagings[spec.job_id] = done
                if not done.get("ok"):
                    del self._staging[spec.job_id]
            if not done.get("ok"):
                self._queue(BackendEvent(spec.job_id, "failed", clock(),
                                         f"could not stage dataset {spec.dataset_name}"
                                         + (f": ray {done['error']}" if "error" in done else "")))
                return
            env = {**spec.env, "SUANLI_DATASET_DIR": str(done["dst"])}
            self.launch(dataclasses.replace(spec, env=env), clock())
            with self._lock:  # still listed until launched, so a stop meanwhile is seen here
                if self._staging.get(spec.job_id) is cancel:
                    del self._staging[spec.job_id]
            if cancel.is_set():
                self.stop(spec.job_id, clock(), "cancel")

        threading.Thread(target=follow, name=f"stage-{spec.job_id}", daemon=True).start()

    def staging_result(self, job_id: str) -> dict[str, Any] | None:
        """How the job's last finished staging ended: ok, dst, node_id (the node that ran it)."""
        return self._stagings.get(job_id)

    def _workdir_archive(self, spec: RunSpec) -> bytes | None:
        """The job's uploaded code, read here and shipped in the task (nodes share no disk)."""
        if not spec.workdir:
            return None
        from suanli.jobs import workdir

        try:
            return workdir.upload_path(self.root_dir, spec.workdir).read_bytes()
        except OSError:
            return None  # the node reports the missing code in the job's log

    def live_centers(self) -> list[dict[str, Any]]:
        """The centers whose `center:<id>` marker a live Ray node carries, with the
        accelerators and pool chips those nodes declare (see `node_resources`)."""
        out: dict[str, dict[str, Any]] = {}
        for node in self._ray.nodes():
            if not node.get("Alive"):
                continue
            res: dict[str, float] = node.get("Resources", {})
            accs = [k.partition(":")[2] for k in res if k.startswith("accelerator_type:")]
            for key in res:
                if not key.startswith("center:"):
                    continue
                cid = key.partition(":")[2]
                c = out.setdefault(cid, {"center": cid, "nodes": 0, "accelerators": [],
                                         "chips": {}})
                c["nodes"] += 1
                c["accelerators"] = sorted(set(c["accelerators"]) | set(accs))
                for k, v in res.items():
                    center_of_pool, _, pool = k.partition(":")[2].partition("/")
                    if k.startswith("pool:") and center_of_pool == cid:
                        c["chips"][pool] = c["chips"].get(pool, 0) + int(v)
        return sorted(out.values(), key=lambda c: c["center"])

    def result(self, job_id: str) -> dict[str, Any] | None:
        """How and where the job's last finished attempt ran: exit_code, node_id, hostname,
        resources (those Ray granted the task), pid, attempt."""
        return self._results.get(job_id)

    def report_lost(self, job_id: str, now_s: float, detail: str = "process gone") -> None:
        self._queue(BackendEvent(job_id, "failed", now_s, detail))

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._refs)

    def shutdown(self, stop_jobs: bool = False) -> None:
        """Forget every job (stopping them if asked); disconnect if this backend connected.
        Tasks die with their driver, so a disconnect ends them either way."""
        with self._lock:
            staging = sorted(self._staging)
        for job_id in [*staging, *self.running()]:
            if stop_jobs:
                self.stop(job_id, 0.0, "cancel")
        with self._lock:
            self._refs.clear()
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns_ray = False

    # -- internals ---------------------------------------------------------------------------

    def _queue(self, event: BackendEvent) -> None:
        with self._lock:
            self._pending.append(event)

    def _log_path(self, job_id: str) -> Path:
        return _proc.JobDirs.of(self.root_dir, job_id).default_log

    def _unplaceable(self, resources: Mapping[str, float]) -> str:
        """'' if some live node carries every requested resource, else what none carries."""
        nodes = [n.get("Resources", {}) for n in self._ray.nodes() if n.get("Alive")]
        if any(all(r.get(k, 0.0) >= v for k, v in resources.items()) for r in nodes):
            return ""
        return " + ".join(f"{k}" for k in resources)

    def _event_for(self, job_id: str, ref: Any, now_s: float) -> BackendEvent:
        ray = self._ray
        try:
            result = ray.get(ref, timeout=10)
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return BackendEvent(job_id, "failed", now_s, f"ray: {type(exc).__name__}: {first}")
        self._results[job_id] = result
        code = int(result["exit_code"])
        detail = f"{_proc.describe_exit(code)} on ray node {result['node_id'][:12]}"
        retryable = _proc.infrastructure_failure(code, tuple(result.get("retry_codes", ())))
        return BackendEvent(job_id, "succeeded" if code == 0 else "failed", now_s, detail,
                            retryable=retryable)


@dataclass
class LocalRayCluster:
    """A multi-node Ray cluster on this machine, one node per center; `shutdown()` ends it."""

    cluster: Any
    address: str
    node_ids: dict[str, str] = field(default_factory=dict)  # center id -> Ray node id
    resources: dict[str, dict[str, float]] = field(default_factory=dict)  # center -> custom

    def center_of(self, node_id: str) -> str | None:
        return next((c for c, n in self.node_ids.items() if n == node_id), None)

    def shutdown(self) -> None:
        ray = import_ray()
        if ray.is_initialized():
            ray.shutdown()
        self.cluster.shutdown()

    def __enter__(self) -> LocalRayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


CentersSpec = Mapping[str, Sequence[str] | Mapping[str, str]]


def node_resources(centers: Any, chips_per_pool: int = 64) -> dict[str, dict[str, float]]:
    """Custom resources per center node, from a Network or {center: [accelerators]} or
    {center: {pool id: accelerator}} (pools named by accelerator in the list form)."""
    pools: dict[str, list[tuple[str, str, float]]] = {}
    if hasattr(centers, "centers"):  # a suanli Network
        for c in centers.centers:
            pools[c.id] = [(p.id, p.accelerator, float(p.chips)) for p in c.pools]
    else:
        for cid, accs in centers.items():
            pairs = accs.items() if isinstance(accs, Mapping) else ((a, a) for a in accs)
            pools[cid] = [(pid, acc, float(chips_per_pool)) for pid, acc in pairs]
    out: dict[str, dict[str, float]] = {}
    for cid, plist in pools.items():
        res = {f"center:{cid}": MARKER_CAPACITY}
        for pid, acc, chips in plist:
            res[f"accelerator_type:{acc}"] = MARKER_CAPACITY
            res[f"pool:{cid}/{pid}"] = res.get(f"pool:{cid}/{pid}", 0.0) + chips
        out[cid] = res
    return out


def start_local_ray_cluster(centers: Any, *, num_cpus_per_node: int = 1,
                            object_store_memory_mb: int = 80,
                            chips_per_pool: int = 64) -> LocalRayCluster:
    """Start one Ray node per center on loopback (the first is the head), standing in for a
    network of centers. Nothing listens beyond 127.0.0.1 and there is no dashboard."""
    use_loopback()
    import_ray()
    from ray.cluster_utils import Cluster

    resources = node_resources(centers, chips_per_pool)
    if not resources:
        raise SuanliError("a local Ray cluster needs at least one center", field="centers",
                          value=centers)
    common = {"num_cpus": num_cpus_per_node,
              "object_store_memory": object_store_memory_mb * 1024 * 1024,
              "node_ip_address": "127.0.0.1", "include_dashboard": False}
    cluster = Cluster(initialize_head=False, shutdown_at_exit=True)
    node_ids: dict[str, str] = {}
    try:
        for i, (cid, res) in enumerate(resources.items()):
            node = cluster.add_node(wait=i == 0, resources=res, **common)
            node_ids[cid] = node.node_id
        cluster.wait_for_nodes()
    except BaseException:
        cluster.shutdown()
        raise
    return LocalRayCluster(cluster, cluster.address, node_ids, resources)

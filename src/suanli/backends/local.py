"""The `local` backend: each job attempt is a process group on this machine.

How an attempt runs: `bash` wrapper (see `_proc.WRAPPER`) in `<root>/<job>/work`, its own
session and process group, running `setup` then `run` with `bash -c`; stdout and stderr are
appended to the job's log after a header line per attempt; the wrapper writes the exit status
to `<root>/<job>/exit_code`. Exit 0 is success, anything else a failure whose detail carries
the code. The job's own part runs confined by the isolation chosen when the backend is built
(`sandbox.py`): by default in a bubblewrap sandbox as a per-tenant uid, seeing only its `work/`
and `checkpoint/` directories; in single-user mode (`isolation="none"`) as the service's user.
Its environment is a minimal PATH/HOME/LANG (single-user: an allow-list of the service's
variables, `INHERITED_ENV`), then the job's `env:`, then SUANLI_JOB_ID, SUANLI_CENTER,
SUANLI_ACCELERATOR, SUANLI_COUNT, SUANLI_POOL and SUANLI_CHECKPOINT_DIR (a directory kept across
attempts, so a job can resume), and SUANLI_PLACEMENT (every part of its placement as JSON; a
mixed-chip gang over two pools is one process with two parts) with SUANLI_PART_<k>_POOL,
_ACCELERATOR, _COUNT and _LAYERS per part. The service's directories are 0700 and the job's
log is written through the wrapper's stdout, so no other tenant can read it.

A job without a `run` command runs `sleep <duration_s>` when its meta carries `duration_s`
(its estimated duration: a stand-in that occupies the placement as long as the real job
would), and otherwise fails with a detail saying so.

Stops (`preempt`, `cancel`, `failure`) SIGTERM the whole group and SIGKILL it after
`grace_s` from a timer thread; the caller does not wait. The engine decided the stop, so no
event is reported for a stopped job. When an attempt ends on its own, whatever it left running
in its group is terminated the same way.

Restart recovery: `handle(job_id)` gives the (pid, pgid, start ticks, boot id) that the
service stores; the backend also writes it to `<root>/<job>/process.json`. A new backend
instance `adopt`s the job: if that very process still runs (same start time in /proc), it is
watched as before and its exit code is read from the `exit_code` file when it ends; if it
ended while the service was down, the file says how, and if there is no file (the group was
killed outright) the job is reported failed with "process gone".
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suanli.backends import _proc
from suanli.backends.sandbox import Isolation, make_isolation
from suanli.backends.staging import copy_dataset, dataset_dir
from suanli.backends.types import (
    BackendCapabilities,
    BackendEvent,
    ProcessHandle,
    RunSpec,
    run_spec_from,
)
from suanli.errors import SuanliError


@dataclass
class _Attempt:
    spec: RunSpec
    dirs: _proc.JobDirs
    log_path: Path
    handle: ProcessHandle
    popen: subprocess.Popen[bytes] | None  # None for an adopted process (not our child)
    attempt: int
    started_s: float
    owns_group: bool = True  # False for an adopted pid we could not verify: never signal it


class LocalBackend:
    """Runs jobs as local process groups; implements the engine's Backend protocol."""

    name = "local"
    capabilities = BackendCapabilities(adopt=True)

    def __init__(self, root_dir: str | Path, *, grace_s: float = 10.0,
                 isolation: str = "sandbox",
                 inherit_env: Iterable[str] = _proc.INHERITED_ENV) -> None:
        """`isolation`: "sandbox" (refuses to start without a working bubblewrap) or "none"
        (single-user mode; `inherit_env` names the service variables a job inherits)."""
        self.isolation: Isolation = make_isolation(isolation, inherit_env)
        self.root_dir = Path(root_dir).resolve()  # the wrapper's argv names paths under it
        self.root_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root_dir.chmod(0o700)  # other users' processes never see jobs' logs and files
        self.grace_s = grace_s
        self._running: dict[str, _Attempt] = {}
        self._stopping: list[_Attempt] = []  # stopped, not yet reaped
        self._pending: list[BackendEvent] = []  # failures found at start/adopt time
        self._staging: dict[str, threading.Event] = {}  # job -> set when stopped mid-copy
        self._lock = threading.Lock()

    # -- the engine's Backend protocol -------------------------------------------------------

    def start(self, job: Any, placement: Any, now_s: float) -> None:
        spec = run_spec_from(job, placement)
        if spec.dataset_path and spec.dataset_name:
            self.stage(spec, now_s)
        else:
            self.launch(spec, now_s)

    def stage(self, spec: RunSpec, now_s: float) -> None:
        """Copy the job's dataset into its center's data directory (once per center), with
        progress events, on a thread; then launch it with SUANLI_DATASET_DIR set to the copy.
        A job stopped meanwhile is not launched."""
        dst = dataset_dir(self.root_dir, spec.center, str(spec.dataset_name))
        cancel = threading.Event()
        with self._lock:
            self._staging[spec.job_id] = cancel
        t0 = time.monotonic()

        def clock() -> float:  # the engine's clock, as it was handed to start()
            return now_s + time.monotonic() - t0

        def note(text: str) -> None:
            self._queue(BackendEvent(spec.job_id, "progress", clock(), text))

        def work() -> None:
            ok = copy_dataset(Path(str(spec.dataset_path)), dst, note, cancel.is_set)
            with self._lock:
                if self._staging.get(spec.job_id) is not cancel or cancel.is_set():
                    return
                del self._staging[spec.job_id]
            if not ok:
                self._queue(BackendEvent(spec.job_id, "failed", clock(),
                                         f"could not stage dataset {spec.dataset_name}"))
                return
            env = {**spec.env, "SUANLI_DATASET_DIR": str(dst)}
            self.launch(dataclasses.replace(spec, env=env), clock())

        threading.Thread(target=work, name=f"stage-{spec.job_id}", daemon=True).start()

    def stop(self, job_id: str, now_s: float, reason: str = "cancel") -> None:
        """Terminate the job's process group; returns at once (SIGKILL follows on a timer)."""
        with self._lock:
            staging = self._staging.pop(job_id, None)
            if staging is not None:
                staging.set()  # its copy stops between files; it is never launched
            att = self._running.pop(job_id, None)
            self._pending = [e for e in self._pending if e.job_id != job_id]
            if att is None:
                return
            self._stopping.append(att)
        _proc.append_log(att.log_path, f"attempt {att.attempt} stopped: {reason}")
        _proc.terminate_group(att.handle.pgid, self.grace_s)

    def poll(self, now_s: float) -> list[BackendEvent]:
        """Events for attempts that ended since the last poll; never blocks."""
        with self._lock:
            events, self._pending = self._pending, []
            self._stopping = [a for a in self._stopping if not self._ended(a)[0]]
            for job_id, att in list(self._running.items()):
                ended, code = self._ended(att)
                if not ended:
                    continue
                del self._running[job_id]
                events.append(self._finish(att, code, now_s))
        return events

    def next_event_s(self) -> float | None:
        return None  # wall-clock backend: events come from poll()

    # -- launching and re-attaching ----------------------------------------------------------

    def launch(self, spec: RunSpec, now_s: float) -> None:
        """Start one attempt of `spec` (what `start` does after adapting the engine's types)."""
        with self._lock:
            if spec.job_id in self._running:
                raise SuanliError(f"job {spec.job_id} is already running on this backend",
                                  field="job_id", value=spec.job_id)
        dirs = _proc.JobDirs.of(self.root_dir, spec.job_id)
        dirs.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        checkpoint = Path(spec.checkpoint_dir) if spec.checkpoint_dir else dirs.checkpoint
        log_path = Path(spec.log_path) if spec.log_path else dirs.default_log
        log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        log_path.touch(mode=0o600)
        attempt = dirs.next_attempt()
        run = _proc.command_for(spec)
        _proc.append_log(log_path, f"attempt {attempt} job={spec.job_id} pool={spec.pool_id} "
                                   f"accelerator={spec.accelerator} count={spec.count}")
        if run is None:
            detail = "job has no `run` command and no duration_s to simulate"
            _proc.append_log(log_path, f"attempt {attempt} failed: {detail}")
            self._queue(BackendEvent(spec.job_id, "failed", now_s, detail, retryable=False))
            return
        if not spec.run:
            _proc.append_log(log_path, f"no `run` command: sleeping the estimated "
                                       f"{spec.duration_s:g} s")
        try:
            dirs.prepare(checkpoint)
            _proc.unpack_workdir(spec, dirs, self.root_dir, log_path)  # before the chown
            conf = self.isolation.confine(spec, dirs.work, checkpoint)
            popen = _proc.spawn(setup=spec.setup, run=run, cwd=dirs.work, env=conf.wrapper_env,
                                log_path=log_path, exit_file=dirs.exit_file, prefix=conf.prefix)
        except (OSError, SuanliError) as exc:
            detail = f"could not start: {exc}"
            _proc.append_log(log_path, f"attempt {attempt} failed: {detail}")
            self._queue(BackendEvent(spec.job_id, "failed", now_s, detail))
            return
        handle = ProcessHandle(pid=popen.pid, pgid=popen.pid,  # session leader: pgid == pid
                               started_at_ticks=_proc.start_ticks(popen.pid) or 0,
                               boot_id=_proc.boot_id())
        dirs.write_record({**handle.to_dict(), "attempt": attempt, "log_path": str(log_path)})
        with self._lock:
            self._running[spec.job_id] = _Attempt(spec, dirs, log_path, handle, popen, attempt,
                                                  now_s)

    def handle(self, job_id: str) -> ProcessHandle:
        """The running attempt's process identity, for the service to store."""
        with self._lock:
            att = self._running.get(job_id)
        if att is None:
            raise KeyError(job_id)
        return att.handle

    def adopt(self, job_id: str, pid: int, pgid: int, log_path: str | Path | None = None,
              started_at_ticks: int | None = None, *, boot_id: str = "",
              spec: RunSpec | None = None, now_s: float = 0.0) -> bool:
        """Re-attach to a job launched by an earlier instance of this backend.

        Returns True if that process still runs (it is watched from now on), False if it ended
        while nobody watched: then an event is queued for the next poll, from its exit_code
        file, or failed "process gone" if there is none. The process must be this job's
        wrapper (its command line names the job's exit file) and, when the start ticks are
        known (given, or from process.json when its pid matches), have started then: a pid
        reused by another process is never adopted, and never signalled.
        """
        dirs = _proc.JobDirs.of(self.root_dir, job_id)
        record = dirs.read_record() or {}
        if started_at_ticks is None and record.get("pid") == pid:
            started_at_ticks = int(record.get("started_at_ticks", 0))
            boot_id = boot_id or str(record.get("boot_id", ""))
        handle = ProcessHandle(pid, pgid, started_at_ticks or 0, boot_id)
        same_launch = (record.get("pid"), record.get("started_at_ticks")) == (pid, started_at_ticks)
        log = Path(log_path) if log_path else Path(record.get("log_path") or dirs.default_log)
        spec = spec or RunSpec(job_id=job_id, run=None)
        attempt = int(record.get("attempt", 0)) if same_launch else 0
        att = _Attempt(spec, dirs, log, handle, None, attempt, now_s)
        if _proc.is_running(handle, dirs.exit_file):
            with self._lock:
                self._running[job_id] = att
            return True
        att.owns_group = False  # the leader is gone, so its group id may now be someone else's
        code = dirs.read_exit_code(pid) if (same_launch or not record) else None
        self._queue(self._finish(att, code, now_s))
        return False

    def report_lost(self, job_id: str, now_s: float, detail: str = "process gone") -> None:
        """Queue a failure for a job the service knows ran here but cannot adopt."""
        self._queue(BackendEvent(job_id, "failed", now_s, detail))

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def shutdown(self, stop_jobs: bool = False) -> None:
        """Forget every job; with stop_jobs, terminate them (else they run on, adoptable)."""
        for job_id in self.running():
            if stop_jobs:
                self.stop(job_id, 0.0, "cancel")
        with self._lock:
            self._running.clear()

    # -- internals ---------------------------------------------------------------------------

    def _queue(self, event: BackendEvent) -> None:
        with self._lock:
            self._pending.append(event)

    @staticmethod
    def _ended(att: _Attempt) -> tuple[bool, int | None]:
        """(ended, exit code or None if unknown). Reaps our own children."""
        if att.popen is not None:
            code = att.popen.poll()
            return code is not None, code
        if _proc.is_running(att.handle, att.dirs.exit_file):
            return False, None
        return True, att.dirs.read_exit_code(att.handle.pid)

    def _finish(self, att: _Attempt, code: int | None, now_s: float) -> BackendEvent:
        if code is None:
            detail = "process gone (exit code unknown)"
        else:
            detail = _proc.describe_exit(code)
        kind = "succeeded" if code == 0 else "failed"
        retryable = _proc.infrastructure_failure(code, att.spec.retry_on_exit_codes)
        # whatever the job left behind in its group goes with it
        if att.owns_group and _proc.group_exists(att.handle.pgid):
            _proc.terminate_group(att.handle.pgid, self.grace_s)
        try:
            _proc.append_log(att.log_path, f"attempt {att.attempt} {kind}: {detail}")
        except OSError:
            pass
        return BackendEvent(att.spec.job_id, kind, now_s, detail, retryable=retryable)


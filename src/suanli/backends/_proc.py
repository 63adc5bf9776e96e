"""Process plumbing shared by the local and Ray backends: job directories, the bash wrapper,
the job's environment, process identity from /proc, and process-group termination."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suanli.backends.types import ProcessHandle, RunSpec

# Runs `setup` then `run` (in one `bash -c`, behind the isolation's argv prefix "${@:6}", empty
# in single-user mode), writes "<exit status> <wrapper pid>" to $1
# atomically, and exits with the status (the pid tells an attempt's file from a late write by
# the previous attempt's wrapper). `trap : TERM` keeps the wrapper alive when the whole group
# gets SIGTERM, so it still records how the job ended (143 for a job that died of SIGTERM).
# With an owner pid ($4), a watcher in the group TERMs (then, after $5 s, KILLs) the group once
# the owner is gone: a Ray worker that is force-cancelled or crashes takes its job with it.
WRAPPER = r"""
exit_file=$1; setup=$2; run=$3; owner=$4; grace=${5:-5}; shift 5
trap : TERM
watcher=
if [ -n "$owner" ]; then
  ( trap '' TERM
    while kill -0 "$owner" 2>/dev/null; do sleep 0.5; done
    kill -TERM 0; sleep "$grace"; kill -KILL 0 ) &
  watcher=$!
fi
"$@" bash -c 'if [ -n "$1" ]; then bash -c "$1" || exit; fi; exec bash -c "$2"' \
  suanli-job "$setup" "$run"
code=$?
printf '%s %s\n' "$code" "$$" > "$exit_file.tmp.$$" && mv -f "$exit_file.tmp.$$" "$exit_file"
if [ -n "$watcher" ]; then kill -KILL "$watcher" 2>/dev/null; fi
exit "$code"
"""

# Variables a job inherits from the service's environment in single-user mode (a sandboxed
# job inherits none); the rest (database passwords, API tokens) stay out of jobs. A job adds
# its own through `env:`.
INHERITED_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "TERM", "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH", "CUDA_HOME",
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(job_id: str) -> str:
    """A directory name for a job id: readable, and distinct for distinct ids."""
    name = _UNSAFE.sub("_", job_id)
    if name != job_id or not name or name.startswith("."):
        name = f"{name.lstrip('.')}-{hashlib.sha1(job_id.encode()).hexdigest()[:8]}"
    return name


@dataclass(frozen=True)
class JobDirs:
    """<root>/<job>/ holds `work/` (the cwd), `checkpoint/` (kept across attempts), the default
    `job.log`, `exit_code` (written by the wrapper) and `process.json` (the launch record)."""

    root: Path

    @classmethod
    def of(cls, root: str | Path, job_id: str) -> JobDirs:
        return cls(Path(root) / safe_name(job_id))

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint"

    @property
    def default_log(self) -> Path:
        return self.root / "job.log"

    @property
    def exit_file(self) -> Path:
        return self.root / "exit_code"

    @property
    def process_file(self) -> Path:
        return self.root / "process.json"

    def prepare(self, checkpoint_dir: Path) -> None:
        for d in (self.work, checkpoint_dir):
            d.mkdir(parents=True, exist_ok=True)

    def next_attempt(self) -> int:
        """Attempts are counted on disk so the count survives a service restart."""
        f = self.root / "attempts"
        try:
            n = int(f.read_text().strip()) + 1
        except (OSError, ValueError):
            n = 1
        f.write_text(f"{n}\n")
        return n

    def read_exit_code(self, pid: int | None = None) -> int | None:
        """The code the wrapper recorded; None if absent, or written by a wrapper other than
        `pid` (when given)."""
        try:
            parts = self.exit_file.read_text().split()
            code = int(parts[0])
        except (OSError, ValueError, IndexError):
            return None
        if pid is not None and len(parts) > 1 and parts[1] != str(pid):
            return None
        return code

    def write_record(self, record: Mapping[str, Any]) -> None:
        tmp = self.process_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(record)))
        tmp.replace(self.process_file)

    def read_record(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.process_file.read_text())
        except (OSError, ValueError):
            return None


def job_env(spec: RunSpec, checkpoint_dir: Path, inherit: Iterable[str] = INHERITED_ENV,
            extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Inherited allow-list, then the job's `env:`, then the placement (SUANLI_* win)."""
    env = {k: os.environ[k] for k in inherit if k in os.environ}
    env.update(spec.env)
    env.update({
        "SUANLI_JOB_ID": spec.job_id,
        "SUANLI_CENTER": spec.center,
        "SUANLI_ACCELERATOR": spec.accelerator,
        "SUANLI_COUNT": str(spec.count),
        "SUANLI_POOL": spec.pool_id,
        "SUANLI_CHECKPOINT_DIR": str(checkpoint_dir),
    })
    env.update(placement_env(spec))
    env.update(extra or {})
    return env


def placement_env(spec: RunSpec) -> dict[str, str]:
    """SUANLI_PLACEMENT (every part as JSON) and, per part k, SUANLI_PART_<k>_POOL,
    _ACCELERATOR, _COUNT and _LAYERS: a mixed-chip job starts once and reads its stages here."""
    if not spec.placement:
        return {}
    parts = json.loads(spec.placement)
    env = {"SUANLI_PLACEMENT": spec.placement, "SUANLI_PARTS": str(len(parts))}
    for k, part in enumerate(parts):
        env[f"SUANLI_PART_{k}_POOL"] = str(part.get("pool_id", ""))
        env[f"SUANLI_PART_{k}_ACCELERATOR"] = str(part.get("accelerator", ""))
        env[f"SUANLI_PART_{k}_COUNT"] = str(part.get("count", ""))
        env[f"SUANLI_PART_{k}_LAYERS"] = str(part.get("layers", 0))
    return env


def command_for(spec: RunSpec) -> str | None:
    """The job's `run`, or `sleep <duration_s>` standing in for a job that has none."""
    if spec.run and spec.run.strip():
        return spec.run
    if spec.duration_s is not None and spec.duration_s >= 0:
        return f"sleep {spec.duration_s:.3f}"
    return None


def append_log(log_path: Path, line: str) -> None:
    """Write one suanli line into a job's log (O_APPEND, so it interleaves safely)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(f"=== suanli {stamp} {line} ===\n")


def spawn(*, setup: str | None, run: str, cwd: Path, env: Mapping[str, str], log_path: Path,
          exit_file: Path, owner_pid: int | None = None, grace_s: float = 5.0,
          prefix: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """Start the wrapper in its own session (so its process group is the job's), output
    appended to the log; `prefix` (a sandbox's argv) goes before the job's `bash -c`."""
    exit_file.unlink(missing_ok=True)
    args = ["bash", "-c", WRAPPER, "suanli-job", str(exit_file), setup or "", run,
            str(owner_pid or ""), f"{grace_s:g}", *prefix]
    with open(log_path, "ab") as log:
        return subprocess.Popen(args, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True)


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from field 3 (state) on; the name may contain spaces."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (field 22 of /proc/<pid>/stat)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def handle_of(pid: int) -> ProcessHandle:
    return ProcessHandle(pid=pid, pgid=os.getpgid(pid), started_at_ticks=start_ticks(pid) or 0,
                         boot_id=boot_id())


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def is_running(handle: ProcessHandle, exit_file: Path | None = None) -> bool:
    """True if the process the handle names is alive (not a zombie) and is the same process:
    same start ticks and boot (when known), same group, and, given `exit_file`, a suanli
    wrapper writing that job's exit file (its command line names the file)."""
    fields = _stat_fields(handle.pid)
    if not fields or fields[0] in ("Z", "X", "x"):
        return False
    if exit_file is not None and str(exit_file) not in cmdline(handle.pid):
        return False
    if handle.boot_id and handle.boot_id != boot_id():
        return False
    if handle.started_at_ticks and int(fields[19]) != handle.started_at_ticks:
        return False
    try:
        return os.getpgid(handle.pid) == handle.pgid
    except ProcessLookupError:
        return False


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def terminate_group(pgid: int, grace_s: float) -> threading.Timer | None:
    """SIGTERM the group now and SIGKILL it after `grace_s` on a timer thread; returns at once.

    Linux does not hand out a pid that is still some group's id, so while any member of the
    group lives the SIGKILL reaches this job's group and no other.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return None
    except PermissionError:
        return None

    def _kill() -> None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    timer = threading.Timer(grace_s, _kill)
    timer.daemon = True
    timer.start()
    return timer


def infrastructure_failure(code: int | None, retry_on_exit_codes: tuple[int, ...]) -> bool:
    """Whether a failed attempt is retried: an unknown end (the process lost) or a signal is
    the machine's doing; a plain non-zero exit is the job's own, retried only if listed."""
    if code is None or code < 0 or code > 128:
        return True
    return code in retry_on_exit_codes


def unpack_workdir(spec: RunSpec, dirs: JobDirs, root: Path, log_path: Path) -> None:
    """The job's uploaded code into `work/`, once (later attempts keep what the job wrote)."""
    if not spec.workdir:
        return
    marker = dirs.root / "workdir.unpacked"
    if marker.exists():
        return
    from suanli.jobs import workdir

    n = workdir.unpack(workdir.upload_path(Path(root), spec.workdir), dirs.work)
    marker.write_text(spec.workdir + "\n")
    append_log(log_path, f"workdir: {n} files unpacked into the job's work directory")


def describe_exit(code: int) -> str:
    """'exit 3', or 'killed by SIGKILL' for a negative Popen return code / 128+N status."""
    if code < 0:
        return f"killed by {_signame(-code)}"
    if code > 128 and code - 128 < 65:
        return f"exit {code} ({_signame(code - 128)})"
    return f"exit {code}"


def _signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"

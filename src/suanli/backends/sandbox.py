"""How a job's process is confined on this machine: chosen once, when the backend is built.

Tenants' jobs are untrusted code. `sandbox` (the default) runs each attempt under bubblewrap:

- its own pid namespace and /proc (no other process's environment or command line is visible),
  its own network namespace (only a private loopback: the service's port and the database on
  127.0.0.1 are unreachable), ipc and uts namespaces;
- a fresh root: the system directories (/usr and its /bin, /lib... links, /etc) read-only, a
  private tmpfs /tmp, a minimal /dev, and the job's own `work/` and `checkpoint/` directories
  bound read-write at `/job/work` (the cwd and HOME) and `/job/checkpoint`. Nothing else of the
  host: not /root, /home, /var, /tmp, the service's data directory or its database;
- a clean environment: a minimal PATH/HOME/LANG/TMPDIR, the job's `env:`, its SUANLI_* variables;
- when the service runs as root, the job's processes run as an unprivileged uid of their own,
  `JOB_UID_BASE + tenant id` (no /etc/passwd entry needed), without capabilities or
  supplementary groups and with no_new_privs, so a setuid binary cannot raise them again.
  bwrap sets the mounts up as root and `setpriv` drops to that uid inside, before anything of
  the job runs: a root-made user namespace would map the job to uid 0 outside. The job's
  directories are chowned to its uid, mode 0700; other tenants' uids cannot read them. Not root:
  an unprivileged user namespace gives the same fresh root, pid and network namespaces, and the
  job keeps the service's uid outside but sees none of its files.

The job's environment reaches it through `env -i` after the uid is dropped, never through the
wrapper's or bwrap's own environment: a tenant's `BASH_ENV` or `LD_PRELOAD` would otherwise be
obeyed by a process still running as root. No --die-with-parent: a job outlives a service
restart and is adopted again (the wrapper outside the sandbox is the pid the service stores).

`none` is single-user mode: the job runs as the service's own user with an allow-list of its
environment. Only for one user on their own machine; the operator opts in by name
(`suanli up --single-user`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from suanli.backends import _proc
from suanli.backends.types import RunSpec
from suanli.errors import SuanliError

ISOLATIONS = ("sandbox", "none")
JOB_UID_BASE = 200_000  # a tenant's jobs run as uid JOB_UID_BASE + tenant id (root only)
JOB_DIR = Path("/job")  # where the job's directories appear inside the sandbox
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
MINIMAL_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
FIX = ("install bubblewrap (apt-get install bubblewrap) or, for one user on their own "
       "machine, start the service with --single-user")


@dataclass(frozen=True)
class Confinement:
    """How to start one attempt: the argv that goes before `bash -c ...`, the environment of
    the wrapper (which runs outside any sandbox) and the in-job checkpoint path."""

    prefix: tuple[str, ...]
    wrapper_env: Mapping[str, str]
    checkpoint_dir: str


class Isolation(Protocol):
    """What the local and Ray backends ask of an isolation mode."""

    name: str

    def confine(self, spec: RunSpec, work: Path, checkpoint: Path,
                extra_env: Mapping[str, str] | None = None) -> Confinement:
        """Prepare the job's directories and say how to start it."""
        ...


@dataclass(frozen=True)
class SingleUser:
    """`none`: the job runs as the service's user, with an allow-list of the service's
    environment over MINIMAL_ENV."""

    inherit_env: tuple[str, ...] = _proc.INHERITED_ENV
    name: str = "none"

    def confine(self, spec: RunSpec, work: Path, checkpoint: Path,
                extra_env: Mapping[str, str] | None = None) -> Confinement:
        env = {**MINIMAL_ENV, **_proc.job_env(spec, checkpoint, self.inherit_env, extra_env)}
        return Confinement((), env, str(checkpoint))


@dataclass(frozen=True)
class Sandbox:
    """`sandbox`: bubblewrap, plus a per-tenant uid when the service runs as root."""

    bwrap: str
    setpriv: str | None  # set when running as root: drops to the job's uid inside
    name: str = "sandbox"

    def confine(self, spec: RunSpec, work: Path, checkpoint: Path,
                extra_env: Mapping[str, str] | None = None) -> Confinement:
        in_ckpt = str(JOB_DIR / "checkpoint")
        env = {**MINIMAL_ENV, "HOME": str(JOB_DIR / "work"),
               **_proc.job_env(spec, Path(in_ckpt), (), extra_env)}
        drop: list[str] = []
        if self.setpriv:
            uid = job_uid(spec.env)
            for d in (work, checkpoint):
                os.chown(d, uid, uid)
                d.chmod(0o700)
            for sub in work.rglob("*"):  # the job's unpacked code (workdir:) is its own
                os.chown(sub, uid, uid, follow_symlinks=False)
            drop = [self.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        else:
            for d in (work, checkpoint):
                d.chmod(0o700)
        prefix = [*self._bwrap_args(work, checkpoint), *drop, "/usr/bin/env", "-i", "--",
                  *(f"{k}={v}" for k, v in env.items())]
        return Confinement(tuple(prefix), dict(MINIMAL_ENV), in_ckpt)

    def _bwrap_args(self, work: Path, checkpoint: Path) -> list[str]:
        args = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--hostname", "suanli-job"]
        if not self.setpriv:
            args.append("--unshare-user")
        for d in SYSTEM_DIRS:
            if os.path.islink(d):
                args += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                args += ["--ro-bind", d, d]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                 "--perms", "0755", "--dir", str(JOB_DIR),
                 "--bind", str(work), str(JOB_DIR / "work"),
                 "--bind", str(checkpoint), str(JOB_DIR / "checkpoint"),
                 "--chdir", str(JOB_DIR / "work"), "--"]
        return args


def job_uid(env: Mapping[str, str]) -> int:
    """The uid a tenant's jobs run as: JOB_UID_BASE + SUANLI_TENANT_ID (set by the runner,
    after the job's own `env:`, so a tenant cannot choose it); tenant 0 when absent."""
    raw = env.get("SUANLI_TENANT_ID", "0")
    try:
        tenant = int(raw)
    except ValueError as exc:
        raise SuanliError(f"SUANLI_TENANT_ID must be an integer (got {raw!r})",
                          field="env.SUANLI_TENANT_ID", value=raw) from exc
    if not 0 <= tenant < 1_000_000:
        raise SuanliError(f"SUANLI_TENANT_ID out of range (got {tenant})",
                          field="env.SUANLI_TENANT_ID", value=tenant)
    return JOB_UID_BASE + tenant


def find_sandbox() -> Sandbox | str:
    """A working Sandbox, or why there is none (bwrap missing, or its self-check failed)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    setpriv = None
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return "setpriv (util-linux) is not installed"
    sandbox = Sandbox(bwrap, setpriv)
    problem = _self_check(sandbox)
    return problem or sandbox


def _self_check(sandbox: Sandbox) -> str | None:
    """Run a probe in a throwaway sandbox (right uid, /job mounted); None if it passed."""
    with tempfile.TemporaryDirectory(prefix="suanli-sandbox-check-") as tmp:
        work, ckpt = Path(tmp) / "work", Path(tmp) / "checkpoint"
        work.mkdir()
        ckpt.mkdir()
        conf = sandbox.confine(RunSpec("self-check", run="true"), work, ckpt)
        probe = 'test "$(id -u)" = "$1" && test -d /job/work'
        want = str(job_uid({})) if sandbox.setpriv else str(os.geteuid())
        try:
            out = subprocess.run([*conf.prefix, "bash", "-c", probe, "probe", want],
                                 env=dict(conf.wrapper_env), capture_output=True, text=True,
                                 timeout=30, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the sandbox self-check could not run: {exc}"
        if out.returncode != 0:
            err = (out.stderr or out.stdout).strip().splitlines()
            return f"the sandbox self-check failed: {err[-1] if err else out.returncode}"
    return None


def make_isolation(name: str, inherit_env: Iterable[str] = _proc.INHERITED_ENV) -> Isolation:
    """The isolation mode `name`; `sandbox` refuses to start without a working bubblewrap."""
    if name == "none":
        return SingleUser(tuple(inherit_env))
    if name != "sandbox":
        raise SuanliError(f"isolation must be one of {', '.join(ISOLATIONS)} (got {name!r})",
                          field="isolation", value=name)
    found = find_sandbox()
    if isinstance(found, str):
        raise SuanliError(f"the local backend runs tenants' jobs in a sandbox, but {found}: "
                          f"{FIX}", field="isolation", value=name)
    return found

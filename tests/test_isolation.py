"""Tenants' jobs are untrusted code: a job on the local backend finds none of the service's
secrets, no other tenant's files, no path to the database, and changes no balance.

The service runs as a real `suanli up` process (so its own /proc environ and command line hold
the admin token and the database URL, as in production) on a real SQLite file or PostgreSQL
schema. A single-user control run shows the same attack succeeding without the sandbox, so
the sandboxed assertions are not vacuous.
"""

from __future__ import annotations

import os
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import UpProcess, free_port, wait_for_state
from suanli.backends import LocalBackend, RunSpec, make_backend
from suanli.backends.sandbox import JOB_UID_BASE, find_sandbox
from suanli.errors import SuanliError

pytestmark = pytest.mark.skipif(isinstance(find_sandbox(), str),
                                reason=f"no job sandbox on this machine: {find_sandbox()}")

ADMIN = f"sl_iso-admin-{uuid.uuid4().hex}"
TERMINAL = {"succeeded", "failed", "cancelled"}

# What a hostile tenant tries, printing what it finds into its own log. The script names the
# paths it tries but none of the secrets the test looks for, and its markers are split by
# quotes: the job's own command line (which it dumps from /proc) never contains them whole.
ATTACK = r"""
echo "uid=$(id -u)"
echo "env-keys: $(env | cut -d= -f1 | sort | tr '\n' ' ')"
echo "--- proc"
for p in /proc/[0-9]*; do
  tr '\0' ' ' < "$p/environ" 2>/dev/null; tr '\0' ' ' < "$p/cmdline" 2>/dev/null; echo
done
echo "--- other tenant"
cat "{other_log}" 2>&1; ls -la "{other_dir}" 2>&1
echo "--- database"
cat "{db_file}" > /dev/null 2>&1 && echo DB-FILE-"READABLE"
(echo > /dev/tcp/127.0.0.1/5432) 2>/dev/null && echo PG-TCP-"OPEN"
python3 - <<'PY'
import socket, sqlite3
try:
    c = sqlite3.connect("file:{db_file}?mode=rw", uri=True)
    c.execute("UPDATE tenants SET balance = 999001 WHERE id = {tenant_id}")
    c.commit()
    print("DB-" + "WRITTEN sqlite")
except Exception as e:
    print("sqlite refused:", type(e).__name__)
try:
    import psycopg
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=2) as c:
        c.execute("UPDATE {schema}.tenants SET balance = 999001 WHERE id = {tenant_id}")
    print("DB-" + "WRITTEN postgresql")
except ImportError:
    print("no psycopg")
except Exception as e:
    print("postgresql refused:", type(e).__name__)
for port in (5432, {port}):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2)
        print("OPEN-" + "PORT", port)
    except OSError as e:
        print("closed", port, e)
PY
echo attack-"finished"
"""


class Service(UpProcess):
    """`suanli up` in a subprocess, the admin token in its environment, the DB URL in argv."""

    def __init__(self, db_url: str, home: Path, *extra: str) -> None:
        super().__init__(db_url, home, "--round-s", "0.5", *extra, admin_token=ADMIN)
        self.wait_ready()
        self.admin = self.client(ADMIN)

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"},
                            timeout=30)

    def tenant(self, name: str, credits: str = "100.00") -> tuple[int, httpx.Client]:
        r = self.admin.post("/v1/tenants", json={"name": name, "credits": credits})
        assert r.status_code == 201, r.text
        return r.json()["id"], self.client(r.json()["token"])



@pytest.fixture
def service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(db_url: str, *extra: str) -> Service:
        started.append(Service(db_url, tmp_path / "home", *extra))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def _job(name: str, run: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "generic", "run": run, "max_retries": 0,
            "work": {"reference_accelerator": "L20", "duration_s": 600},
            "resources": {"accelerators": ["L20"]}, **extra}


def _data_dir(db_url: str, tmp_path: Path) -> Path:
    if db_url.startswith("sqlite:///"):
        return Path(db_url.removeprefix("sqlite:///")).parent / "runs"
    return tmp_path / "home" / "runs"


def _attack(svc: Service, tmp_path: Path) -> dict[str, Any]:
    """Tenant A runs a job that prints a private line; tenant B then attacks. Returns what
    the test needs to judge: B's log and usage, A's private line, the job ids."""
    a_id, alice = svc.tenant("alice")
    b_id, mallory = svc.tenant("mallory")
    private = f"alice-private-{uuid.uuid4().hex}"
    a_job = alice.post("/v1/jobs", json=_job("private", f"echo {private}")).json()
    assert wait_for_state(alice, a_job["id"], TERMINAL)["state"] == "succeeded"
    data = _data_dir(svc.db_url, tmp_path)
    assert private in alice.get(f"/v1/jobs/{a_job['id']}/logs").text
    db_file = svc.db_url.removeprefix("sqlite:///") if svc.db_url.startswith("sqlite") else \
        str(tmp_path / "home" / "suanli.db")
    schema = svc.db_url.rsplit("%3D", 1)[-1] if "%3D" in svc.db_url else "public"
    run = ATTACK.format(other_log=data / str(a_job["id"]) / "job.log",
                        other_dir=data / str(a_job["id"]), db_file=db_file, schema=schema,
                        tenant_id=b_id, port=svc.port)
    b_job = mallory.post("/v1/jobs", json=_job("attack", run, env={"MINE": "yes"})).json()
    done = wait_for_state(mallory, b_job["id"], TERMINAL, timeout_s=60)
    log = mallory.get(f"/v1/jobs/{b_job['id']}/logs").text
    assert "attack-finished" in log, log
    return {"log": log, "done": done, "private": private, "b_id": b_id,
            "usage": mallory.get("/v1/usage").json(), "work": data / str(b_job["id"]) / "work"}


def test_a_sandboxed_job_finds_no_secret_no_other_tenant_and_no_database(db_url, service,
                                                                          tmp_path):
    svc = service(db_url)
    r = _attack(svc, tmp_path)
    log, usage = r["log"], r["usage"]
    assert r["done"]["state"] == "succeeded", r["done"]
    # (a) no process's environment or command line shows the admin token or the DB URL
    assert ADMIN not in log
    assert "sqlite:///" not in log and "postgresql+psycopg" not in log
    assert "SUANLI_ADMIN_TOKEN" not in log
    # (b) the other tenant's log stays private
    assert r["private"] not in log
    # (c) the database cannot be read or reached
    assert "DB-FILE-READABLE" not in log and "PG-TCP-OPEN" not in log
    assert "OPEN-PORT" not in log
    # (d) nothing was written: the balance is what the ledger says, less only its own charge
    assert "DB-WRITTEN" not in log
    assert usage["balance"] == usage["ledger_balance"]
    assert Decimal(usage["balance"]) == Decimal("100.00") - Decimal(r["done"]["charged"])
    # its own uid, its environment only SUANLI_* + env: + a minimal PATH/HOME/LANG/TMPDIR
    uid = JOB_UID_BASE + r["b_id"] if os.geteuid() == 0 else os.geteuid()
    assert f"uid={uid}\n" in log
    keys = set(next(line for line in log.splitlines() if line.startswith("env-keys:"))
               .split()[1:])
    assert "MINE" in keys and "SUANLI_TENANT_ID" in keys
    assert {k for k in keys if not k.startswith("SUANLI_")} <= {
        "MINE", "PATH", "HOME", "LANG", "TMPDIR", "PWD", "SHLVL", "_"}, keys
    # a private work directory
    st = r["work"].stat()
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_uid == uid
    data = _data_dir(db_url, tmp_path)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_same_attack_succeeds_in_single_user_mode(db_url, service, tmp_path):
    """The control: without the sandbox the job reads the token and writes its balance, so
    the sandboxed test above is not passing by accident. Single-user mode still runs jobs."""
    svc = service(db_url, "--single-user")
    r = _attack(svc, tmp_path)
    assert ADMIN in r["log"] and r["private"] in r["log"]
    assert "DB-WRITTEN sqlite" in r["log"]
    usage = r["usage"]  # the balance column moved behind the ledger's back
    assert usage["balance"] != usage["ledger_balance"] and Decimal(usage["balance"]) > 100


def test_without_a_sandbox_the_local_backend_refuses_and_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on PATH
    with pytest.raises(SuanliError) as err:
        LocalBackend(tmp_path / "jobs")
    assert "apt-get install bubblewrap" in str(err.value) and "--single-user" in str(err.value)
    assert err.value.field == "isolation"
    single = make_backend("local", root_dir=tmp_path / "jobs", isolation="none")
    assert single.isolation.name == "none"


def test_suanli_up_without_a_sandbox_refuses_in_one_line_before_serving(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from suanli.cli.main import app

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("SUANLI_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["up", "--port", str(free_port())])
    out = " ".join(result.output.split())  # the console may wrap the line
    assert result.exit_code != 0
    assert "apt-get install bubblewrap" in out and "--single-user" in out
    assert "Traceback" not in out


def test_the_demo_falls_back_to_single_user_mode_without_a_sandbox(tmp_path, monkeypatch):
    from suanli.service.demo import demo_isolation

    assert demo_isolation() == ("sandbox", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    mode, why = demo_isolation()
    assert mode == "none" and "single-user" in why and "bubblewrap" in why


def test_an_unknown_isolation_is_refused_by_name(tmp_path):
    with pytest.raises(SuanliError) as err:
        LocalBackend(tmp_path, isolation="chroot")
    assert (err.value.field, err.value.value) == ("isolation", "chroot")


def test_the_job_uid_follows_its_tenant_and_its_env_never_reaches_the_wrapper(tmp_path):
    """The uid comes from SUANLI_TENANT_ID (the runner sets it over the job's `env:`); a
    BASH_ENV in `env:` reaches only the job inside the sandbox, never the wrapper running
    outside it as the service's user."""
    b = LocalBackend(tmp_path / "jobs", grace_s=0.5)
    evil = tmp_path / "evil.sh"
    evil.write_text(f"touch {tmp_path / 'pwned'}\n")
    b.launch(RunSpec("j", run="id -u", env={"SUANLI_TENANT_ID": "5", "BASH_ENV": str(evil)}),
             0.0)
    deadline = time.monotonic() + 20
    while not (events := b.poll(0.0)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert events[0].kind == "succeeded"
    assert not (tmp_path / "pwned").exists()
    if os.geteuid() == 0:
        assert f"\n{JOB_UID_BASE + 5}\n" in (b.root_dir / "j" / "job.log").read_text()


def test_sandbox_start_latency_overhead_is_small(tmp_path):
    """Median launch-to-first-output of `echo` over a few runs: sandboxed vs single-user.
    (The figure in the README comes from benchmarks with 20 runs; this pins an upper bound.)"""
    def median_start_s(isolation: str) -> float:
        b = LocalBackend(tmp_path / isolation, isolation=isolation)
        times = []
        for i in range(5):
            t0 = time.monotonic()
            b.launch(RunSpec(f"t{i}", run="echo first-line"), 0.0)
            log = b.root_dir / f"t{i}" / "job.log"
            while "first-line" not in log.read_text():
                time.sleep(0.002)
            times.append(time.monotonic() - t0)
            while not b.poll(0.0):
                time.sleep(0.01)
        return sorted(times)[len(times) // 2]

    overhead = median_start_s("sandbox") - median_start_s("none")
    assert overhead < 1.0, overhead

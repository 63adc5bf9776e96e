"""Shared fixtures. Service/store: a real database (SQLite file, or a fresh PostgreSQL schema
per test) and a real uvicorn server on a free loopback port."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TINY_NETWORK = FIXTURES / "service_tiny_network.yaml"
ADMIN_TOKEN = "sl_test-admin-token"
SRC = Path(__file__).resolve().parents[1] / "src"
PG_URL = os.environ.get("SUANLI_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@functools.cache
def postgres_reachable() -> bool:
    try:
        import psycopg

        url = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means: skip the PostgreSQL runs
        return False


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def _pg_exec(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL of each kind: a SQLite file, or a fresh PostgreSQL schema (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'suanli.db'}"
        return
    if not postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    schema = f"suanli_test_{uuid.uuid4().hex[:12]}"
    _pg_exec(f"CREATE SCHEMA {schema}")
    try:
        yield _pg_schema_url(schema)
    finally:
        _pg_exec(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Factory: start_service(db_url, backend='none', **settings) -> a running server."""
    from suanli.service.server import serve_in_thread
    from suanli.service.settings import Settings

    servers: list[Any] = []

    def start(db_url: str, backend: str = "none", **kw: Any) -> Any:
        kw.setdefault("network", str(TINY_NETWORK))
        kw.setdefault("data_dir", tmp_path / "runs")
        kw.setdefault("round_s", 0.5)
        kw.setdefault("tick_s", 0.1)
        settings = Settings(db_url=db_url, backend=backend, admin_token=ADMIN_TOKEN,
                            print_admin_token=False, **kw)
        server = serve_in_thread(settings)
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def http() -> Iterator[Callable[..., Any]]:
    """Factory: http(server, token) -> an httpx.Client with that bearer token."""
    import httpx

    clients: list[httpx.Client] = []

    def make(server: Any, token: str | None = ADMIN_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = httpx.Client(base_url=server.url, headers=headers, timeout=30)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def wait_for_state(client: Any, job_id: int, states: set[str], timeout_s: float = 30.0) -> dict:
    """Poll GET /v1/jobs/{id} until the job is in one of `states`; fail after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, f"job {job_id} stuck in {job['state']}: {job}"
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UpProcess:
    """`suanli up` in a process of its own (so its memory, signals and kill -9 are its own),
    the admin token in its environment, the database URL in its argv, output in `log`."""

    def __init__(self, db_url: str, home: Path, *extra: str, backend: str = "local",
                 admin_token: str = ADMIN_TOKEN, name: str = "up") -> None:
        self.db_url, self.port = db_url, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / f"{name}-{self.port}.log"
        env = {**os.environ, "SUANLI_HOME": str(home), "SUANLI_ADMIN_TOKEN": admin_token,
               "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        cmd = [sys.executable, "-m", "suanli.cli.main", "up", "--db", db_url,
               "--network", str(TINY_NETWORK), "--port", str(self.port), "--backend", backend,
               *extra]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"suanli up exited: {self.log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"suanli up did not answer /healthz: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Terminate it (waking it first if a test froze it); kill it if it does not end."""
        if self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(autouse=True)
def _private_client_config(tmp_path_factory: pytest.TempPathFactory,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real user's `suanli login` profiles."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))

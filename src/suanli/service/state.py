"""What every request handler shares: database, network, estimator, runner, metrics."""

from __future__ import annotations

import fcntl
import logging
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from suanli.errors import SuanliError
from suanli.network import Network, load_network
from suanli.service.auth import Tokens
from suanli.service.estimate import Estimator
from suanli.service.metrics import Metrics
from suanli.service.profiles import write_secret_toml
from suanli.service.settings import Settings
from suanli.store import network as store_network
from suanli.store import tenants, tokens
from suanli.store.db import Database
from suanli.store.fastpath import FastPath

log = logging.getLogger("suanli.service")


@dataclass
class ServiceState:
    settings: Settings
    db: Database
    network: Network
    estimator: Estimator
    tokens: Tokens
    metrics: Metrics
    data_dir: Path
    fast: FastPath = None  # type: ignore[assignment]
    runner: Any = None  # service.runner.Runner when a backend runs jobs
    bootstrap_token: str | None = None
    lock_file: IO[str] | None = None  # SQLite: held for the process lifetime (one service)
    _network_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.fast = FastPath(self.db.dialect)

    @property
    def currency(self) -> str:
        return self.network.currency

    def log_path(self, job: dict[str, Any]) -> Path:
        return Path(job["log_path"]) if job.get("log_path") else (
            self.data_dir / str(job["id"]) / "job.log")

    def reload_network(self) -> Network:
        """Rebuild the network from the tables after an admin edit; tell the planner, and the
        scheduler (which reads it from the database, as edits through other replicas)."""
        with self._network_lock:
            with self.db.read() as conn:
                net = store_network.load(conn)
            self.network = net
            self.estimator.set_network(net)
        if self.runner is not None:
            self.runner.network_changed()
        return net

    def use_network(self, net: Network) -> None:
        """A network edited through another replica (the runner read it from the database)."""
        with self._network_lock:
            self.network = net
            self.estimator.set_network(net)

    def close(self) -> None:
        """Disconnect, and let another service open this SQLite file."""
        self.db.dispose()
        if self.lock_file is not None:
            self.lock_file.close()  # closing the file drops the flock
            self.lock_file = None


def open_state(settings: Settings) -> ServiceState:
    """Connect, migrate, seed the network on first start, make sure an admin exists."""
    lock_file = lock_sqlite(settings.resolved_db_url())
    db = Database(settings.resolved_db_url())
    db.migrate()
    with db.write() as conn:
        if db.dialect == "postgresql":  # replicas starting together seed one at a time
            conn.execute(text("SELECT pg_advisory_xact_lock(860061)"))
        if store_network.get_meta(conn, "network") is None:
            store_network.seed(conn, load_network(settings.network))
        net = store_network.load(conn)
        bootstrap = _ensure_admin(conn, settings)
    data_dir = settings.resolved_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    state = ServiceState(settings=settings, db=db, network=net, estimator=Estimator(net),
                         tokens=Tokens(db), metrics=Metrics(), data_dir=data_dir,
                         bootstrap_token=bootstrap, lock_file=lock_file)
    if bootstrap:
        path = settings.credentials_path()
        write_secret_toml(path, {}, top={"url": settings.client_url(), "token": bootstrap})
        if settings.print_admin_token:
            sys.stderr.write(f"suanli: admin credentials written to {path} (mode 0600); "
                             f"`suanli login --credentials {path}` stores them as your profile\n")
    return state


def _ensure_admin(conn: Any, settings: Settings) -> str | None:
    """The admin tenant: with SUANLI_ADMIN_TOKEN, that token; else a new one at first start."""
    token = settings.admin_token
    if token:
        if tokens.is_revoked(conn, token):
            raise SuanliError("SUANLI_ADMIN_TOKEN names a revoked token: set a new one (or "
                              "unset it to have a new admin token made at start)",
                              field="SUANLI_ADMIN_TOKEN", value=token[:10] + "...")
        if tenants.principal_for_token(conn, token) is None:
            if tenants.has_admin(conn):
                admin_row = next(t for t in tenants.list_tenants(conn) if t["is_admin"])
                tenants.issue_token(conn, admin_row["id"], token)
            else:
                tenants.create_tenant(conn, "admin", is_admin=True, token=token)
        return None
    if tenants.has_admin(conn):
        return None
    _id, token = tenants.create_tenant(conn, "admin", is_admin=True)
    return token


def lock_sqlite(url: str) -> IO[str] | None:
    """SQLite serves one service process: hold an exclusive lock on `<db>.lock` for this
    process's lifetime, and refuse to start if another process holds it. (Replicas need
    PostgreSQL: SQLite's writers queue on a lock inside one process.)"""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(f"{path}.lock", "a+")  # noqa: SIM115 - held open for the process lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise SuanliError(
            f"another suanli service already uses the SQLite database {path}; SQLite allows "
            f"one service process (run replicas on PostgreSQL)", field="db", value=url) from None
    lock.write("")
    return lock

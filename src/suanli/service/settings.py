"""Service settings: where the database is, which network, backend and policy, how fast to tick."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from suanli.store.db import default_sqlite_url


def suanli_home() -> Path:
    return Path(os.environ.get("SUANLI_HOME", "~/.suanli")).expanduser()


@dataclass
class Settings:
    """Everything `suanli up` can set. `backend='none'` runs the API without a scheduler."""

    network: str = "east-west"
    db_url: str | None = None
    backend: str = "local"
    host: str = "127.0.0.1"
    port: int = 8600
    policy: str = "fifo"
    round_s: float = 2.0  # the engine's scheduling round (short: jobs start promptly)
    tick_s: float = 0.25  # how often the loop calls engine.step()
    # None: the engine's default. Outside Gavel mode the engine reallocates at the next round
    # whenever a waiting job fits freed chips, so live jobs never wait out the 32-minute period.
    realloc_interval_s: float | None = None
    admin_token: str | None = field(default_factory=lambda: os.environ.get("SUANLI_ADMIN_TOKEN"))
    data_dir: Path | None = None  # job directories and logs; default: next to the database
    stop_jobs_on_shutdown: bool = False  # False: jobs run on, adopted by the next start
    ray_address: str | None = None
    print_admin_token: bool = True
    # "sandbox": tenants' jobs run confined (backends/sandbox.py); "none": single-user mode
    isolation: str = "sandbox"
    # Replicas (PostgreSQL): this process's name in the leader lease (default host:pid:port
    # and a random suffix), the lease's length and how often the leader sweeps the database
    # for jobs and cancels that reached another replica (None: 1 s on PostgreSQL, else 5 s).
    replica_id: str | None = None
    lease_s: float = 4.0
    sweep_s: float | None = None
    max_body_bytes: int = 1 << 20  # a request body past this is refused (413) as it streams

    def resolved_db_url(self) -> str:
        return self.db_url or default_sqlite_url(suanli_home() / "suanli.db")

    def state_dir(self) -> Path:
        """Where the service keeps its own files: next to a SQLite database, else the home."""
        url = self.resolved_db_url()
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            return Path(url.removeprefix("sqlite:///")).expanduser().parent
        return suanli_home()

    def credentials_path(self) -> Path:
        """The admin credentials written at first start (0600), read by `suanli login`."""
        return self.state_dir() / "admin-credentials.toml"

    def client_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def resolved_data_dir(self) -> Path:
        if self.data_dir is not None:
            return Path(self.data_dir)
        url = self.resolved_db_url()
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            return Path(url.removeprefix("sqlite:///")).parent / "runs"
        return suanli_home() / "runs"

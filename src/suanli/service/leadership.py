"""This replica's claim on the scheduler: the lease it holds (or tries to take) and renews.

Any number of `suanli up` processes share one PostgreSQL database; exactly one runs the
scheduler. `Lease.try_acquire()` takes the database lease when it is free or expired
(`store.leader`); a thread renews it every `renew_s`. The leader trusts its lease only until
`lease_s - margin_s` after the start of its last successful renewal, by its own monotonic
clock: another replica can take over only `lease_s` after that renewal by the database's
clock, which is later. So a leader that stalled (SIGSTOP, a long GC pause, a frozen VM)
knows, on waking, before it does anything, that it may no longer act (`valid()`), and
every write it makes is fenced by its token in the database as well (`Runner._fenced_write`).

What is left: a stall that falls between the last check and the backend's own action (the
fork of a job's process, microseconds later) is not caught; closing that too would need the
backend's resources to check the token themselves.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from suanli.store import leader as store_leader
from suanli.store.db import Database

log = logging.getLogger("suanli.service.leadership")

LEASE_S = 4.0
RENEW_S = 1.0
MARGIN_S = 0.5


class LostLeadership(Exception):
    """This replica's lease is gone: stop scheduling, touch no process."""


def replica_id(port: int | None = None) -> str:
    """host:pid:port plus a short random suffix (a pid can be reused after a restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{port or 0}:{uuid.uuid4().hex[:6]}"


class Lease:
    """The lease as this replica holds it: token, local validity, the renewing thread."""

    def __init__(self, db: Database, holder: str, *, lease_s: float = LEASE_S,
                 renew_s: float = RENEW_S, margin_s: float = MARGIN_S,
                 exclusive: bool = False) -> None:
        self.db = db
        # The only process that can schedule on this database (SQLite, file locked): a lease
        # left by a crashed predecessor is taken at once instead of after it expires.
        self.exclusive = exclusive
        self.holder = holder
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.margin_s = margin_s
        self.token: int | None = None  # the fencing token while leading
        self._valid_until = 0.0  # monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def leading(self) -> bool:
        return self.token is not None

    def valid(self) -> bool:
        """Whether this replica may still act as the leader (its own clock; no database)."""
        return self.token is not None and time.monotonic() < self._valid_until

    def check(self) -> int:
        """The token, or LostLeadership if the lease may have passed to another replica."""
        token = self.token
        if token is None or not self.valid():
            raise LostLeadership(f"replica {self.holder} no longer holds the scheduler lease")
        return token

    def try_acquire(self) -> bool:
        """Take the lease if it is free or expired, and start renewing it."""
        started = time.monotonic()
        try:
            with self.db.write() as conn:
                token = store_leader.acquire(conn, self.holder, self.lease_s,
                                             force=self.exclusive)
        except Exception:  # noqa: BLE001 - a database blip: try again next time
            log.exception("could not try the scheduler lease")
            return False
        if token is None:
            return False
        with self._lock:
            self.token = token
            self._valid_until = started + self.lease_s - self.margin_s
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="suanli-lease",
                                        daemon=True)
        self._thread.start()
        log.warning("replica %s leads the scheduler (token %d)", self.holder, token)
        return True

    def step_down(self) -> None:
        """Stop renewing and forget the token (the lease expires by itself)."""
        self._stop.set()
        with self._lock:
            self.token = None
            self._valid_until = 0.0
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)
        self._thread = None

    def release(self) -> None:
        """Graceful shutdown: hand the lease back so the next replica need not wait."""
        token = self.token
        self.step_down()
        if token is None:
            return
        try:
            with self.db.write() as conn:
                store_leader.release(conn, self.holder, token)
        except Exception:  # noqa: BLE001 - it expires by itself anyway
            log.exception("could not release the scheduler lease")

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_s):
            token = self.token
            if token is None:
                return
            started = time.monotonic()
            try:
                with self.db.write() as conn:
                    ok = store_leader.renew(conn, self.holder, token, self.lease_s)
            except Exception:  # noqa: BLE001 - keep trying until the local validity runs out
                log.exception("could not renew the scheduler lease")
                continue
            with self._lock:
                if self.token != token:
                    return
                if not ok:
                    log.warning("replica %s lost the scheduler lease (token %d)", self.holder,
                                token)
                    self.token = None
                    self._valid_until = 0.0
                    return
                self._valid_until = started + self.lease_s - self.margin_s

"""Uploaded job code (`workdir:` archives) in the shared database, keyed by sha256.

The API replica that takes a submission stores the archive here in its own transaction
before the job is admitted; the leader reads it when it launches the job, whichever replica
it is (a file under one replica's data dir is not visible to another). Rows are immutable:
the key is the content's digest, so storing the same code twice is a no-op.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from suanli.store.models import Upload

U = Upload.__table__


def put(conn: Connection, digest: str, archive: bytes) -> bool:
    """Keep `archive` under `digest` (already checked by the caller); False if it was there
    (two replicas storing the same code at once both succeed: the second insert is ignored)."""
    if has(conn, digest):
        return False
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(U).values(digest=digest, archive=archive, size_bytes=len(archive),
                                    created_at=time.time())
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["digest"]))
    return True


def has(conn: Connection, digest: str) -> bool:
    return bool(conn.execute(select(exists().where(U.c.digest == digest))).scalar())


def get(conn: Connection, digest: str) -> bytes | None:
    row = conn.execute(select(U.c.archive).where(U.c.digest == digest)).first()
    return None if row is None else bytes(row[0])

"""Where a job's uploaded code lives for the service: the database (every replica sees it)
and, as a cache, `<data_dir>/uploads/` on the machine that launches the job, which is where
the backends read it (`jobs/workdir.py`)."""

from __future__ import annotations

from pathlib import Path

from suanli.jobs import workdir
from suanli.store import uploads
from suanli.store.db import Database


def keep(db: Database, root: Path, archive: bytes) -> str:
    """Store a checked archive in the database and the local cache; returns its digest."""
    digest = workdir.digest_of(archive)
    with db.write() as conn:
        uploads.put(conn, digest, archive)
    workdir.store(root, archive)
    return digest


def known(db: Database, digest: str) -> bool:
    """Whether some replica stored this code (a resubmission need not send it again)."""
    with db.read() as conn:
        return uploads.has(conn, digest)


def ensure_local(db: Database, root: Path, digest: str) -> bool:
    """Copy the archive from the database into this machine's cache unless it is there; False
    if the database does not hold it (the backend then reports the missing code)."""
    if workdir.upload_path(root, digest).exists():
        return True
    with db.read() as conn:
        archive = uploads.get(conn, digest)
    if archive is None:
        return False
    workdir.store(root, archive)
    return True

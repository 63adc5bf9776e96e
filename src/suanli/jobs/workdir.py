"""A job's code, shipped with it (as SkyPilot's `workdir:`): the CLI packs the directory the
job file names into a tar.gz, the submission carries it (base64, size-limited), the service
keeps it by its sha256 (so one upload serves every job that ships the same code) and the
backend unpacks it into the job's private work directory before `setup:` and `run:`.

In the stored spec `workdir` is `sha256:<hex>` of the archive, never a path on the client."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from suanli.errors import SpecError

MAX_ARCHIVE_BYTES = 512 * 1024  # compressed: fits a 1 MiB request body once base64-encoded
MAX_UNPACKED_BYTES = 16 * 1024 * 1024  # the files themselves
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache",
             ".pytest_cache", ".ruff_cache"}


@dataclass(frozen=True)
class PackedWorkdir:
    digest: str  # "sha256:<hex>" of `archive`
    archive: bytes  # tar.gz
    files: int
    unpacked_bytes: int

    def to_base64(self) -> str:
        return base64.b64encode(self.archive).decode("ascii")


def digest_of(archive: bytes) -> str:
    return "sha256:" + hashlib.sha256(archive).hexdigest()


def pack(directory: Path) -> PackedWorkdir:
    """The directory's regular files as a reproducible tar.gz (sorted, mtime 0, no owners)."""
    if not directory.is_dir():
        raise SpecError(f"workdir: {directory} is not a directory", field="workdir",
                        value=str(directory))
    buf = io.BytesIO()
    files = total = 0
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=9) as tar:
        for path in _files(directory):
            rel = path.relative_to(directory).as_posix()
            size = path.stat().st_size
            total += size
            if total > MAX_UNPACKED_BYTES:
                raise SpecError(f"workdir: {directory} holds more than {MAX_UNPACKED_BYTES} "
                                "bytes of files; ship code, not data (use `dataset:`)",
                                field="workdir", value=str(directory))
            info = tarfile.TarInfo(rel)
            info.size = size
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            with path.open("rb") as f:
                tar.addfile(info, f)
            files += 1
    archive = _gzip_without_mtime(buf.getvalue())
    if len(archive) > MAX_ARCHIVE_BYTES:
        raise SpecError(f"workdir: {directory} packs to {len(archive)} bytes; the limit is "
                        f"{MAX_ARCHIVE_BYTES}", field="workdir", value=str(directory))
    return PackedWorkdir(digest_of(archive), archive, files, total)


def _files(directory: Path) -> list[Path]:
    out = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(names):
            p = Path(root) / name
            if p.is_file() and not p.is_symlink():
                out.append(p)
    return out


def _gzip_without_mtime(data: bytes) -> bytes:
    return data[:4] + b"\0\0\0\0" + data[8:]  # gzip header bytes 4-7: mtime


def decode_upload(text: object, digest: object) -> bytes:
    """The archive a submission carries, checked against the digest its spec names."""
    if not isinstance(text, str):
        raise SpecError("workdir_archive: must be the base64 text of a tar.gz",
                        field="workdir_archive")
    if len(text) > MAX_ARCHIVE_BYTES * 4 // 3 + 4:
        raise SpecError(f"workdir_archive: more than {MAX_ARCHIVE_BYTES} bytes",
                        field="workdir_archive", value=len(text))
    try:
        archive = base64.b64decode(text, validate=True)
    except ValueError:
        raise SpecError("workdir_archive: not base64", field="workdir_archive") from None
    if digest != digest_of(archive):
        raise SpecError(f"workdir: {digest!r} is not the sha256 of the archive sent "
                        f"({digest_of(archive)})", field="workdir", value=digest)
    return archive


def upload_path(root: Path, digest: str) -> Path:
    if not DIGEST_RE.match(digest):
        raise SpecError(f"workdir: want sha256:<64 hex digits> (got {digest!r})",
                        field="workdir", value=digest)
    return root / "uploads" / (digest.removeprefix("sha256:") + ".tar.gz")


def store(root: Path, archive: bytes) -> Path:
    """Keep the archive under `<root>/uploads/` (0600), by its digest; idempotent."""
    path = upload_path(root, digest_of(archive))
    if path.exists():
        return path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(archive)
    os.replace(tmp, path)
    return path


def unpack(archive_path: Path, work: Path) -> int:
    """Extract into `work` (links, devices, absolute and `..` paths refused by tarfile's
    `data` filter); returns the number of files."""
    if not archive_path.exists():
        raise SpecError(f"workdir: the uploaded code {archive_path.name} is not on this "
                        "machine", field="workdir", value=archive_path.name)
    try:
        with tarfile.open(archive_path, "r:gz") as tar:
            members = tar.getmembers()
            if sum(m.size for m in members) > MAX_UNPACKED_BYTES:
                raise SpecError("workdir: the archive unpacks past the limit", field="workdir")
            tar.extractall(work, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SpecError(f"workdir: cannot unpack the uploaded code: {exc}",
                        field="workdir", value=archive_path.name) from None
    return sum(m.isfile() for m in members)

"""Uploaded code lives in the database every replica shares: the replica that takes a
submission stores the archive by its sha256, and the leader, with another data directory,
reads it from there when it launches the job."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from conftest import ADMIN_TOKEN
from suanli.cli.main import app
from suanli.jobs import workdir
from suanli.service import uploads as service_uploads
from suanli.store import uploads
from suanli.store.db import connect


def test_uploaded_code_is_kept_once_by_its_digest(db_url, tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "train.py").write_text("print('hi')\n")
    packed = workdir.pack(tmp_path / "code")
    db = connect(db_url)
    try:
        with db.write() as conn:
            assert uploads.put(conn, packed.digest, packed.archive) is True
            assert uploads.put(conn, packed.digest, packed.archive) is False  # same code
        with db.read() as conn:
            assert uploads.get(conn, packed.digest) == packed.archive
            assert uploads.has(conn, packed.digest)
            assert uploads.get(conn, "sha256:" + "0" * 64) is None
        cache = tmp_path / "other-replica"
        assert service_uploads.ensure_local(db, cache, packed.digest)
        assert workdir.upload_path(cache, packed.digest).read_bytes() == packed.archive
        assert not service_uploads.ensure_local(db, cache, "sha256:" + "1" * 64)
    finally:
        db.dispose()


def _cli(args: list[str], url: str, token: str):
    return CliRunner().invoke(app, args, env={"SUANLI_URL": url, "SUANLI_TOKEN": token})


def test_code_sent_to_one_replica_runs_on_a_leader_with_another_data_dir(
        db_url, start_service, http, tmp_path):
    """The API-only replica takes the submission and stops (SQLite allows one service at a
    time); the leader, started on another data directory, runs the job with its code."""
    api = start_service(db_url, backend="none", data_dir=tmp_path / "api", replica_id="api")
    r = _cli(["admin", "tenant", "create", "lab", "--credits", "1000", "--json"], api.url,
             ADMIN_TOKEN)
    assert r.exit_code == 0, r.output
    token = json.loads(r.stdout)["token"]
    code = tmp_path / "code"
    code.mkdir()
    (code / "hello.sh").write_text("echo shipped code ran\n")
    job = tmp_path / "job.yaml"
    job.write_text("name: shipped\nkind: generic\nwork: {reference_accelerator: L20, "
                   "duration_s: 60}\nresources: {accelerators: [L20]}\n"
                   f"workdir: {code}\nrun: sh hello.sh\n")
    r = _cli(["submit", str(job), "--json"], api.url, token)
    assert r.exit_code == 0, r.output
    job_id = json.loads(r.stdout)["id"]
    api.stop()
    leader = start_service(db_url, backend="local", data_dir=tmp_path / "leader",
                           isolation="none", replica_id="leader")
    digest = workdir.pack(code).digest
    assert workdir.upload_path(tmp_path / "api", digest).exists()  # the api replica's cache
    r = _cli(["logs", str(job_id), "--follow"], leader.url, token)
    assert r.exit_code == 0, r.output
    assert "shipped code ran" in r.stdout and "workdir: 1 files unpacked" in r.stdout
    # the leader never received the archive: it copied it from the database before launching
    assert workdir.upload_path(tmp_path / "leader", digest).exists()
    spec = {"name": "again", "kind": "generic", "run": "sh hello.sh",
            "work": {"reference_accelerator": "L20", "duration_s": 60},
            "resources": {"accelerators": ["L20"]}}
    client = http(leader, token)
    again = client.post("/v1/jobs", json={**spec, "workdir": digest})  # stored: no archive
    assert again.status_code in (200, 201, 202), again.text
    unknown = client.post("/v1/jobs", json={**spec, "workdir": "sha256:" + "2" * 64})
    assert unknown.status_code == 422 and "no code uploaded" in unknown.text

"""Code ships with a job: `workdir:` packed by the CLI, stored by digest with the submission,
unpacked into the job's private work directory before `setup:` and `run:`; `--env` overrides
the file's `envs:`; a job's own non-zero exit fails it without retries."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import ADMIN_TOKEN
from suanli.cli.main import app
from suanli.errors import SpecError
from suanli.jobs import workdir

ROOT = Path(__file__).resolve().parents[1]


def test_packing_is_reproducible_and_skips_caches(tmp_path):
    (tmp_path / "a.py").write_text("print(1)\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.pyc").write_bytes(b"x" * 100)
    one, two = workdir.pack(tmp_path), workdir.pack(tmp_path)
    assert one.digest == two.digest and one.files == 1


def test_a_workdir_past_the_limit_is_refused_naming_the_field(tmp_path):
    import os

    (tmp_path / "blob").write_bytes(os.urandom(workdir.MAX_ARCHIVE_BYTES + 1000))
    with pytest.raises(SpecError) as err:
        workdir.pack(tmp_path)
    assert err.value.field == "workdir" and "limit" in err.value.message


def test_an_archive_escaping_the_work_directory_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    path = workdir.store(tmp_path, buf.getvalue())
    (tmp_path / "work").mkdir()
    with pytest.raises(SpecError):
        workdir.unpack(path, tmp_path / "work")
    assert not (tmp_path / "escape.txt").exists()


def test_a_digest_that_does_not_match_the_archive_is_refused():
    archive = b"not really a tarball"
    with pytest.raises(SpecError) as err:
        workdir.decode_upload("bm90IHJlYWxseQ==", workdir.digest_of(archive))
    assert err.value.field == "workdir"


@pytest.fixture
def lab(start_service, tmp_path):
    server = start_service(f"sqlite:///{tmp_path / 'wd.db'}", backend="local")
    r = _cli(["admin", "tenant", "create", "lab", "--credits", "100000", "--json"], server.url,
             ADMIN_TOKEN)
    assert r.exit_code == 0, r.output
    return server, json.loads(r.stdout)["token"]


def _cli(args, url, token):
    return CliRunner().invoke(app, args, env={"SUANLI_URL": url, "SUANLI_TOKEN": token})


def test_the_readme_resnet_example_ships_its_code_and_succeeds(lab):
    server, token = lab
    r = _cli(["submit", str(ROOT / "examples/resnet-generic.yaml"), "--env",
              "LEARNING_RATE=0.25", "--json"], server.url, token)
    assert r.exit_code == 0, r.output
    job_id = json.loads(r.stdout)["id"]
    r = _cli(["logs", str(job_id), "--follow"], server.url, token)
    assert r.exit_code == 0, r.output
    assert "learning rate 0.25" in r.stdout and "epoch 3/3" in r.stdout
    assert "workdir: 1 files unpacked" in r.stdout
    r = _cli(["logs", str(job_id), "--tail", "1"], server.url, token)
    assert "attempt 1 succeeded" in r.stdout.splitlines()[-1]
    assert len(r.stdout.splitlines()) == 1


def test_a_jobs_own_non_zero_exit_fails_it_at_once_and_logs_follow_says_so(lab, tmp_path):
    server, token = lab
    job = tmp_path / "fails.yaml"
    job.write_text("name: fails\nkind: generic\nwork: {reference_accelerator: L20, "
                   "duration_s: 60}\nresources: {accelerators: [L20]}\nrun: exit 3\n")
    r = _cli(["submit", str(job), "--json"], server.url, token)
    job_id = json.loads(r.stdout)["id"]
    r = _cli(["logs", str(job_id), "--follow"], server.url, token)
    assert r.exit_code == 1
    assert r.stdout.count("attempt ") == 2  # started once, failed once: no retry
    r = _cli(["job", str(job_id), "--json"], server.url, token)
    j = json.loads(r.stdout)
    assert j["state"] == "failed" and "exit 3" in j["reason"] and "not retried" in j["reason"]


def test_a_job_retries_only_the_exit_codes_it_lists(lab, tmp_path):
    server, token = lab
    job = tmp_path / "flaky.yaml"
    job.write_text("name: flaky\nkind: generic\nwork: {reference_accelerator: L20, "
                   "duration_s: 60}\nresources: {accelerators: [L20]}\nmax_retries: 2\n"
                   "retry_on_exit_codes: [75]\n"
                   'run: test -f "$SUANLI_CHECKPOINT_DIR/once" || '
                   '{ touch "$SUANLI_CHECKPOINT_DIR/once"; exit 75; }\n')
    r = _cli(["submit", str(job), "--json"], server.url, token)
    job_id = json.loads(r.stdout)["id"]
    r = _cli(["logs", str(job_id), "--follow"], server.url, token)
    assert r.exit_code == 0, r.output
    assert "attempt 2 succeeded" in r.stdout


def test_submit_overrides_resources_and_dryrun_previews_before_submitting(lab, tmp_path):
    server, token = lab
    job = tmp_path / "j.yaml"
    job.write_text("name: over\nkind: generic\nwork: {reference_accelerator: L20, "
                   "duration_s: 60}\nresources: {accelerators: [L20]}\nrun: sleep 30\n")
    r = _cli(["submit", str(job), "--dryrun", "--json"], server.url, token)
    assert r.exit_code == 0, r.output
    preview = json.loads(r.stdout)
    assert preview["submitted"] is False and preview["plan"]["chosen"]["accelerator"] == "L20"
    r = _cli(["submit", str(job), "--gpus", "A800:2", "--dryrun", "--yes", "--json"],
             server.url, token)
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout)
    assert j["estimate"]["accelerator"] == "A800" and j["estimate"]["count"] == 2
    r = _cli(["cancel", "--name", "over", "--json"], server.url, token)
    assert r.exit_code == 0, r.output
    assert [c["id"] for c in json.loads(r.stdout)] == [j["id"]]


def test_queue_lists_waiting_jobs_in_order_with_an_estimated_start(lab, tmp_path):
    server, token = lab
    job = tmp_path / "q.yaml"
    job.write_text("name: q\nkind: generic\nwork: {reference_accelerator: L20, "
                   "duration_s: 60}\nresources: {accelerators: [L20]}\nrun: sleep 30\n")
    ids = [json.loads(_cli(["submit", str(job), "--json"], server.url, token).stdout)["id"]
           for _ in range(3)]  # one L20 chip: one runs, two wait
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = json.loads(_cli(["queue", "--json"], server.url, token).stdout)
        if len(rows) == 2:
            break
        time.sleep(0.3)
    assert [r["position"] for r in rows] == [1, 2]
    assert {r["id"] for r in rows} < set(ids)
    assert all(r["est_start_s"] is not None and "L20" in r["where"] for r in rows)
    assert _cli(["cancel", "--all"], server.url, token).exit_code == 0

"""The CLI client against a real server: JSON output, and server errors as one line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import ADMIN_TOKEN
from suanli.cli.main import app

JOB_YAML = """\
name: cli-job
kind: generic
work: {reference_accelerator: L20, duration_s: 60}
resources: {accelerators: [L20]}
run: echo from-the-cli
"""


@pytest.fixture
def server(start_service, tmp_path):
    return start_service(f"sqlite:///{tmp_path / 'cli.db'}", backend="local")


def _run(args: list[str], url: str, token: str | None = ADMIN_TOKEN, home=None):
    env = {"SUANLI_URL": url, "SUANLI_TOKEN": token or "",
           "SUANLI_HOME": str(home or "/nonexistent")}
    return CliRunner().invoke(app, args, env=env)


def test_cli_admin_submit_watch_and_usage(server, tmp_path):
    r = _run(["admin", "tenant", "create", "lab", "--credits", "1000", "--quota", "L20=4",
              "--json"], server.url)
    assert r.exit_code == 0, r.output
    token = json.loads(r.stdout)["token"]
    job_file = tmp_path / "job.yaml"
    job_file.write_text(JOB_YAML)
    r = _run(["submit", str(job_file), "--json"], server.url, token)
    assert r.exit_code == 0, r.output
    job_id = json.loads(r.stdout)["id"]
    r = _run(["logs", str(job_id), "--follow", "--json"], server.url, token)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert "from-the-cli" in out["log"] and out["state"] == "succeeded"
    r = _run(["job", str(job_id), "--json"], server.url, token)
    assert json.loads(r.stdout)["events"][-1]["new"] == "succeeded"
    r = _run(["jobs", "--json"], server.url, token)
    assert [j["id"] for j in json.loads(r.stdout)] == [job_id]
    r = _run(["usage", "--json"], server.url, token)
    usage = json.loads(r.stdout)
    assert usage["quotas"] == {"L20": 4} and usage["reserved"] == "0.00"
    r = _run(["jobs"], server.url, token)  # the human table renders too
    assert r.exit_code == 0 and "cli-job" in r.stdout


def test_cli_server_errors_are_one_line_without_traceback(server, tmp_path):
    r = _run(["job", "999"], server.url)
    assert r.exit_code == 2
    assert "no job 999" in r.output and "HTTP 404" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    r = _run(["jobs"], server.url, token="sl_wrong")
    assert r.exit_code == 2 and "invalid API token" in r.output
    r = _run(["jobs"], "http://127.0.0.1:9")
    assert r.exit_code == 2 and "cannot reach" in r.output and "Traceback" not in r.output


def test_cli_reads_url_and_token_from_the_config_file(server, tmp_path):
    (tmp_path / "config.toml").write_text(f'url = "{server.url}"\ntoken = "{ADMIN_TOKEN}"\n')
    r = CliRunner().invoke(app, ["usage", "--json"], env={
        "SUANLI_HOME": str(tmp_path), "SUANLI_URL": "", "SUANLI_TOKEN": ""})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tenant"] == "admin"

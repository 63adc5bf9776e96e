"""Credentials like other CLIs: `suanli up` writes the admin's to a 0600 file, `suanli login`
keeps a profile in the user's config directory, client commands read it, env overrides it."""

from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from conftest import TINY_NETWORK
from suanli.cli.main import app
from suanli.service.profiles import config_file
from suanli.service.server import serve_in_thread
from suanli.service.settings import Settings


@pytest.fixture
def fresh_server(tmp_path, monkeypatch):
    """A service started without SUANLI_ADMIN_TOKEN: it makes the admin's token itself."""
    monkeypatch.delenv("SUANLI_ADMIN_TOKEN", raising=False)
    (tmp_path / "svc").mkdir()
    settings = Settings(network=str(TINY_NETWORK), db_url=f"sqlite:///{tmp_path / 'svc/s.db'}",
                        backend="none", port=0, print_admin_token=False)
    with serve_in_thread(settings) as server:
        yield server


def _cli(args: list[str]):
    return CliRunner().invoke(app, args, env={"SUANLI_URL": "", "SUANLI_TOKEN": "",
                                              "SUANLI_PROFILE": "", "SUANLI_HOME": "/nonexistent"})


def test_first_start_writes_admin_credentials_readable_by_the_owner_only(fresh_server, tmp_path):
    path = tmp_path / "svc" / "admin-credentials.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert 'token = "sl_' in path.read_text()


def test_login_with_the_credentials_file_stores_a_0600_profile_used_by_later_commands(
        fresh_server, tmp_path):
    creds = tmp_path / "svc" / "admin-credentials.toml"
    text = creds.read_text().replace("http://127.0.0.1:0", fresh_server.url)
    creds.write_text(text)
    r = _cli(["login", "--credentials", str(creds), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tenant"] == "admin"
    assert stat.S_IMODE(config_file().stat().st_mode) == 0o600
    r = _cli(["admin", "tenant", "create", "lab", "--credits", "100", "--login", "--json"])
    assert r.exit_code == 0, r.output
    r = _cli(["usage", "--json"])  # the lab profile is current now
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tenant"] == "lab"
    r = _cli(["login", "--profile", "admin", "--json"])  # switch back
    assert json.loads(r.stdout)["tenant"] == "admin"


def test_environment_variables_override_the_profile(fresh_server, tmp_path):
    creds = tmp_path / "svc" / "admin-credentials.toml"
    creds.write_text(creds.read_text().replace("http://127.0.0.1:0", fresh_server.url))
    assert _cli(["login", "--credentials", str(creds)]).exit_code == 0
    r = CliRunner().invoke(app, ["usage", "--json"], env={"SUANLI_TOKEN": "sl_wrong"})
    assert r.exit_code == 2
    assert json.loads(r.stderr)["error"].startswith("invalid API token")
    assert r.stdout == ""

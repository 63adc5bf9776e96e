"""The Ray path as a user tries it: `suanli up --backend ray` with no address starts a local
Ray cluster whose nodes stand in for the network's centers, so a job runs; `suanli node join`
gives the `ray start` line that attaches a machine to a center's pools."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from suanli.cli.main import app

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "fixtures" / "service_tiny_network.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_node_join_prints_the_centers_resources_for_ray_start():
    r = CliRunner().invoke(app, ["node", "join", "--center", "alpha", "--address",
                                 "10.0.0.1:6379", "--network", str(TINY), "--print", "--json"])
    assert r.exit_code == 0, r.output
    argv = json.loads(r.stdout)["command"]
    assert argv[:3] == ["ray", "start", "--address=10.0.0.1:6379"]
    resources = json.loads(argv[3].removeprefix("--resources="))
    assert resources["center:alpha"] > 0 and resources["pool:alpha/l20"] == 1.0


def test_up_with_backend_ray_and_no_address_runs_a_job_on_a_local_center_node(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUANLI_")}
    env.update(PYTHONPATH=str(ROOT / "src"), SUANLI_PORT=str(port), HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen([sys.executable, "-m", "suanli.cli.main", "up", "--backend", "ray",
                           "--network", str(TINY), "--db", f"sqlite:///{tmp_path / 'r.db'}",
                           "--round-s", "0.5"], cwd=tmp_path, env=env, stdout=log,
                          stderr=subprocess.STDOUT, start_new_session=True)
    job = tmp_path / "job.yaml"
    job.write_text("name: on-ray\nkind: generic\nwork: {reference_accelerator: L20, "
                   "duration_s: 60}\nresources: {accelerators: [L20]}\nrun: echo from-ray\n")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "suanli.cli.main", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=180)

    try:
        assert cli("status", "--wait", "150").returncode == 0, (tmp_path / "up.log").read_text()
        assert cli("login", "--credentials", "admin-credentials.toml").returncode == 0
        assert cli("admin", "tenant", "grant", "admin", "100").returncode == 0
        status = json.loads(cli("status", "--json").stdout)
        live = {n["center"]: n for n in status["nodes"]}
        assert live["alpha"]["chips"] == {"l20": 1, "a800": 8}  # every center has its node
        assert set(live) == {c["center"] for c in status["centers"]}
        r = cli("submit", str(job), "--json")
        assert r.returncode == 0, r.stderr
        r = cli("logs", str(json.loads(r.stdout)["id"]), "--follow")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "from-ray" in r.stdout and "ray-node=" in r.stdout
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
        log.close()
    assert "a local cluster at" in (tmp_path / "up.log").read_text()

"""`--json` is a contract: every command prints exactly one JSON document on stdout, whatever a
library prints (HiGHS's banner comes from C++, so the offline commands run in a subprocess,
where only the file descriptor shows it), and an error is JSON on stderr with a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from conftest import ADMIN_TOKEN
from suanli.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
GAVEL = ROOT / "tests" / "fixtures" / "gavel"

# Offline commands: run as `python -m suanli.cli.main ... --json` in a fresh process.
OFFLINE = {
    "accelerators": ["accelerators"],
    "network show": ["network", "show", "east-west"],
    "network list": ["network", "list"],
    "policies list": ["policies", "list"],
    "node join": ["node", "join", "--center", "horinger", "--address", "127.0.0.1:1", "--print"],
    "estimate": ["estimate", "examples/llama2-70b-lora.yaml", "--accelerator", "H800",
                 "--count", "8"],
    "compare": ["compare", "examples/llama3-8b-pretrain.yaml", "--accelerators", "H100,H800"],
    "calibrate": ["calibrate", "examples/calibration/measurements.yaml"],
    "plan": ["plan", "examples/llama2-70b-lora.yaml", "--network", "east-west"],
    "simulate": ["simulate", "--trace", str(GAVEL / "gen_100jobs_lam1200_seed0_single.trace"),
                 "--throughputs", str(GAVEL / "simulation_throughputs_trimmed.json"),
                 "--cluster", "v100:4,p100:4,k80:4", "--policy", "max_min_fairness_perf",
                 "--jobs", "0:20", "--gavel-mode"],
}
# Commands that need a service, or run one: pinned by the tests named here.
ELSEWHERE = {"up": "test_up_prints_one_json_document_and_logs_to_stderr",
             "demo": "tests/test_service_demo.py (demo --json)",
             "login": "tests/test_cli_login.py"}


def _json_commands(group: click.Group, prefix: str = "") -> set[str]:
    names = set()
    for name, cmd in group.commands.items():
        full = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            names |= _json_commands(cmd, full + " ")
        elif any("--json" in p.opts for p in cmd.params):
            names.add(full)
    return names


def _python_cli(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "suanli.cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def offline_outputs() -> dict[str, subprocess.CompletedProcess]:
    return {name: _python_cli([*args, "--json"]) for name, args in OFFLINE.items()}


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_every_offline_command_prints_one_json_document(name, offline_outputs):
    r = offline_outputs[name]
    assert r.returncode == 0, r.stderr
    json.loads(r.stdout)  # the whole of stdout: no banner before it, nothing after


def test_an_error_under_json_is_json_on_stderr_and_nothing_on_stdout():
    r = _python_cli(["estimate", "examples/llama2-70b-lora.yaml", "--accelerator", "H9000",
                     "--json"])
    assert r.returncode == 2 and r.stdout == ""
    err = json.loads(r.stderr)
    assert err["field"] and "H9000" in err["error"]


@pytest.fixture
def server(start_service, tmp_path):
    return start_service(f"sqlite:///{tmp_path / 'json.db'}", backend="local",
                         isolation="none")


def _client_cases(tmp_path: Path) -> list[tuple[str, list[str], str]]:
    """(command, args, token) in an order where each one's object exists ("@id": the id in
    the reply before)."""
    job = tmp_path / "job.yaml"
    job.write_text("name: j\nkind: generic\nwork: {reference_accelerator: L20, duration_s: 60}\n"
                   "resources: {accelerators: [L20]}\nrun: echo hi\n")
    slow = tmp_path / "slow.yaml"
    slow.write_text(job.read_text().replace("echo hi", "sleep 30"))
    return [
        ("status", ["status"], ADMIN_TOKEN),
        ("admin tenant create", ["admin", "tenant", "create", "lab", "--credits", "100"],
         ADMIN_TOKEN),
        ("admin tenant grant", ["admin", "tenant", "grant", "admin", "100"], ADMIN_TOKEN),
        ("admin tenant quota", ["admin", "tenant", "quota", "lab", "L20=4"], ADMIN_TOKEN),
        ("admin tenant list", ["admin", "tenant", "list"], ADMIN_TOKEN),
        ("admin voucher issue", ["admin", "voucher", "issue", "lab", "--issuer", "Wuhu",
                                 "--share", "0.3", "--cap", "100", "--days", "30"], ADMIN_TOKEN),
        ("admin voucher revoke", ["admin", "voucher", "revoke", "@id"], ADMIN_TOKEN),
        ("admin voucher list", ["admin", "voucher", "list"], ADMIN_TOKEN),
        ("vouchers", ["vouchers"], ADMIN_TOKEN),
        ("admin pool set", ["admin", "pool", "set", "alpha", "l20", "--price", "9.5"], ADMIN_TOKEN),
        ("admin token list", ["admin", "token", "list", "lab"], ADMIN_TOKEN),
        ("admin token create", ["admin", "token", "create", "lab"], ADMIN_TOKEN),
        ("admin token revoke", ["admin", "token", "revoke", "lab", "@id"], ADMIN_TOKEN),
        ("token create", ["token", "create"], ADMIN_TOKEN),
        ("token revoke", ["token", "revoke", "@id"], ADMIN_TOKEN),
        ("token list", ["token", "list"], ADMIN_TOKEN),
        ("submit", ["submit", str(job)], ADMIN_TOKEN),
        ("jobs", ["jobs"], ADMIN_TOKEN),
        ("job", ["job", "1"], ADMIN_TOKEN),
        ("logs", ["logs", "1", "--follow"], ADMIN_TOKEN),
        ("submit", ["submit", str(slow)], ADMIN_TOKEN),
        ("cancel", ["cancel", "@id"], ADMIN_TOKEN),
        ("usage", ["usage"], ADMIN_TOKEN),
        ("gpus", ["gpus"], ADMIN_TOKEN),
        ("queue", ["queue"], ADMIN_TOKEN),
        ("cost-report", ["cost-report", "--all"], ADMIN_TOKEN),
    ]


def test_every_command_with_json_is_covered_here():
    every = _json_commands(typer.main.get_command(app))
    covered = set(OFFLINE) | set(ELSEWHERE) | {c for c, _, _ in _client_cases(Path("/tmp"))}
    assert every - covered == set(), "add the new command to this test"


def test_every_client_command_prints_one_json_document(server, tmp_path):
    last: dict = {}
    for name, args, token in _client_cases(tmp_path):
        args = [str(last.get("id")) if a == "@id" else a for a in args]
        r = CliRunner().invoke(app, [*args, "--json"], env={
            "SUANLI_URL": server.url, "SUANLI_TOKEN": token, "SUANLI_HOME": str(tmp_path)})
        assert r.exit_code == 0, (name, r.output)
        doc = json.loads(r.stdout)
        last = doc if isinstance(doc, dict) else {}


def test_up_prints_one_json_document_and_logs_to_stderr(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "SUANLI_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "suanli.cli.main", "up", "--json", "--backend", "none",
         "--port", "0", "--db", f"sqlite:///{tmp_path / 'up.db'}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        doc = first
        while not doc.rstrip().endswith("}") or doc.count("{") != doc.count("}"):
            doc += proc.stdout.readline()
        assert json.loads(doc)["backend"] == "none"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert out.strip() == "", out  # nothing after the document: logs went to stderr

"""Tables fit an 80-column terminal (no header cut to "…", no line past 80) and bad inputs get
one line in the user's words naming the field and the value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "suanli.cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [
    ("accelerators",),
    ("compare", "examples/llama3-8b-pretrain.yaml", "--accelerators", "H100,H800,910B"),
    ("network", "show", "east-west"),
    ("network", "list"),
    ("policies", "list"),
])
def test_a_table_fits_80_columns_with_every_header_whole(args):
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in r.stdout


def _job(tmp_path: Path, resources: str) -> str:
    path = tmp_path / "job.yaml"
    path.write_text("name: x\nkind: generic\nwork: {reference_accelerator: A100, duration_s: 60}\n"
                    f"resources: {resources}\n")
    return str(path)


@pytest.mark.parametrize(("resources", "says"), [
    ("{count: eight}", "resources.count: count must be a positive integer or {min, max} "
                       "(got 'eight')"),
    ("{count: 1e9}", "resources.count: count must be at most 1000000"),
    ("{accelerators: [H9000]}", "unknown accelerator 'H9000'; closest known: H800"),
])
def test_a_bad_job_file_gets_one_line_naming_field_and_value(tmp_path, resources, says):
    r = _cli("estimate", _job(tmp_path, resources), "--accelerator", "H800")
    assert r.returncode == 2
    one_line = " ".join(r.stderr.split())
    assert says in one_line, r.stderr
    assert "function-after" not in one_line and "Traceback" not in r.stderr


def test_an_unknown_network_lists_the_known_ones():
    r = _cli("network", "show", "foo")
    assert r.returncode == 2 and "unknown network 'foo'; known: east-west" in r.stderr


def test_weights_without_the_mix_objective_are_refused_not_ignored():
    r = _cli("plan", "examples/llama2-70b-lora.yaml", "--objective", "cost",
             "--weights", "time=1")
    assert r.returncode == 2 and "--weights applies to --objective mix" in r.stderr

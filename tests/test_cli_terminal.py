"""Tables fit an 80-column terminal (no header cut to "…", no line past 80) and bad inputs get
one line in the user's words naming the field and the value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "suanli.cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [
    ("accelerators",),
    ("compare", "examples/llama3-8b-pretrain.yaml", "--accelerators", "H100,H800,910B"),
    ("network", "show", "east-west"),
    ("network", "list"),
    ("policies", "list"),
    ("plan", "examples/llama3-8b-pretrain.yaml"),
    ("plan", "examples/qwen2-7b-batch.yaml", "--counts", "--explain"),
])
def test_a_table_fits_80_columns_with_every_header_whole(args):
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in r.stdout


def test_a_mixed_chip_plan_fits_80_columns_with_its_split_wrapped(tmp_path):
    net = tmp_path / "net.yaml"
    net.write_text(
        "name: mixed\ncurrency: CNY\ncenters:\n- {id: yrd-demo-zone, name: m, region: r, lat: 0,"
        " lon: 0, electricity_price_per_kwh: 0.5, pools: [{id: h800, accelerator: H800, nodes: 2,"
        " price_per_chip_hour: 17}, {id: 910b, accelerator: 910B, nodes: 2,"
        " price_per_chip_hour: 7}]}\n")
    job = tmp_path / "job.yaml"
    job.write_text("name: big\nkind: train\nmodel: llama-2-70b\nwork: {tokens: 1.0e+9}\n"
                   "resources: {count: 32}\n")
    r = _cli("plan", str(job), "--network", str(net))
    assert r.returncode == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    words = " ".join(r.stdout.split())
    assert "…" not in r.stdout and "16 H800 +" in words and "layers on 16 H800" in words


def test_plan_wide_adds_pool_energy_and_co2_and_the_legend_says_the_units():
    narrow = " ".join(_cli("plan", "examples/qwen2-7b-batch.yaml").stdout.split())
    wide = " ".join(_cli("plan", "examples/qwen2-7b-batch.yaml", "--wide",
                             columns=160).stdout.split())
    assert "CO2 kg" not in narrow and "64 A800*" in narrow and "* spot" in narrow
    assert "cost: CNY" in narrow and "--wide adds pool, energy and CO2" in narrow
    assert "kWh: energy with PUE" in wide and "CO2 kg" in wide


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

"""The CLI's shape: each command group a module-level Typer app (importable and testable one by
one), mounted on the main app; the service's demo uses shared tables, not the CLI."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import typer
from typer.testing import CliRunner

SRC = Path(__file__).resolve().parents[1] / "src" / "suanli"
GROUPS = ["admin_cmds", "catalog_cmds", "jobs_cmds", "login_cmds", "market_cmds", "node_cmds",
          "perf_cmds", "policy_cmds", "service_cmds", "simulate_cmds", "token_cmds"]


def test_every_command_group_is_a_module_level_typer_app():
    for name in GROUPS:
        module = importlib.import_module(f"suanli.cli.{name}")
        assert isinstance(module.app, typer.Typer), name


def test_one_group_runs_on_its_own():
    from suanli.cli import catalog_cmds

    r = CliRunner().invoke(catalog_cmds.app, ["network", "list", "--json"])
    assert r.exit_code == 0 and '"east-west"' in r.stdout


def test_the_demo_does_not_import_the_cli():
    tree = ast.parse((SRC / "service" / "demo.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m and m.startswith("suanli.cli") for m in imported), imported

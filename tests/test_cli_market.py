"""`suanli gpus`, `suanli cost-report` and `suanli status` against a real service."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from conftest import ADMIN_TOKEN
from suanli.cli.main import app


def _cli(url: str, *args: str):
    return CliRunner().invoke(app, [*args], env={"SUANLI_URL": url, "SUANLI_TOKEN": ADMIN_TOKEN})


def test_gpus_lists_free_chips_cheapest_first_and_filters_by_chip(start_service, tmp_path):
    server = start_service(f"sqlite:///{tmp_path / 'g.db'}")
    rows = json.loads(_cli(server.url, "gpus", "--json").stdout)
    assert {(r["accelerator"], r["free"], r["chips"]) for r in rows} == {("A800", 8, 8),
                                                                        ("L20", 1, 1)}
    only = json.loads(_cli(server.url, "gpus", "l20", "--json").stdout)
    assert [r["pool"] for r in only] == ["l20"] and only[0]["price_per_chip_hour"] == "3.6000"
    r = _cli(server.url, "gpus")
    assert r.exit_code == 0 and "A800" in r.stdout


def test_cost_report_sums_charges_per_day_and_lists_vouchers(start_service, tmp_path):
    server = start_service(f"sqlite:///{tmp_path / 'c.db'}")
    assert _cli(server.url, "admin", "tenant", "grant", "admin", "50").exit_code == 0
    rep = json.loads(_cli(server.url, "cost-report", "--json").stdout)
    assert rep["total"] == "0" and rep["granted"] == "50.00" and len(rep["vouchers"]) == 1


def test_status_shows_chips_used_and_free_per_center(start_service, tmp_path):
    server = start_service(f"sqlite:///{tmp_path / 's.db'}")
    st = json.loads(_cli(server.url, "status", "--json").stdout)
    assert st["centers"] == [{"center": "alpha", "chips": {"L20": {"used": 0, "free": 1},
                                                           "A800": {"used": 0, "free": 8}}}]
    r = _cli(server.url, "status")
    assert "alpha" in r.stdout and "A800 0/8" in r.stdout

"""`suanli demo` runs the live network end to end and exits cleanly."""

from __future__ import annotations

from decimal import Decimal

from suanli.service.demo import run_demo


def test_demo_places_runs_and_settles_every_admitted_job():
    result = run_demo(timeout_s=90, live=False)
    jobs = result["jobs"]
    assert jobs and all(j["state"] == "succeeded" for j in jobs), jobs
    assert all(j["placement"] and j["charged"] is not None for j in jobs)
    usage = result["usage"]
    assert usage["reserved"] == "0.00"
    assert usage["ledger_balance"] == usage["balance"]
    assert Decimal(usage["granted"]) - Decimal(usage["spent"]) == Decimal(usage["balance"])
    assert all("training on" in log for log in result["logs"].values())

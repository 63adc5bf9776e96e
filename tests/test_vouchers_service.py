"""Vouchers against a real server: the admin issues, lists and revokes them; a tenant sees its
own; a finished job's charge is split between the voucher and the tenant's credits, and usage
shows what each voucher paid. The CLI drives the same endpoints."""

from __future__ import annotations

import json
from decimal import Decimal

from typer.testing import CliRunner

from conftest import ADMIN_TOKEN, wait_for_state
from suanli.cli.main import app as cli

TERMINAL = {"succeeded", "failed", "cancelled"}


def _tenant(admin, name: str, credits: str) -> str:
    r = admin.post("/v1/tenants", json={"name": name, "credits": credits})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _voucher(**kw) -> dict:
    return {"tenant": "alice", "issuer": "Wuhu", "share": "0.5", "cap": "100.00",
            "valid_days": 30, **kw}


def test_a_voucher_pays_half_of_a_job_run_at_its_center(db_url, start_service, http):
    server = start_service(db_url, backend="local")
    admin = http(server)
    alice = http(server, _tenant(admin, "alice", credits="10.00"))
    r = admin.post("/v1/admin/vouchers", json=_voucher(centers=["alpha"]))
    assert r.status_code == 201, r.text
    v = r.json()
    assert (v["share"], v["cap"], v["remaining"], v["active"]) == ("0.5000", "100.00",
                                                                   "100.00", True)
    job = alice.post("/v1/jobs", json={
        "name": "j", "kind": "generic", "run": "sleep 1", "max_retries": 0,
        "work": {"reference_accelerator": "A800", "duration_s": 1.0},
        "resources": {"accelerators": ["A800"], "count": 1}}).json()
    done = wait_for_state(alice, job["id"], TERMINAL, timeout_s=60)
    assert done["state"] == "succeeded", done
    charged = Decimal(done["charged"])
    by_voucher = (charged * Decimal("0.5")).quantize(Decimal("0.01"), rounding="ROUND_FLOOR")
    usage = alice.get("/v1/usage").json()
    assert usage["vouchers"] == [{"id": v["id"], "issuer": "Wuhu", "paid": str(by_voucher),
                                  "remaining": str(Decimal("100.00") - by_voucher)}]
    assert usage["vouchers_paid"] == str(by_voucher)
    assert Decimal(usage["spent"]) == charged - by_voucher
    assert Decimal(usage["balance"]) == Decimal("10.00") - charged + by_voucher
    assert usage["ledger_balance"] == usage["balance"] and usage["reserved"] == "0.00"
    mine = alice.get("/v1/vouchers").json()["vouchers"]
    assert [(m["id"], m["paid"]) for m in mine] == [(v["id"], str(by_voucher))]


def test_only_the_admin_issues_and_bad_vouchers_name_their_field(db_url, start_service, http):
    server = start_service(db_url)
    admin = http(server)
    alice = http(server, _tenant(admin, "alice", credits="1.00"))
    assert alice.post("/v1/admin/vouchers", json=_voucher()).status_code == 403
    assert alice.get("/v1/admin/vouchers").status_code == 403
    bad = admin.post("/v1/admin/vouchers", json=_voucher(centers=["nowhere"]))
    assert bad.status_code == 422 and bad.json()["field"] == "centers", bad.text
    both = admin.post("/v1/admin/vouchers", json=_voucher(expires_at=2e9))
    assert both.status_code == 422, both.text
    over = admin.post("/v1/admin/vouchers", json=_voucher(share="1.5"))
    assert over.status_code == 422, over.text
    nobody = admin.post("/v1/admin/vouchers", json=_voucher(tenant="bob"))
    assert nobody.status_code == 404 and nobody.json()["field"] == "tenant", nobody.text
    assert admin.delete("/v1/admin/vouchers/99").status_code == 404


def test_the_cli_issues_lists_and_revokes_a_voucher(db_url, start_service, http):
    server = start_service(db_url)
    admin = http(server)
    alice_token = _tenant(admin, "alice", credits="1.00")
    runner = CliRunner()
    conn = ["--url", server.url, "--token", ADMIN_TOKEN]
    out = runner.invoke(cli, ["admin", "voucher", "issue", "alice", "--share", "0.3",
                              "--cap", "500", "--issuer", "Wuhu", "--days", "90",
                              "--region", "r1", *conn, "--json"])
    assert out.exit_code == 0, out.output
    vid = json.loads(out.output)["id"]
    listed = runner.invoke(cli, ["admin", "voucher", "list", *conn])
    assert listed.exit_code == 0 and "Wuhu" in listed.output and "30%" in listed.output
    mine = runner.invoke(cli, ["vouchers", "--url", server.url, "--token", alice_token,
                               "--json"])
    assert [v["id"] for v in json.loads(mine.output)["vouchers"]] == [vid]
    gone = runner.invoke(cli, ["admin", "voucher", "revoke", str(vid), *conn])
    assert gone.exit_code == 0 and f"voucher {vid} revoked; it had paid 0.00" in gone.output
    again = runner.invoke(cli, ["admin", "voucher", "revoke", str(vid), *conn])
    assert again.exit_code != 0 and "already revoked" in again.output
    mine = runner.invoke(cli, ["vouchers", "--url", server.url, "--token", alice_token])
    assert "revoked" in mine.output


def _lora(run: str | None = None) -> dict:
    import yaml

    from suanli.jobs.spec import load_job  # noqa: F401 - the example is a valid job

    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    job = yaml.safe_load((root / "examples" / "llama2-70b-lora.yaml").read_text())
    job["objective"] = "cost"
    if run is not None:
        job.update(run=run, max_retries=0)
    return job


def test_a_voucher_moves_the_preview_and_the_placement_to_its_center(db_url, start_service,
                                                                     http):
    server = start_service(db_url, backend="local", network="east-west")
    admin = http(server)
    alice = http(server, _tenant(admin, "alice", credits="1000.00"))
    before = alice.post("/v1/plan", json=_lora()).json()
    assert before["chosen"]["center"] == "qingyang", before["chosen"]
    r = admin.post("/v1/admin/vouchers", json=_voucher(share="0.3", centers=["horinger"]))
    assert r.status_code == 201, r.text
    after = alice.post("/v1/plan", json=_lora()).json()
    assert (after["chosen"]["center"], after["chosen"]["pool"]) == ("horinger", "h800")
    assert after["placement_now"]["center"] == "horinger"
    assert any("pays 30% of the price at horinger" in line for line in after["explanation"])
    assert after["chosen"]["cost"] < before["chosen"]["cost"]
    job = alice.post("/v1/jobs", json=_lora(run="sleep 1")).json()
    done = wait_for_state(alice, job["id"], TERMINAL, timeout_s=90)
    assert (done["state"], done["placement"]["center"]) == ("succeeded", "horinger"), done
    usage = alice.get("/v1/usage").json()
    paid = Decimal(usage["vouchers_paid"])
    assert paid == (Decimal(done["charged"]) * Decimal("0.3")).quantize(
        Decimal("0.01"), rounding="ROUND_FLOOR")
    assert usage["ledger_balance"] == usage["balance"] and usage["reserved"] == "0.00"
    assert Decimal(usage["balance"]) == Decimal("1000.00") - Decimal(done["charged"]) + paid

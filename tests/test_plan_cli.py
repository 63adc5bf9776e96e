"""`suanli plan`: the table, --json keys, --explain, and exit code 3 for an infeasible job."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from suanli.cli.main import app

runner = CliRunner()

JOB = {"name": "cli-job", "kind": "train", "model": "llama-3-8b", "work": {"tokens": 2e9},
       "resources": {"count": 8}}


def _job(tmp_path, **over):
    f = tmp_path / "job.yaml"
    f.write_text(yaml.safe_dump({**JOB, **over}))
    return str(f)


def test_plan_json_has_the_documented_keys(tmp_path):
    res = runner.invoke(app, ["plan", _job(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {"options", "infeasible", "explanation", "pareto", "chosen"} <= set(data)
    option = data["options"][0]
    assert {"center", "accelerator", "count", "transfer_s", "wait_s", "run_s", "finish_s",
            "cost", "energy_kwh", "pareto", "chosen", "pool", "heterogeneous", "split",
            "parallelism", "carbon_kg"} <= set(option)
    assert sum(o["chosen"] for o in data["options"]) == 1
    assert data["options"][0]["chosen"] and data["infeasible"] == []
    assert data["options"][0]["parallelism"]["dp"] >= 1


def test_plan_infeasible_exits_3_with_the_reason(tmp_path):
    res = runner.invoke(app, ["plan", _job(tmp_path), "--deadline", "1m"])
    assert res.exit_code == 3
    assert "deadline" in res.output and "short of the fastest option" in res.output
    res = runner.invoke(app, ["plan", _job(tmp_path), "--deadline", "60", "--json"])
    assert res.exit_code == 3
    data = json.loads(res.stdout)
    assert data["options"] == [] and data["infeasible"][0].startswith("deadline:")


def test_plan_table_explain_and_blocked(tmp_path):
    res = runner.invoke(app, ["plan", _job(tmp_path), "--explain", "--top", "5",
                              "--objective", "time"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "Pareto front" in res.output and "Chosen:" in res.output
    assert "Performance model" in res.output
    first = json.loads(runner.invoke(app, ["plan", _job(tmp_path), "--json"]).stdout)
    center = first["chosen"]["center"]
    res = runner.invoke(app, ["plan", _job(tmp_path), "--json", "--blocked", center])
    assert json.loads(res.stdout)["chosen"]["center"] != center


def test_plan_accepts_human_durations_budget_and_a_network_file(tmp_path):
    net = {"name": "tiny", "currency": "USD", "centers": [
        {"id": "dc", "name": "dc", "region": "r", "lat": 0, "lon": 0,
         "electricity_price_per_kwh": 0.1,
         "pools": [{"id": "p", "accelerator": "H100", "nodes": 1,
                    "price_per_chip_hour": 2.0}]}]}
    nf = tmp_path / "net.yaml"
    nf.write_text(yaml.safe_dump(net))
    res = runner.invoke(app, ["plan", _job(tmp_path), "--network", str(nf), "--deadline", "2d",
                              "--budget", "5,000"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "USD" in res.output
    res = runner.invoke(app, ["plan", _job(tmp_path), "--deadline", "soon"])
    assert res.exit_code == 2 and "deadline" in res.output


def test_plan_mix_objective_takes_weights(tmp_path):
    res = runner.invoke(app, ["plan", _job(tmp_path), "--objective", "mix", "--weights",
                              "time=0.8,cost=0.2", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["weights"] == {"time": 0.8, "cost": 0.2}
    res = runner.invoke(app, ["plan", _job(tmp_path), "--objective", "fast"])
    assert res.exit_code == 2


def test_plan_lists_each_pools_best_count_unless_asked_for_the_count_trade_off():
    example = str(Path(__file__).resolve().parents[1] / "examples" / "plan-data-gravity.yaml")
    distinct = json.loads(runner.invoke(app, ["plan", example, "--json", "--top", "8"]).stdout)
    pools = [(o["center"], o["pool"]) for o in distinct["options"]]
    assert len(pools) == 8 and len(set(pools)) == 8 and distinct["distinct_placements"]
    assert distinct["options"][0]["chosen"]
    counts = json.loads(runner.invoke(app, ["plan", example, "--json", "--top", "8",
                                            "--counts"]).stdout)
    pools = [(o["center"], o["pool"]) for o in counts["options"]]
    assert len(set(pools)) < len(pools)  # several counts of one pool: the trade-off
    assert counts["options"][0] == distinct["options"][0]
    table = runner.invoke(app, ["plan", example]).stdout
    assert "best chip count per" in table

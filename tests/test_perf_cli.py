"""`suanli estimate / compare / calibrate`: JSON keys, human output, errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from suanli.cli.main import app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_estimate_json_has_the_contract_keys():
    res = _run("estimate", EXAMPLES / "llama2-70b-lora.yaml", "--accelerator", "H100",
               "--count", "8", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    for key in ("duration_s", "tokens_per_s", "fits", "memory_per_chip_gb", "bound", "mfu",
                "parallelism", "energy_kwh"):
        assert key in data
    assert data["fits"] is True and data["parallelism"]["tp"] >= 1


def test_estimate_human_output_explains_itself_and_defaults_count_to_job_minimum():
    res = _run("estimate", EXAMPLES / "llama2-70b-lora.yaml", "-a", "H800")
    assert res.exit_code == 0, res.output
    assert "8 x H800" in res.output and "Binding bound" in res.output and "MFU" in res.output


def test_example_job_files_estimate_for_every_kind():
    for name in ("llama3-8b-pretrain.yaml", "llama2-70b-lora.yaml", "llama3-70b-serving.yaml",
                 "qwen2-7b-batch.yaml", "resnet-generic.yaml"):
        res = _run("estimate", EXAMPLES / name, "-a", "H100", "--json")
        assert res.exit_code == 0, (name, res.output)
        assert json.loads(res.stdout)["fits"] is True


def test_estimate_that_does_not_fit_here_says_where_it_would(tmp_path):
    res = _run("estimate", EXAMPLES / "llama2-70b-lora.yaml", "-a", "H100", "-n", "1",
               "--json")
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert data["fits"] is False and data["reason"] and data["fits_from_count"] > 1


def test_compare_json_gives_equivalence_with_reasons():
    res = _run("compare", EXAMPLES / "llama2-70b-lora.yaml", "--accelerators",
               "H100,H800,910B", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["baseline"] == "H100" and len(data["estimates"]) == 3
    eq = {e["accelerator"]: e for e in data["equivalents"]}
    assert eq["H100"]["count"] == 8
    assert eq["910B"]["count"] > 8 and "910B" in eq["910B"]["reason"]
    human = _run("compare", EXAMPLES / "llama2-70b-lora.yaml", "-a", "H100,H800")
    assert human.exit_code == 0 and "~ 8 x H100" in human.output


def test_calibrate_writes_a_file_that_estimate_accepts(tmp_path):
    meas = tmp_path / "m.yaml"
    meas.write_text(yaml.safe_dump({"measurements": [
        {"model": "llama-3-8b", "kind": "train", "accelerator": "H100", "count": 8,
         "tokens_per_s": 50000},
    ]}))
    out = tmp_path / "cal.yaml"
    res = _run("calibrate", meas, "--out", out, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["fit"]["rms_log_error_after"] < data["fit"]["rms_log_error_before"]
    job = tmp_path / "j.yaml"
    job.write_text(yaml.safe_dump({"name": "j", "kind": "train", "model": "llama-3-8b",
                                   "work": {"tokens": 1e9}}))
    res = _run("estimate", job, "-a", "H100", "-n", "8", "--calibration", out, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["tokens_per_s"] < 55000
    human = _run("calibrate", meas)
    assert human.exit_code == 0 and "RMS log error" in human.output


def test_calibrate_accepts_csv(tmp_path):
    meas = tmp_path / "m.csv"
    meas.write_text("model,kind,accelerator,count,tokens_per_s\n"
                    "llama-3-8b,train,A100,8,20000\n")
    res = _run("calibrate", meas, "--json")
    assert res.exit_code == 0, res.output


def test_bad_inputs_print_one_error_line_without_traceback(tmp_path):
    lora = EXAMPLES / "llama2-70b-lora.yaml"
    for args, words in [
        (("estimate", lora, "-a", "H1000"), "unknown accelerator"),
        (("estimate", lora, "-a", "H100", "-n", "0"), "at least 1"),
        (("compare", lora, "-a", "H100,nope"), "unknown accelerator"),
        (("calibrate", tmp_path / "missing.yaml"), "cannot read"),
    ]:
        res = _run(*args)
        assert res.exit_code == 2, (args, res.output)
        assert words in res.output and "Traceback" not in res.output
    huge = tmp_path / "huge.yaml"
    huge.write_text(yaml.safe_dump({
        "name": "huge", "kind": "train", "work": {"tokens": 1e9},
        "model": {"params_b": 5e6, "layers": 8, "hidden": 1024, "heads": 8},
        "resources": {"count": 1}}))
    res = _run("estimate", huge, "-a", "T4")
    assert res.exit_code == 2 and "fits on no count" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"measurements": [{"model": "llama-3-8b",
                                                     "accelerator": "H100",
                                                     "tokens_per_s": -1}]}))
    res = _run("calibrate", bad)
    assert res.exit_code == 2 and "tokens_per_s" in res.output

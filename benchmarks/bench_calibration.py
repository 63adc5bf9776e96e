"""The model's error on every published measurement in suanli/data/calibration.yaml.

Prints JSON: per measurement, the measured and predicted tokens/s per chip (MFU entries are
converted with the model's own FLOPs per token), the relative error, and the median absolute
relative error over all of them. Run: python benchmarks/bench_calibration.py
"""

from __future__ import annotations

import json
import statistics
from importlib import resources

import yaml

from suanli.jobs import parse_job
from suanli.perf import estimate
from suanli.perf.estimate import throughput_at_layout


def load_measurements() -> list[dict]:
    text = resources.files("suanli.data").joinpath("calibration.yaml").read_text("utf-8")
    return yaml.safe_load(text)["measurements"]


def job_of(entry: dict):
    work = {"tokens": 1e11, "seq_len": entry["seq_len"],
            "global_batch_tokens": entry["global_batch_tokens"]}
    return parse_job({"name": entry["id"], "kind": entry.get("kind", "train"),
                      "model": entry["model"], "precision": entry.get("precision", "bf16"),
                      "work": work})


def evaluate(entry: dict) -> dict:
    job, count = job_of(entry), entry["count"]
    if "layout" in entry:
        tps, mfu = throughput_at_layout(job, entry["chip"], count, entry["layout"]["tp"],
                                        entry["layout"]["pp"])
    else:
        est = estimate(job, entry["chip"], count)
        tps, mfu = (est.tokens_per_s, est.mfu) if est.fits else (0.0, 0.0)
    predicted = tps / count
    if "tokens_per_s_per_chip" in entry:
        measured = float(entry["tokens_per_s_per_chip"])
    else:  # an MFU: the model's tokens/s at that MFU
        measured = predicted * entry["mfu"] / mfu if mfu > 0 else float("nan")
    return {"id": entry["id"], "chip": entry["chip"], "count": count,
            "measured_tokens_per_s_per_chip": round(measured, 1),
            "predicted_tokens_per_s_per_chip": round(predicted, 1),
            "relative_error": round(predicted / measured - 1.0, 4),
            "source": entry["source"]}


def main() -> None:
    rows = [evaluate(e) for e in load_measurements()]
    errors = [abs(r["relative_error"]) for r in rows]
    print(json.dumps({"benchmark": "model error on published measurements",
                      "measurements": len(rows),
                      "median_abs_relative_error": round(statistics.median(errors), 4),
                      "max_abs_relative_error": round(max(errors), 4),
                      "rows": rows}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

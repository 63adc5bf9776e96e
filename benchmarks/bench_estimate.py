"""Benchmark: one job over the whole catalog at every count 1..4096 (estimate_grid).

Prints JSON: per job kind, the median wall and CPU milliseconds of several runs (CPU time is
less disturbed by other processes on a shared machine). Run: python benchmarks/bench_estimate.py
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time

import numpy as np

from suanli.catalog import builtin_catalog
from suanli.jobs import parse_job
from suanli.perf import estimate_grid

JOBS = {
    "train_dense_70b": {"kind": "train", "model": "llama-3-70b", "work": {"tokens": 1e12}},
    "train_moe_mixtral": {"kind": "train", "model": "mixtral-8x7b", "work": {"tokens": 1e12}},
    "finetune_lora_70b": {"kind": "finetune", "model": "llama-2-70b",
                          "work": {"tokens": 3e7, "seq_len": 8192, "lora_rank": 16}},
    "inference_serving_70b": {"kind": "inference", "model": "llama-3-70b",
                              "work": {"rate_per_s": 20, "window_s": 3600,
                                       "latency_target_ms": 50}},
    "batch_inference_8b": {"kind": "batch_inference", "model": "llama-3-8b",
                           "work": {"requests": 1e6}},
    "generic": {"kind": "generic", "work": {"reference_accelerator": "A100",
                                            "duration_s": 3600}},
}
RUNS = 7


def main() -> None:
    accs = list(builtin_catalog())
    counts = np.arange(1, 4097)
    results = {}
    for name, spec in JOBS.items():
        job = parse_job({"name": name, **spec})
        estimate_grid(job, accs, counts)  # warm caches
        wall, cpu = [], []
        for _ in range(RUNS):
            w0, c0 = time.perf_counter(), time.process_time()
            grid = estimate_grid(job, accs, counts)
            wall.append(1e3 * (time.perf_counter() - w0))
            cpu.append(1e3 * (time.process_time() - c0))
        results[name] = {"median_wall_ms": round(statistics.median(wall), 1),
                         "median_cpu_ms": round(statistics.median(cpu), 1),
                         "min_wall_ms": round(min(wall), 1),
                         "cells": int(grid.duration_s.size),
                         "fits_fraction": round(float(grid.fits.mean()), 3)}
    print(json.dumps({"benchmark": "estimate_grid over the catalog, counts 1..4096",
                      "accelerators": len(accs), "counts": int(counts.size), "runs": RUNS,
                      "cpus": os.cpu_count(), "python": platform.python_version(),
                      "numpy": np.__version__, "jobs": results}, indent=2))


if __name__ == "__main__":
    main()

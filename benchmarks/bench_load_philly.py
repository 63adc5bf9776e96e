"""Time loading the full Philly trace (82,247 jobs) and print JSON.

Usage: python benchmarks/bench_load_philly.py [PATH] [--repeat N]
PATH defaults to ../shared/data/philly/philly.csv (Philly traces, msr-fiddle/philly-traces, as
processed in the Sia artifact; CC-BY-4.0). The catalog is loaded once before timing, so the
figure is the loader's own cost.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from suanli.catalog import builtin_catalog
from suanli.workloads import load_philly

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "philly" / "philly.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    builtin_catalog()
    times = []
    workload = None
    for _ in range(max(args.repeat, 1)):
        start = time.perf_counter()
        workload = load_philly(args.path)
        times.append(time.perf_counter() - start)
    assert workload is not None
    print(json.dumps({
        "benchmark": "load_philly",
        "path": args.path,
        "jobs": len(workload.jobs),
        "dropped": workload.metadata["dropped_nonpositive_duration"]
        + workload.metadata["dropped_nonpositive_gpus"],
        "repeat": len(times),
        "best_s": round(min(times), 4),
        "median_s": round(statistics.median(times), 4),
        "jobs_per_s": round(len(workload.jobs) / min(times)),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }, indent=2))


if __name__ == "__main__":
    main()

"""Replay the full Philly trace (82,247 jobs) on a 2,000-chip heterogeneous network.

Prints JSON: wall seconds, peak RSS (MB), jobs, policy, and the run's headline metrics.
Usage: python benchmarks/bench_simulate_philly.py [--trace PATH] [--policy NAME] [--limit N]

The trace is Microsoft's Philly (msr-fiddle/philly-traces, CC-BY-4.0) as processed in the Sia
artifact; it is read from ../shared/data/philly/philly.csv unless --trace says otherwise.
Durations are on the trace's reference chip (P100) and scale to each pool by peak TFLOPS.
The network is illustrative: three centers, five chip types, 2,000 chips.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TRACE = REPO.parent / "shared" / "data" / "philly" / "philly.csv"

NETWORK = {
    "name": "bench-2000",
    "illustrative": True,
    "description": "Illustrative 2,000-chip heterogeneous network for the Philly benchmark.",
    "centers": [
        {"id": "beijing", "name": "Beijing", "region": "north", "lat": 39.9, "lon": 116.4,
         "electricity_price_per_kwh": 0.7, "pue": 1.3,
         "pools": [
             {"id": "a100", "accelerator": "A100", "nodes": 32, "price_per_chip_hour": 11.0},
             {"id": "v100", "accelerator": "V100", "nodes": 64, "price_per_chip_hour": 6.0},
         ]},
        {"id": "guiyang", "name": "Guiyang", "region": "southwest", "lat": 26.6, "lon": 106.7,
         "electricity_price_per_kwh": 0.45, "pue": 1.2,
         "pools": [
             {"id": "p100", "accelerator": "P100", "nodes": 64, "price_per_chip_hour": 3.0},
             {"id": "t4", "accelerator": "T4", "nodes": 32, "price_per_chip_hour": 2.0},
         ]},
        {"id": "zhongwei", "name": "Zhongwei", "region": "northwest", "lat": 37.5,
         "lon": 105.2, "electricity_price_per_kwh": 0.4, "pue": 1.2,
         "pools": [
             {"id": "k80", "accelerator": "K80", "nodes": 58, "price_per_chip_hour": 0.8},
         ]},
    ],
}


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 1024.0 / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default=str(DEFAULT_TRACE))
    parser.add_argument("--policy", default="max_min_fairness_perf")
    parser.add_argument("--limit", type=int, default=None, help="only the first N jobs")
    parser.add_argument("--round-s", type=float, default=360.0)
    parser.add_argument("--realloc-interval-s", type=float, default=None)
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiply arrival times (0.25: four times the load)")
    args = parser.parse_args()

    from suanli.engine import Cluster
    from suanli.engine.adapters import engine_jobs_from_workload
    from suanli.network.load import parse_network
    from suanli.sim.runner import simulate
    from suanli.workloads import load_philly, select_jobs

    t0 = time.perf_counter()
    workload = load_philly(args.trace)
    if args.limit:
        workload = select_jobs(workload, 0, args.limit)
    cluster = Cluster.from_network(parse_network(NETWORK, "bench-2000"))
    if args.time_scale != 1.0:
        workload = replace(workload, jobs=tuple(
            replace(j, arrival_s=j.arrival_s * args.time_scale) for j in workload.jobs))
    jobs = engine_jobs_from_workload(workload, cluster)
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = simulate(jobs, cluster, args.policy, round_s=args.round_s,
                      realloc_interval_s=args.realloc_interval_s, record_events=False)
    t_sim = time.perf_counter() - t1
    s = result.summary()
    print(json.dumps({
        "benchmark": "simulate_philly",
        "policy": args.policy,
        "time_scale": args.time_scale,
        "jobs": len(jobs),
        "chips": cluster.total_chips,
        "pools": len(cluster),
        "wall_s": round(t_load + t_sim, 2),
        "load_s": round(t_load, 2),
        "simulate_s": round(t_sim, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rounds": s["rounds"],
        "reallocations": s["reallocations"],
        "succeeded": s["states"]["succeeded"],
        "failed": s["states"]["failed"],
        "avg_jct_s": s["avg_jct_s"],
        "p99_jct_s": s["p99_jct_s"],
        "makespan_s": s["makespan_s"],
        "utilization_total": s["utilization_total"],
    }, indent=2))


if __name__ == "__main__":
    main()

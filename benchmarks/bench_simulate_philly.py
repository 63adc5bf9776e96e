"""Replay the full Philly trace (82,247 jobs) under contention, one policy per subprocess.

Prints one JSON document: the cluster, the load the trace offers it, and per policy wall
seconds, peak RSS, JCT (mean, p50, p99), queueing delay (arrival to first start; and all time
waiting), utilisation, finish-time fairness rho (with its floor), makespan, jobs finished, and
whether queues formed and drained (peak, time-weighted mean, at the last arrival, drain time).

Usage: python benchmarks/bench_simulate_philly.py [--cluster sized|loaded|bench-2000|COUNTS]
       [--policies fifo,max_min_fairness,las,suanli_jct] [--limit N] [--timeout-s S]

Clusters:
- `sized` (default): the 60:40 P100:V100 mix scaled so the offered load is --target-load (0.8
  by default): work (reference-chip seconds, sum of duration x chips) / (arrival span x sum of
  pool chips x the pool's speed on the reference chip). 95 P100 + 64 V100 for the full trace:
  utilisation ~77%, queues form in bursts and drain.
- `loaded`: 60 P100 + 40 V100 chips (single-chip nodes, Gavel-style). The trace offers about
  1.3x what it can do (see `offered_load` in the output): the queue grows for most of the
  trace and drains only weeks after the last arrival.
- `bench-2000`: the illustrative 2,000-chip, three-center network of earlier runs; the trace
  loads it to 1-3% and no queue forms.
- `P100:60,V100:40` style counts.

The trace is Microsoft's Philly (msr-fiddle/philly-traces, CC-BY-4.0) as processed in the Sia
artifact; it is read from ../shared/data/philly/philly.csv unless --trace says otherwise.
Durations are on the trace's reference chip (P100) and scale to each pool by peak TFLOPS.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _contention import (  # noqa: E402
    Replay,
    add_replay_options,
    offered_load,
    replay_main,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TRACE = REPO.parent / "shared" / "data" / "philly" / "philly.csv"
LOADED = {"P100": 60, "V100": 40}

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


def _workload(args: argparse.Namespace):
    from suanli.workloads import load_philly, select_jobs

    workload = load_philly(args.trace)
    if args.limit:
        workload = select_jobs(workload, 0, args.limit)
    if args.time_scale != 1.0:
        workload = replace(workload, jobs=tuple(
            replace(j, arrival_s=j.arrival_s * args.time_scale) for j in workload.jobs))
    return workload


def sized(jobs_on_mix, target_load: float, mix: dict[str, int] = LOADED) -> dict[str, int]:
    """`mix` scaled (up or down) so the trace offers `target_load` of the cluster's rate.

    `jobs_on_mix` are the trace's engine jobs adapted to `mix`: a job's speeds depend on the
    chips, not on how many there are, so the same jobs run on the scaled cluster.
    """
    from suanli.engine import Cluster

    load = offered_load(jobs_on_mix, Cluster.from_counts(mix))["offered_load"]
    scale = (load or 0.0) / target_load
    return {name: max(1, math.ceil(n * scale)) for name, n in mix.items()}


def _cluster(spec: str):
    from suanli.engine import Cluster
    from suanli.network.load import parse_network

    if spec in ("loaded", "sized"):  # sized: the loaded mix, scaled in `build`
        return Cluster.from_counts(LOADED)
    if spec == "bench-2000":
        return Cluster.from_network(parse_network(NETWORK, "bench-2000"))
    return Cluster.parse_counts(spec)


def build(args: argparse.Namespace) -> Replay:
    from suanli.engine import Cluster
    from suanli.engine.adapters import engine_jobs_from_workload

    workload = _workload(args)
    cluster = _cluster(args.cluster)
    jobs = engine_jobs_from_workload(workload, cluster)
    if args.cluster == "sized":
        cluster = Cluster.from_counts(sized(jobs, args.target_load))
    return Replay(jobs, cluster, offered_load(jobs, cluster))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default=str(DEFAULT_TRACE))
    parser.add_argument("--cluster", default="sized",
                        help="loaded | sized | bench-2000 | counts such as P100:60,V100:40")
    parser.add_argument("--target-load", type=float, default=0.8, help="for --cluster sized")
    add_replay_options(parser, "multiply arrival times (0.25: four times the load)")
    args = parser.parse_args()
    replay_main(__file__, args, build, {"benchmark": "simulate_philly", "trace": args.trace,
                                         "cluster": args.cluster})


if __name__ == "__main__":
    main()

"""Replay Alibaba's openb GPU trace on its own cluster, one policy per subprocess.

Prints one JSON document shaped like bench_simulate_philly.py's: the cluster, the load the
trace offers it, and per policy wall seconds, peak RSS, JCT, queueing delay, utilisation,
finish-time fairness rho, makespan, jobs finished and the queue's course.

Usage: python benchmarks/bench_simulate_alibaba.py [--policies fifo,max_min_fairness,...]
       [--limit N] [--time-scale F] [--timeout-s S]

Data: alibaba/clusterdata cluster-trace-gpu-v2023 (Weng et al., USENIX ATC 2023), read from
../shared/data/alibaba/openb_pod_list_default.csv and openb_node_list_gpu_node.csv.

How the trace becomes a replay (see suanli.workloads.openb):
- Cluster: the node list's GPUs, one pool per model (G2, T4, V100, G3, P100, A10 ...; V100M16
  and V100M32 both count as V100), as many chips per node as that model's largest node.
  G1-G3 are anonymised models the catalog lacks: their pools have no price or power.
- Speeds: a pod's duration is wall time on whichever chip it got, and the trace does not say
  which, so every chip runs every pod at its recorded duration (throughput 1 everywhere it is
  allowed; gpu_spec, when set, limits the pools). Scaling by peak TFLOPS would need a
  reference chip the trace does not have, and would leave the G pools (70% of the chips)
  with no speed at all.
- GPU fractions: a pod with gpu_milli < 1000 takes one whole chip (the engine schedules whole
  chips), so utilisation counts its chip as busy; `load.gpu_milli_weighted_chips` says how
  many chips the trace asks for on average when fractions are counted as fractions.
- Arrivals at creation_time; pods never scheduled run for deletion - creation.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
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
DATA = REPO.parent / "shared" / "data" / "alibaba"
DEFAULT_PODS = DATA / "openb_pod_list_default.csv"
DEFAULT_NODES = DATA / "openb_node_list_gpu_node.csv"


def chips_per_node(node_csv: str | Path) -> dict[str, int]:
    """{accelerator id: largest GPU count on one node of that model}."""
    import csv

    from suanli.workloads.openb import openb_accelerator

    most: Counter[str] = Counter()
    with open(node_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            gpus = int(row["gpu"])
            if gpus > 0:
                acc = openb_accelerator(row["model"])
                most[acc] = max(most[acc], gpus)
    return dict(most)


def node_cluster(inventory: dict[str, int], per_node: dict[str, int]):
    """One pool per GPU model, `local/<model>`; catalog chips get their TDP, G1-G3 none."""
    from suanli.catalog import builtin_catalog
    from suanli.engine import Cluster
    from suanli.engine.cluster import PoolInfo

    catalog = builtin_catalog()
    pools = []
    for model, count in inventory.items():
        acc = catalog.find(model)
        pools.append(PoolInfo(
            pool_id=f"local/{model}", accelerator=model, capacity=count,
            chips_per_node=per_node.get(model, 1), price_per_chip_hour=0.0,
            center="local", region="local", tdp_w=acc.tdp_w if acc else 0.0,
        ))
    return Cluster(pools)


def engine_jobs(workload, cluster) -> list:
    """Every pod at its recorded duration on every pool it accepts (see the module doc)."""
    from suanli.engine import EngineJob

    jobs = []
    for tj in workload.jobs:
        allowed = set(tj.allowed_accelerators)
        rates = {p.pool_id: 1.0 for p in cluster.pools
                 if not allowed or p.accelerator in allowed}
        jobs.append(EngineJob(
            job_id=str(tj.job_id), num_chips=tj.num_chips, total_work=float(tj.duration_s),
            throughput=rates, arrival_s=float(tj.arrival_s),
            meta={"trace_id": tj.job_id, "gpu_milli": tj.extra.get("gpu_milli", "1000")},
        ))
    return jobs


def _workload(args: argparse.Namespace):
    from suanli.workloads import load_openb, select_jobs

    workload = load_openb(args.pods, args.nodes)
    if args.limit:
        workload = select_jobs(workload, 0, args.limit)
    if args.time_scale != 1.0:
        workload = replace(workload, jobs=tuple(
            replace(j, arrival_s=j.arrival_s * args.time_scale) for j in workload.jobs))
    return workload


def gpu_milli_chips(workload, span_s: float) -> float | None:
    """Average chips the trace asks for, a fractional pod counting gpu_milli / 1000."""
    if span_s <= 0:
        return None
    used = sum(j.duration_s * (j.num_chips if j.num_chips > 1 else
                               int(j.extra.get("gpu_milli", "1000")) / 1000.0)
               for j in workload.jobs)
    return used / span_s


def build(args: argparse.Namespace) -> Replay:
    workload = _workload(args)
    cluster = node_cluster(workload.metadata["cluster"], chips_per_node(args.nodes))
    jobs = engine_jobs(workload, cluster)
    load = offered_load(jobs, cluster)
    load["gpu_milli_weighted_chips"] = gpu_milli_chips(workload, load["span_s"])
    load["fractional_gpu_pods"] = sum(1 for j in workload.jobs
                                      if j.extra.get("gpu_milli", "1000") != "1000")
    return Replay(jobs, cluster, load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", default=str(DEFAULT_PODS))
    parser.add_argument("--nodes", default=str(DEFAULT_NODES))
    add_replay_options(parser, "multiply arrival times (0.01: a hundred times the load)")
    args = parser.parse_args()
    replay_main(__file__, args, build, {"benchmark": "simulate_alibaba", "trace": args.pods})


if __name__ == "__main__":
    main()

"""Elastic vs fixed-count scheduling: average / p99 JCT, makespan and resizes on the same jobs.

Prints one JSON document. Two workloads whose jobs allow a count range (`make_elastic`):
- gavel: Gavel's generator (Poisson arrivals, Gavel's job mix and run times) on Gavel's
  V100/P100/K80 cluster, jobs allowed 1..8 GPUs (the counts Gavel's table measures), speeds
  from the measured table at each count;
- philly: a window of the Philly trace on a loaded P100/V100/K80 cluster, each job allowed
  [n/2, 2n] chips, speeds from the Amdahl curve of `engine/adapters.py` (s = 0.05).
Every policy replays the same jobs, with the same checkpoint/restore cost (`--restore-s`, paid
by every preemption, migration and resize), outside Gavel mode (Gavel's simulator charges no
restore). The fixed-count policies (max_min_fairness_perf, suanli_jct, fifo) run each job on
the count its trace gives it; elastic_jct chooses counts and chips together.

Usage: python benchmarks/bench_elastic.py [--jobs N] [--rate JOBS_PER_HOUR] [--philly N]
(defaults: 300 Gavel jobs at 6/h on v100:36,p100:36,k80:36; Philly jobs 5000-5999 on
v100:8,p100:8,k80:8; restore 120 s)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
GAVEL_TABLE = DATA / "gavel" / "simulation_throughputs.json"
PHILLY = DATA / "philly" / "philly.csv"
FIXED = ("max_min_fairness_perf", "suanli_jct", "fifo")
ELASTIC = "elastic_jct"


def run(jobs, cluster, policy: str) -> dict:
    from suanli.sim.runner import simulate

    t0 = time.perf_counter()
    result = simulate(jobs, cluster, policy, record_events=False)
    s = result.summary()
    return {"avg_jct_h": _h(s["avg_jct_s"]), "p99_jct_h": _h(s["p99_jct_s"]),
            "makespan_h": _h(s["makespan_s"]), "succeeded": s["states"]["succeeded"],
            "utilization": round(s["utilization_total"], 3), "resizes": s["resizes"],
            "preemptions": s["preemptions"], "wall_s": round(time.perf_counter() - t0, 1)}


def _h(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600.0, 3)


def compare(name: str, workloads: tuple, cluster_text: str, restore_s: float) -> dict:
    """Every policy on the fixed jobs, elastic_jct on the same jobs made elastic."""
    from suanli.engine import Cluster
    from suanli.engine.adapters import engine_jobs_from_workload

    cluster = Cluster.parse_counts(cluster_text)
    fixed, elastic = (replace(w, jobs=tuple(replace(j, restore_s=restore_s) for j in w.jobs))
                      for w in workloads)
    fixed_jobs = engine_jobs_from_workload(fixed, cluster)
    elastic_jobs = engine_jobs_from_workload(elastic, cluster)
    results = {p: run(fixed_jobs, cluster, p) for p in FIXED}
    results[ELASTIC] = run(elastic_jobs, cluster, ELASTIC)
    best_fixed = min(FIXED, key=lambda p: results[p]["avg_jct_h"] or float("inf"))
    gain = results[best_fixed]["avg_jct_h"] / results[ELASTIC]["avg_jct_h"]
    return {"workload": name, "cluster": cluster_text, "jobs": len(fixed_jobs),
            "elastic_jobs": sum(j.elastic is not None for j in elastic_jobs),
            "restore_s": restore_s, "policies": results, "best_fixed": best_fixed,
            "avg_jct_speedup_vs_best_fixed": round(gain, 3)}


def gavel_workload(n_jobs: int, jobs_per_hour: float, seed: int):
    from suanli.workloads import generate_poisson, load_gavel_throughputs, make_elastic

    table = load_gavel_throughputs(GAVEL_TABLE)
    wl = generate_poisson(n_jobs, rate_per_s=jobs_per_hour / 3600.0, seed=seed,
                          throughputs=table)
    return wl, make_elastic(wl, gavel_range=True)


def philly_workload(n_jobs: int, start: int):
    from suanli.workloads import load_workload, make_elastic, select_jobs

    wl = load_workload(PHILLY, "philly", reference_accelerator="P100")
    wl = select_jobs(wl, start, start + n_jobs, rebase=True)
    return wl, make_elastic(wl, min_factor=0.5, max_factor=2.0, max_count=32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300, help="Gavel-style jobs")
    parser.add_argument("--rate", type=float, default=6.0, help="arrivals per hour (Gavel)")
    parser.add_argument("--cluster", default="v100:36,p100:36,k80:36")
    parser.add_argument("--philly", type=int, default=1000, help="Philly jobs (0: skip)")
    parser.add_argument("--philly-start", type=int, default=5000)
    parser.add_argument("--philly-cluster", default="v100:8,p100:8,k80:8")
    parser.add_argument("--restore-s", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = {"benchmark": "elastic", "command": "python benchmarks/bench_elastic.py "
           f"--jobs {args.jobs} --rate {args.rate} --philly {args.philly}", "runs": []}
    out["runs"].append(compare(f"gavel-poisson(n={args.jobs}, {args.rate}/h, 1..8 GPUs)",
                               gavel_workload(args.jobs, args.rate, args.seed), args.cluster,
                               args.restore_s))
    if args.philly > 0:
        out["runs"].append(compare(f"philly[{args.philly_start}:+{args.philly}] (n/2..2n)",
                                   philly_workload(args.philly, args.philly_start),
                                   args.philly_cluster, args.restore_s))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

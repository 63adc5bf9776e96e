"""Replay Gavel's 1,500-job single-GPU case under max_min_fairness_perf in Gavel mode.

Prints JSON: wall seconds (median of --repeats after one warm-up), jobs, avg JCT and makespan
(hours), rounds, reallocations, and the speed-up over Gavel's own simulator on the same case.
Usage: python benchmarks/bench_gavel_1500.py [--lam-s 1200] [--repeats 3] [--jobs 1500]
       [--gavel-s SECONDS]

Gavel's time. The issue that asked for this benchmark quotes 55 s, measured on another
machine. `benchmarks/gavel_reference.py` runs Gavel's own simulator (stanford-futuredata/gavel
c4fa400, unmodified; cvxpy 1.9.3 with ECOS 2.0.14, numpy 2.4.6, Python 3.11) on this exact case
(1,500 generated single-GPU jobs, lam 1200 s, seed 0, 36:36:36): on the project's 2-core
development machine it took 29.3 s wall (29.3-30.6 s over three runs; avg JCT 14.45 h,
makespan 642.7 h). That same-machine figure is the default reference; run the script on your
machine and pass --gavel-s to compare there. The development machine is a shared VM whose
speed varies from day to day: on another day the same Gavel run took 60.7-69.9 s (it also
needs `matrix_completion` installed) and this benchmark 2.8-4.1 s, 20x; the default keeps the
faster day's figure, so the speed-up it prints is the lower bound.

Jobs come from Gavel's generator (`generate_poisson(..., multi_gpu=False)`: every job one GPU)
with the measured throughputs in ../shared/data/gavel/simulation_throughputs.json; the cluster
is Gavel's 36 V100 + 36 P100 + 36 K80. The shared Gavel traces use a mean gap of 1200 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_THROUGHPUTS = REPO.parent / "shared" / "data" / "gavel" / "simulation_throughputs.json"
GAVEL_REFERENCE_S = 29.3  # Gavel's simulator on this case, same machine (see the docstring)
GAVEL_ISSUE_S = 55.0  # the figure the issue quotes, from another machine
GAVEL_AVG_JCT_H = 14.45  # what Gavel's run printed, for the fidelity column
GAVEL_MAKESPAN_H = 642.7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throughputs", default=str(DEFAULT_THROUGHPUTS))
    parser.add_argument("--jobs", type=int, default=1500)
    parser.add_argument("--lam-s", type=float, default=1200.0, help="mean inter-arrival (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", default="max_min_fairness_perf")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gavel-s", type=float, default=GAVEL_REFERENCE_S,
                        help="Gavel's wall time on this machine (benchmarks/gavel_reference.py)")
    args = parser.parse_args()

    from suanli.engine import Cluster
    from suanli.engine.adapters import engine_jobs_from_workload
    from suanli.sim.runner import simulate
    from suanli.workloads import generate_poisson, load_gavel_throughputs

    table = load_gavel_throughputs(Path(args.throughputs))
    workload = generate_poisson(args.jobs, lam_s=args.lam_s, seed=args.seed, throughputs=table,
                                multi_gpu=False)
    cluster = Cluster.from_counts({"V100": 36, "P100": 36, "K80": 36})
    jobs = engine_jobs_from_workload(workload, cluster)

    def once():
        t0 = time.perf_counter()
        result = simulate(jobs, cluster, args.policy, gavel_mode=True, seed=args.seed,
                          record_events=False)
        return time.perf_counter() - t0, result

    once()  # warm-up: imports, solver start
    walls = []
    result = None
    for _ in range(max(1, args.repeats)):
        wall, result = once()
        walls.append(wall)
    assert result is not None
    summary = result.summary()
    wall_s = statistics.median(walls)
    print(json.dumps({
        "benchmark": "gavel_1500",
        "policy": args.policy,
        "jobs": len(jobs),
        "lam_s": args.lam_s,
        "wall_s": round(wall_s, 3),
        "walls_s": [round(w, 3) for w in walls],
        "avg_jct_h": summary["avg_jct_s"] / 3600.0,
        "makespan_h": summary["makespan_s"] / 3600.0,
        "rounds": result.rounds,
        "reallocations": result.reallocations,
        "gavel_reference_s": args.gavel_s,
        "speedup_vs_gavel": round(args.gavel_s / wall_s, 1),
        "gavel_issue_reference_s": GAVEL_ISSUE_S,
        "speedup_vs_issue_figure": round(GAVEL_ISSUE_S / wall_s, 1),
        "gavel_avg_jct_h": GAVEL_AVG_JCT_H,
        "gavel_makespan_h": GAVEL_MAKESPAN_H,
    }, indent=2))


if __name__ == "__main__":
    main()

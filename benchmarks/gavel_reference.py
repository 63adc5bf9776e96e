"""Time Gavel's own simulator on the 1,500-job case of `bench_gavel_1500.py`, on this machine.

Not part of the test suite and not run by CI: it needs a checkout of Gavel
(github.com/stanford-futuredata/gavel, commit c4fa400 measured) with its RPC stubs built
(`make rpc_stubs` in scheduler/) and a virtual environment with what its simulator imports
(numpy, scipy, cvxpy with ECOS, scikit-learn, grpcio, grpcio-tools, protobuf, psutil,
matrix_completion).

Usage (with that environment's Python):
    python benchmarks/gavel_reference.py --gavel /path/to/gavel \\
        --throughputs ../shared/data/gavel/simulation_throughputs.json

Gavel's driver `simulate_scheduler_with_generated_jobs.py` runs until a window of job ids
completes and keeps generating jobs past it; this calls the same `Scheduler.simulate` with the
driver's defaults but a fixed job count (`num_total_jobs`, a mode Gavel's scheduler has), so
exactly the 1,500 jobs of the case are generated. Prints one JSON document: wall seconds of
the simulation, Gavel's average JCT and makespan (hours), jobs completed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gavel", required=True, help="Gavel checkout (holds scheduler/)")
    parser.add_argument("--throughputs", required=True)
    parser.add_argument("--jobs", type=int, default=1500)
    parser.add_argument("--lam-s", type=float, default=1200.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", default="max_min_fairness_perf")
    parser.add_argument("--cluster", default="36:36:36", help="V100:P100:K80")
    parser.add_argument("--round-s", type=int, default=360)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(args.gavel) / "scheduler"))
    import scheduler  # Gavel's
    import utils  # Gavel's

    v100, p100, k80 = (int(n) for n in args.cluster.split(":"))
    t0 = time.perf_counter()
    policy = utils.get_policy(args.policy, solver="ECOS", seed=args.seed)
    sched = scheduler.Scheduler(
        policy, throughputs_file=args.throughputs, seed=args.seed,
        time_per_iteration=args.round_s, simulate=True, profiling_percentage=1.0,
        per_instance_type_prices_dir=None, available_clouds=["aws", "gcp", "azure"],
        assign_SLOs=False, enable_global_queue=False)
    sched.simulate(
        {"v100": v100, "p100": p100, "k80": k80}, lam=args.lam_s, jobs_to_complete=None,
        fixed_job_duration=None, generate_multi_gpu_jobs=False,
        generate_multi_priority_jobs=False, simulate_steady_state=False,
        num_total_jobs=args.jobs, debug=False, checkpoint_threshold=None,
        checkpoint_file=None, num_gpus_per_server={"v100": 1, "p100": 1, "k80": 1},
        output_trace_file_name=None)
    wall_s = time.perf_counter() - t0
    jct_s = sched.get_average_jct(None, verbose=False)
    print(json.dumps({
        "benchmark": "gavel_reference",
        "policy": args.policy,
        "jobs_completed": len(sched._job_completion_times),
        "wall_s": round(wall_s, 2),
        "avg_jct_h": jct_s / 3600.0,
        "makespan_h": sched.get_current_timestamp() / 3600.0,
    }, indent=2))
    sched.shutdown()


if __name__ == "__main__":
    main()

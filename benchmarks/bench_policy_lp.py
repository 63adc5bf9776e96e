"""Policy speed: median ms per allocation, printed as JSON.

Cases (synthetic states from suanli.policies._synthetic, seeded):
- `realistic`: 10,000 active jobs x 100 pools. Jobs come from 26 job types (Gavel's table has
  26 models) x 4 gang sizes (1/2/4/8) x 2 priorities, so at most 208 distinct classes; pools
  hold 8 accelerator kinds, a job's throughput depending on the kind.
- `per_call`: every registered policy on 300 active jobs x 20 pools (the engine's common case).
- `worst_case`: all-distinct throughput rows and pool columns (no grouping possible) for the
  max-min LP at growing sizes, to show where the class trick stops helping.

Run: python benchmarks/bench_policy_lp.py [--repeat N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from suanli.policies import get_policy, policy_names
from suanli.policies._lp import max_min
from suanli.policies._synthetic import random_state
from suanli.policies.max_min_fairness import normalised_coefficients


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="skip the slow worst cases")
    args = parser.parse_args()
    out: dict[str, object] = {}

    state = random_state(0, 10_000, 100)
    coef = normalised_coefficients(state, state.throughput)
    info = max_min(coef, state.num_chips, state.capacity)
    realistic = {
        "jobs": 10_000,
        "pools": 100,
        "job_classes": info.n_classes,
        "pool_groups": info.n_pool_groups,
        "median_ms": {},
    }
    for name in ("max_min_fairness_perf", "max_min_fairness", "max_throughput_per_cost",
                 "fifo_perf", "srtf_perf", "suanli_jct"):
        realistic["median_ms"][name] = median_ms(lambda n=name: get_policy(n)(state), args.repeat)
    out["realistic"] = realistic

    small = random_state(1, 300, 20)
    out["per_call"] = {
        "jobs": 300,
        "pools": 20,
        "median_ms": {n: median_ms(lambda n=n: get_policy(n)(small), args.repeat)
                      for n in policy_names()},
    }

    worst = []
    sizes = [(300, 100), (1000, 100)] if args.quick else [(300, 100), (1000, 100), (2000, 100)]
    for n_jobs, n_pools in sizes:
        s = random_state(2, n_jobs, n_pools, n_job_types=None)
        fn = get_policy("max_min_fairness_perf")
        worst.append({"jobs": n_jobs, "pools": n_pools,
                      "median_ms": median_ms(lambda s=s, fn=fn: fn(s), max(1, args.repeat // 3))})
    out["worst_case_all_distinct"] = worst
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

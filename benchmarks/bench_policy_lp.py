"""Policy speed: median ms per allocation, printed as JSON.

Cases (synthetic states from suanli.policies._synthetic, seeded):
- `realistic`: 10,000 active jobs x 100 pools. Jobs come from 26 job types (Gavel's table has
  26 models) x 4 gang sizes (1/2/4/8) x 2 priorities, so at most 208 distinct classes; pools
  hold 8 accelerator kinds, a job's throughput depending on the kind.
- `per_call`: every registered policy on 300 active jobs x 20 pools (the engine's common case).
- `worst_case`: all-distinct throughput rows and pool columns (no grouping possible) for the
  max-min LP at growing sizes, to show where the class trick stops helping.
- `distinct_1k`, `distinct_3k`, `distinct_10k`: one max-min allocation (max_min_fairness_perf's
  coefficients) for 1,000 / 3,000 / 10,000 all-distinct jobs x 100 pools through
  `_pop.solve_max_min` (POP, k parts), with wall and CPU ms, and its minimum utility against a
  reference: the full LP's optimum (HiGHS primal simplex; dual simplex stalls on these
  degenerate LPs) where it is cheap, else a dual upper bound (prices from the LP of a random
  job sample, `_pop.max_min_upper_bound`; any prices give a valid bound, so the reported gap is
  an upper bound on the true gap), and without --quick the full LP by interior point.

Run: python benchmarks/bench_policy_lp.py [--repeat N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from suanli.policies import _pop, get_policy, policy_names
from suanli.policies._lp import max_min, utility
from suanli.policies._matrices import aware_throughput
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


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall_ms, cpu_ms = (time.perf_counter() - w0) * 1e3, (time.process_time() - c0) * 1e3
    return out, round(wall_ms, 1), round(cpu_ms, 1)


def reference(coef, chips, cap, method: str) -> dict[str, object]:
    """The full LP's optimum (`exact`, `ipm`) or a dual upper bound (`bound`) on it."""
    if method == "bound":
        sample = np.random.default_rng(1).choice(coef.shape[0], 1000, replace=False)
        share = cap * sample.size / coef.shape[0]
        (_, y, z), wall, _ = timed(lambda: _pop.max_min_duals(
            coef[sample], chips[sample], share, options={"solver": "ipm", "run_crossover": "off"}))
        n = coef.shape[0]
        value = min(_pop.max_min_upper_bound(coef, chips, cap, y, np.full(n, lam * np.median(z)))
                    for lam in (0.0, 0.5, 1.0, 2.0))  # every choice is a valid bound
        return {"value": value,
                "how": "dual upper bound, prices of a 1,000-job sample LP (interior point)",
                "wall_ms": wall}
    options = ({"simplex_strategy": 4} if method == "exact"
               else {"solver": "ipm", "run_crossover": "off", "time_limit": 300.0})
    (t, y, z), wall, _ = timed(lambda: _pop.max_min_duals(coef, chips, cap, options=options))
    how = ("full LP, HiGHS primal simplex" if method == "exact"
           else "full LP, HiGHS interior point without crossover")
    return {"value": t, "how": how, "wall_ms": wall,
            "dual_bound": _pop.max_min_upper_bound(coef, chips, cap, y, z)}


def distinct_case(n_jobs: int, n_pools: int, method: str, repeat: int) -> dict[str, object]:
    s = random_state(2, n_jobs, n_pools, n_job_types=None)
    coef = normalised_coefficients(s, aware_throughput(s))
    chips, cap = s.num_chips, s.capacity
    runs = [timed(lambda: _pop.solve_max_min(coef, chips, cap)) for _ in range(repeat + 1)][1:]
    sol = runs[0][0]
    ref = reference(coef, chips, cap, method)
    return {
        "jobs": n_jobs, "pools": n_pools, "parts_k": sol.n_parts,
        "pop_wall_ms": statistics.median(r[1] for r in runs),
        "pop_cpu_ms": statistics.median(r[2] for r in runs),
        "pop_min_utility": sol.value,
        "pop_total_utility": float(utility(coef, sol.fractions).sum()),
        "reference": ref,
        "relative_gap": (ref["value"] - sol.value) / ref["value"],
    }


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

    rep = 3 if args.quick else args.repeat
    out["distinct_1k"] = distinct_case(1_000, 100, "exact", rep)
    out["distinct_3k"] = distinct_case(3_000, 100, "exact", rep)
    out["distinct_10k"] = distinct_case(10_000, 100, "bound" if args.quick else "ipm", rep)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""Planner speed: one job over east-west (target < 20 ms) and over a generated network of
1,000 centers and 5,000 pools (target < 1 s). Prints JSON with median milliseconds.

`plan_ms` is plan() itself: every placement scored, the chosen one, the Pareto front and the
explanation; the option objects of a long list are built when first read, timed separately as
`list_all_options_ms`. `plan_cold_ms` clears the performance model's cached count-independent
tables (suanli.perf.search.clear_caches) before every call.

    python benchmarks/bench_plan.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from suanli.jobs.spec import parse_job
from suanli.network import load_network
from suanli.network.generate import generate_network
from suanli.perf.search import clear_caches
from suanli.plan import NetworkState, PoolState, RunningJob, plan

EAST_WEST_JOBS = {
    "finetune-70b-lora-8": {
        "name": "ft", "kind": "finetune", "model": "llama-2-70b",
        "work": {"tokens": 3e7, "seq_len": 8192, "lora_rank": 16},
        "resources": {"accelerators": ["H100", "H800", "910B"], "count": 8},
        "dataset": {"name": "govreport"},
    },
    "train-70b-8..512-any-chip": {
        "name": "train", "kind": "train", "model": "llama-3-70b", "work": {"tokens": 5e10},
        "resources": {"count": {"min": 8, "max": 512}}, "dataset": {"name": "wudao-corpus"},
    },
}
GENERATED_JOB = {
    "name": "gen", "kind": "train", "model": "llama-3-70b", "work": {"tokens": 2e10},
    "resources": {"count": {"min": 8, "max": 256}}, "dataset": {"name": "dataset-3"},
}


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm caches (routes, network arrays)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    out: dict[str, object] = {"repeat": args.repeat}

    east_west = load_network("east-west")
    for name, data in EAST_WEST_JOBS.items():
        job = parse_job(data)
        result = plan(job, east_west)
        out[f"east_west/{name}"] = {
            "plan_ms": _median_ms(lambda job=job: plan(job, east_west), args.repeat),
            "plan_cold_ms": _median_ms(lambda job=job: (clear_caches(), plan(job, east_west)),
                                       args.repeat),
            "options": result.total_options,
        }

    t = time.perf_counter()
    net = generate_network(1000, 5000, seed=0)
    gen_ms = (time.perf_counter() - t) * 1000
    job = parse_job(GENERATED_JOB)
    result = plan(job, net)

    def plan_and_list() -> None:
        len(plan(job, net).options)

    rng = random.Random(0)
    busy = {}
    for c, p in net.pools():
        if rng.random() < 0.3:
            chips = p.chips
            busy[f"{c.id}/{p.id}"] = PoolState(
                free_chips=rng.randrange(0, chips),
                running=tuple(RunningJob(max(1, chips // 4), rng.uniform(600, 36000))
                              for _ in range(4)),
                queued_chip_s=rng.uniform(0, 3600) * chips)
    state = NetworkState(busy)

    out["generated_1000c_5000p"] = {
        "generate_ms": round(gen_ms, 1),
        "plan_ms": _median_ms(lambda: plan(job, net), args.repeat),
        "plan_top20_ms": _median_ms(lambda: plan(job, net, top=20), args.repeat),
        "plan_with_30pct_pools_busy_ms": _median_ms(lambda: plan(job, net, state),
                                                    args.repeat),
        "list_all_options_ms": _median_ms(plan_and_list, max(3, args.repeat // 2)),
        "options": result.total_options,
        "pareto": len(result.pareto),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

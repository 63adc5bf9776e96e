"""Data gravity on east-west: a dataset-heavy workload under a data-blind placement and under
the broker's.

Prints JSON: for each placement, average JCT, total cost (chips + egress), egress cost, TB
moved, staging time and wall seconds. Usage:
    python benchmarks/bench_data_gravity.py [--jobs N] [--seed S] [--policy NAME]

The workload is synthetic and seeded: fine-tuning and training jobs (Llama-3-8B, Qwen2-7B) of
8 to 32 chips, arriving about every 20 minutes, each reading one of the network's eastern
datasets (wudao-corpus 5 TB, medical-imaging 8 TB, code-corpus 1.5 TB, govreport). East-west is
built so: datasets in the east, cheap chips in the west, thin priced trunks between.

- data-blind: the cheapest chips for the run (chip-hours x price), as if data were free to
  move; the job still stages its data there and pays the egress.
- broker: the planner (`suanli.plan.plan`) on the live state per placement: transfer time,
  egress and the chips' price together, under each job's objective (cost).
Both share the engine, the policy (FIFO), the staging model and the jobs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time

DATASETS = ("wudao-corpus", "medical-imaging", "code-corpus", "govreport")
MODELS = ("llama-3-8b", "qwen2-7b")


def workload(n: int, seed: int):
    from suanli.jobs.spec import parse_job

    rng = random.Random(seed)
    t = 0.0
    jobs = []
    for k in range(n):
        t += rng.expovariate(1 / 1200.0)
        kind = rng.choice(("finetune", "train"))
        spec = parse_job({
            "name": f"job-{k}", "kind": kind, "model": rng.choice(MODELS),
            "work": {"tokens": float(rng.choice((2e8, 5e8, 1e9, 2e9)))},
            "resources": {"accelerators": ["H100", "H800", "A800", "A100", "910B", "H20"],
                          "count": rng.choice((8, 16, 32))},
            "dataset": {"name": rng.choice(DATASETS)},
            "objective": "cost",
        }, source=f"job {k}")
        jobs.append((spec, t))
    return jobs


class DataBlind:
    """Rank by the run's chip cost only: the broker's formula with data left out."""

    def choose(self, job, view, cluster):
        import numpy as np

        from suanli.engine.placement import Choice

        ok = view.allowed & (view.throughput > 0)
        if not ok.any():
            return Choice(-1)
        idx = np.flatnonzero(ok)
        run_s = view.remaining_work / view.throughput[idx]
        cost = job.num_chips * view.price_per_chip_hour[idx] * run_s / 3600.0
        k = int(np.lexsort((idx, run_s, cost))[0])
        return Choice(int(idx[k]), float(cost[k]), float(run_s[k]))


def run(placement, specs, policy: str) -> dict:
    from suanli.engine import Cluster, Engine, SimClock, engine_job_from_spec
    from suanli.network import load_network
    from suanli.sim.runner import SimBackend

    network = load_network("east-west")
    cluster = Cluster.from_network(network)
    jobs = [engine_job_from_spec(spec.name, spec, cluster, t) for spec, t in specs]
    if not isinstance(placement, str):
        jobs = [dataclasses.replace(j, spec=None, objective="cost") for j in jobs]
    t0 = time.perf_counter()
    engine = Engine(cluster, policy, SimClock(0.0), SimBackend(seed=0), round_s=360.0,
                    placement=placement, record_timeline=False)
    for job in jobs:
        engine.submit(job)
    result = engine.run()
    wall = time.perf_counter() - t0
    s = result.summary()
    return {
        "avg_jct_h": round(s["avg_jct_s"] / 3600, 2) if s["avg_jct_s"] else None,
        "succeeded": s["states"]["succeeded"],
        "cost_cny": round(s["cost"], 2),
        "egress_cny": round(s["egress_cost"], 2),
        "tb_moved": round(s["data_moved_tb"], 2),
        "staging_h": round(s["staging_s"] / 3600, 2),
        "wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", default="fifo")
    args = parser.parse_args()
    specs = workload(args.jobs, args.seed)
    out = {"benchmark": "data_gravity", "network": "east-west", "jobs": args.jobs,
           "policy": args.policy, "seed": args.seed,
           "data_blind": run(DataBlind(), specs, args.policy),
           "broker": run("broker", specs, args.policy)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

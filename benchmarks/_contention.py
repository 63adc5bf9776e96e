"""What the two contention benchmarks share: one policy per fresh subprocess, one JSON record.

Each policy runs in its own `python <script> --one POLICY ...` process, so its wall time
includes loading the trace and its peak RSS is its own (ru_maxrss of a process only grows).
The parent only collects the children's JSON lines into one document.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_POLICIES = ("fifo", "max_min_fairness", "las", "suanli_jct")


@dataclass(frozen=True)
class Replay:
    """A trace as engine jobs on a cluster, and how it loads that cluster."""

    jobs: list[Any]  # EngineJob
    cluster: Any  # Cluster
    load: dict[str, Any]  # offered_load and its parts (see offered_load)


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 1024.0 / 1024.0


def offered_load(jobs: Sequence[Any], cluster: Any) -> dict[str, Any]:
    """Work offered over the arrival span against what the cluster can do in that time.

    Work is in reference-chip seconds (total_work x chips for duration traces); the cluster's
    rate is sum over pools of capacity x the pool's speed on the reference chip (the ratio the
    adapter gives every job, so the same for all jobs of a duration trace; for a job that
    cannot use a pool, it does not count). Above 1 the queue cannot drain before arrivals
    stop whatever the policy; near 1 queues form in bursts and drain slowly.
    """
    if not jobs:
        return {"offered_load": 0.0, "span_s": 0.0, "work_ref_chip_s": 0.0,
                "capacity_ref_chips": 0.0}
    arrivals = [j.arrival_s for j in jobs]
    span = max(arrivals) - min(arrivals)
    work = sum(j.total_work * j.num_chips for j in jobs)
    rate = sum(
        p.capacity * max((j.throughput.get(p.pool_id, 0.0) for j in jobs[:1000]), default=0.0)
        for p in cluster.pools
    )
    load = work / (span * rate) if span > 0 and rate > 0 else None
    return {"offered_load": load, "span_s": span, "work_ref_chip_s": work,
            "capacity_ref_chips": rate}


def cpu_s() -> float:
    """User + system CPU seconds of this process (the honest time on a shared machine)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_one(build: Callable[[], Replay], policy: str, round_s: float) -> dict[str, Any]:
    """Replay under one policy in this process; the record the parent collects."""
    from suanli.sim.runner import simulate

    t0 = time.perf_counter()
    replay = build()
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = simulate(replay.jobs, replay.cluster, policy, round_s=round_s,
                      record_events=False)
    t_sim = time.perf_counter() - t1
    s = result.summary()
    return {
        "policy": policy,
        "wall_s": round(t_load + t_sim, 2),
        "load_s": round(t_load, 2),
        "simulate_s": round(t_sim, 2),
        "cpu_s": round(cpu_s(), 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "jobs": s["jobs"],
        "succeeded": s["states"]["succeeded"],
        "failed": s["states"]["failed"],
        "rounds": s["rounds"],
        "reallocations": s["reallocations"],
        "avg_jct_s": s["avg_jct_s"],
        "p50_jct_s": s["median_jct_s"],
        "p99_jct_s": s["p99_jct_s"],
        "avg_queueing_delay_s": s["avg_queueing_delay_s"],
        "p50_queueing_delay_s": s["p50_queueing_delay_s"],
        "p99_queueing_delay_s": s["p99_queueing_delay_s"],
        "avg_waiting_s": s["avg_waiting_s"],
        "p99_waiting_s": s["p99_waiting_s"],
        "makespan_s": s["makespan_s"],
        "utilization_total": s["utilization_total"],
        "utilization": s["utilization"],
        "ftf_rho": {"floor_s": s["ftf_rho_floor_s"], "floored_jobs": s["ftf_rho_floored_jobs"],
                    "mean": s["ftf_rho_mean"], "p50": s["ftf_rho_p50"],
                    "p99": s["ftf_rho_p99"], "max": s["ftf_rho_max"]},
        "queue": s["queue"],
        "preemptions": s["preemptions"],
    }


def run_policies(
    script: str, policies: Sequence[str], child_args: Sequence[str], timeout_s: float | None
) -> dict[str, dict[str, Any]]:
    """Each policy in a fresh subprocess; a child that fails or times out is reported as such."""
    out: dict[str, dict[str, Any]] = {}
    for policy in policies:
        cmd = [sys.executable, script, "--one", policy, *child_args]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            out[policy] = {"policy": policy, "error": f"timed out after {timeout_s} s"}
            continue
        if proc.returncode != 0:
            out[policy] = {"policy": policy, "error": proc.stderr.strip()[-2000:],
                           "wall_s": round(time.perf_counter() - t0, 2)}
            continue
        out[policy] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def drop_flag(argv: Sequence[str], flag: str) -> list[str]:
    """argv without `flag VALUE` / `flag=VALUE` (each child gets its one policy instead)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out


def add_replay_options(parser: argparse.ArgumentParser, time_scale_help: str) -> None:
    """The options both benchmarks take after their trace options."""
    parser.add_argument("--policies", default=",".join(DEFAULT_POLICIES))
    parser.add_argument("--limit", type=int, default=None, help="only the first N jobs")
    parser.add_argument("--round-s", type=float, default=360.0)
    parser.add_argument("--time-scale", type=float, default=1.0, help=time_scale_help)
    parser.add_argument("--timeout-s", type=float, default=None, help="per policy")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child: one policy


def replay_main(script: str, args: argparse.Namespace,
                build: Callable[[argparse.Namespace], Replay], header: dict[str, Any]) -> None:
    """A child (`--one POLICY`) prints its policy's record; the parent prints the document:
    `header`, the cluster, the load and one record per policy."""
    if args.one:
        print(json.dumps(run_one(lambda: build(args), args.one, args.round_s)))
        return
    replay = build(args)
    child = drop_flag(sys.argv[1:], "--policies")
    print(json.dumps({
        **header,
        "jobs": len(replay.jobs),
        "pools": {p.pool_id: p.capacity for p in replay.cluster.pools},
        "chips": replay.cluster.total_chips,
        "round_s": args.round_s,
        "time_scale": args.time_scale,
        "load": replay.load,
        "policies": run_policies(script, args.policies.split(","), child, args.timeout_s),
    }, indent=2))

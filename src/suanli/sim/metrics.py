"""What a simulation reports: per-job outcomes and a summary (JCT, delay, use, cost, fairness).

Definitions:
- JCT = finish - arrival of a job that succeeded; queueing delay = first start - arrival;
  waiting = JCT - time on chips (every wait: the first one, and after each preemption).
- makespan = last finish - first arrival (of the jobs in the window).
- utilization of a pool = busy chip-seconds / (capacity x makespan); busy includes restores.
- cost = chip-hours x the pool's price; energy = chip-hours x TDP x PUE (PUE 1 for a
  `Cluster.from_counts` cluster, which has no data center).
- finish-time fairness rho = JCT / isolated JCT, the isolated JCT being the job's run time on
  an equal 1/N share of every pool, N = the time-averaged number of active jobs while it was
  in the system (Themis, NSDI 2020; Gavel's finish_time_fairness). rho <= 1 is fair.
  The isolated JCT is floored at `rho_floor_s` (one scheduling round by default): a job of a
  few seconds cannot finish sooner than the next round in any round-based scheduler, so
  without the floor its rho is the round length over its duration (thousands on Philly) and
  the max and mean measure the round length, not the policy. See `isolated_floor`.
- queue length = jobs that have arrived and are not on chips, sampled at every change; its
  time-weighted mean is over [first arrival, last sample].
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from suanli.engine.types import JobState

if TYPE_CHECKING:
    from suanli.engine.engine import Engine


@dataclass(slots=True)
class JobResult:
    job_id: str
    index: int  # submission order
    state: str
    arrival_s: float
    start_s: float | None
    finish_s: float | None
    jct_s: float | None
    queueing_delay_s: float | None
    num_chips: int
    pools: str  # ';'-joined pool ids it ran on
    chip_hours: float
    cost: float
    energy_kwh: float
    retries: int
    interruptions: int
    preemptions: int
    rho: float | None
    reason: str
    waiting_s: float | None = None  # JCT minus time on chips (None unless it succeeded)
    isolated_s: float | None = None  # JCT on a 1/N share, before the floor (rho's denominator)
    data_moved_gb: float = 0.0
    egress_cost: float = 0.0
    staging_s: float = 0.0
    resizes: int = 0  # runs checkpointed and restarted at another count (elastic jobs)


def _pct(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


@dataclass
class SimResult:
    """Per-job results plus what is needed to summarise any window of them."""

    policy: str
    jobs: list[JobResult]
    pool_ids: list[str]
    capacity: list[int]
    busy_chip_s: list[float]
    timeline_t: list[float] = field(default_factory=list)
    timeline_used: list[list[int]] = field(default_factory=list)
    timeline_waiting: list[int] = field(default_factory=list)
    rounds: int = 0
    reallocations: int = 0
    window: tuple[int | None, int | None] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_engine(cls, engine: Engine, rho_floor_s: float | None = None) -> SimResult:
        """`rho_floor_s`: the least isolated JCT rho divides by (default: one round)."""
        n = engine._n
        recs = engine._records
        floor_s = engine.round_s if rho_floor_s is None else float(rho_floor_s)
        rho, isolated = _finish_time_fairness(engine, floor_s)
        jobs = []
        for i in range(n):
            r = recs[i]
            jobs.append(
                JobResult(
                    job_id=r.job.job_id,
                    index=i,
                    state=r.state.value,
                    arrival_s=r.job.arrival_s,
                    start_s=r.start_s,
                    finish_s=r.finish_s,
                    jct_s=r.jct_s,
                    queueing_delay_s=r.queueing_delay_s,
                    num_chips=r.job.num_chips,
                    pools=";".join(r.pools),
                    chip_hours=r.chip_seconds / 3600.0,
                    cost=r.cost,
                    energy_kwh=r.energy_kwh,
                    retries=r.retries,
                    interruptions=r.interruptions,
                    preemptions=r.preemptions,
                    rho=None if math.isnan(rho[i]) else float(rho[i]),
                    reason=r.reason,
                    waiting_s=_waiting_s(r.jct_s, r.chip_seconds, r.job.num_chips),
                    isolated_s=None if math.isnan(isolated[i]) else float(isolated[i]),
                    data_moved_gb=r.data_moved_gb,
                    egress_cost=r.egress_cost,
                    staging_s=r.staging_s,
                    resizes=r.resizes,
                )
            )
        return cls(
            policy=engine.policy_name,
            jobs=jobs,
            pool_ids=list(engine._pool_ids),
            capacity=[int(c) for c in engine._static_cap],
            busy_chip_s=[float(b) for b in engine._busy_chip_s],
            timeline_t=list(engine.timeline_t),
            timeline_used=[u.tolist() for u in engine.timeline_used],
            timeline_waiting=list(engine.timeline_waiting),
            rounds=engine.rounds,
            reallocations=engine.reallocations,
            info={"round_s": engine.round_s, "gavel_mode": engine.gavel_mode,
                  "seed": engine.seed, "rho_floor_s": floor_s},
        )

    # ------------------------------------------------------------------ selection

    def select(self, start: int | None, end: int | None) -> list[JobResult]:
        """Jobs whose submission index is in [start, end) (Gavel's measurement window)."""
        lo = 0 if start is None else start
        hi = len(self.jobs) if end is None else end
        return [j for j in self.jobs if lo <= j.index < hi]

    def summary(self, window: tuple[int | None, int | None] | None = None) -> dict[str, Any]:
        window = window if window is not None else self.window
        jobs = self.select(*window) if window else self.jobs
        states: dict[str, int] = {s.value: 0 for s in JobState}
        for j in jobs:
            states[j.state] += 1
        jct = np.array([j.jct_s for j in jobs if j.jct_s is not None], dtype=float)
        delay = np.array(
            [j.queueing_delay_s for j in jobs if j.queueing_delay_s is not None], dtype=float
        )
        waiting = np.array([j.waiting_s for j in jobs if j.waiting_s is not None], dtype=float)
        rho = np.array([j.rho for j in jobs if j.rho is not None], dtype=float)
        floor_s = float(self.info.get("rho_floor_s", 0.0))
        floored = sum(1 for j in jobs if j.isolated_s is not None and j.isolated_s < floor_s)
        arrivals = [j.arrival_s for j in jobs]
        finishes = [j.finish_s for j in jobs if j.finish_s is not None and j.start_s is not None]
        makespan = (max(finishes) - min(arrivals)) if finishes and arrivals else 0.0
        if window:
            busy = _busy_by_pool(jobs, self.pool_ids)
        else:
            busy = np.array(self.busy_chip_s, dtype=float)
        cap = np.array(self.capacity, dtype=float)
        denom = cap * makespan
        util = np.divide(busy, denom, out=np.zeros_like(busy), where=denom > 0)
        total_util = float(busy.sum() / denom.sum()) if denom.sum() > 0 else 0.0
        return {
            "policy": self.policy,
            "jobs": len(jobs),
            "window": list(window) if window else None,
            "states": states,
            "avg_jct_s": _mean(jct),
            "median_jct_s": _pct(jct, 50),
            "p99_jct_s": _pct(jct, 99),
            "avg_queueing_delay_s": _mean(delay),
            "p50_queueing_delay_s": _pct(delay, 50),
            "p99_queueing_delay_s": _pct(delay, 99),
            "avg_waiting_s": _mean(waiting),
            "p99_waiting_s": _pct(waiting, 99),
            "makespan_s": makespan,
            "utilization": {pid: float(u) for pid, u in zip(self.pool_ids, util, strict=True)},
            "utilization_total": total_util,
            "chip_hours": float(sum(j.chip_hours for j in jobs)),
            "cost": float(sum(j.cost for j in jobs)),
            "energy_kwh": float(sum(j.energy_kwh for j in jobs)),
            "data_moved_tb": float(sum(j.data_moved_gb for j in jobs)) / 1000.0,
            "egress_cost": float(sum(j.egress_cost for j in jobs)),
            "staging_s": float(sum(j.staging_s for j in jobs)),
            "ftf_rho_max": float(rho.max()) if len(rho) else None,
            "ftf_rho_mean": _mean(rho),
            "ftf_rho_p50": _pct(rho, 50),
            "ftf_rho_p99": _pct(rho, 99),
            "ftf_rho_floor_s": floor_s,
            "ftf_rho_floored_jobs": floored,
            "queue": queue_stats(self.timeline_t, self.timeline_waiting,
                                 max(arrivals) if arrivals else 0.0),
            "retries": int(sum(j.retries for j in jobs)),
            "interruptions": int(sum(j.interruptions for j in jobs)),
            "preemptions": int(sum(j.preemptions for j in jobs)),
            "resizes": int(sum(j.resizes for j in jobs)),
            "rounds": self.rounds,
            "reallocations": self.reallocations,
        }

    # ------------------------------------------------------------------ output

    def write_csv(self, path: str | Path, window: tuple[int | None, int | None] | None = None):
        jobs = self.select(*window) if window else self.jobs
        names = list(JobResult.__slots__)
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=names)
            w.writeheader()
            for j in jobs:
                w.writerow(asdict(j))

    def write_json(self, path: str | Path, window=None) -> None:
        Path(path).write_text(json.dumps(self.summary(window), indent=2) + "\n", "utf-8")


def queue_stats(t_s: list[float], waiting: list[int], last_arrival_s: float) -> dict[str, Any]:
    """Did a queue form, and did it drain? From the whole run's timeline (not a window).

    waiting = jobs arrived and not on chips. `drained_after_last_arrival_s` is how long after
    the last arrival the queue last emptied (0: empty at the last arrival; None: never empty
    at the end of the timeline).
    """
    if not t_s:
        return {"peak": 0, "peak_at_s": None, "time_weighted_mean": 0.0,
                "share_of_time_nonempty": 0.0, "at_last_arrival": 0, "final": 0,
                "drained_after_last_arrival_s": 0.0}
    t = np.asarray(t_s, dtype=float)
    q = np.asarray(waiting, dtype=float)
    dt = np.diff(t)
    span = float(t[-1] - t[0])
    mean = float((q[:-1] * dt).sum() / span) if span > 0 else float(q[-1])
    nonempty = float(dt[q[:-1] > 0].sum() / span) if span > 0 else float(q[-1] > 0)
    k_last = max(int(np.searchsorted(t, last_arrival_s, side="right")) - 1, 0)
    busy_after = np.flatnonzero(q[k_last:] > 0)
    if q[-1] > 0:
        drained = None
    elif busy_after.size == 0:
        drained = 0.0
    else:
        drained = float(t[k_last + busy_after[-1] + 1] - last_arrival_s)
    peak = int(np.argmax(q))
    return {"peak": int(q[peak]), "peak_at_s": float(t[peak]), "time_weighted_mean": mean,
            "share_of_time_nonempty": nonempty, "at_last_arrival": int(q[k_last]),
            "final": int(q[-1]), "drained_after_last_arrival_s": drained}


def _busy_by_pool(jobs: list[JobResult], pool_ids: list[str]) -> np.ndarray:
    """Chip-seconds of the given jobs per pool (a job that moved splits by its cost share is
    not known here, so its chip-hours go to the pools it used in equal parts)."""
    index = {p: k for k, p in enumerate(pool_ids)}
    busy = np.zeros(len(pool_ids))
    for j in jobs:
        pools = [index[p] for p in j.pools.split(";") if p in index]
        if pools:
            busy[pools] += j.chip_hours * 3600.0 / len(pools)
    return busy


def _waiting_s(jct_s: float | None, chip_seconds: float, num_chips: int) -> float | None:
    """Time in the system not spent on chips; chip-seconds over the gang size is the time on
    chips (restores included: the job holds its chips while it restores)."""
    if jct_s is None:
        return None
    return max(0.0, float(jct_s - chip_seconds / max(num_chips, 1)))


def isolated_floor(isolated_s: np.ndarray, floor_s: float) -> np.ndarray:
    """rho's denominator: the isolated JCT, at least `floor_s`.

    A round-based scheduler decides once a round, so a job that arrives between rounds waits
    for the next one however short it is; a 3 s job that waits one 360 s round has rho 120
    though nothing unfair happened. With the floor, such a job has rho <= 1 when it finishes
    within a round of arriving, and a long job (isolated JCT above the floor) is unaffected.
    """
    return np.maximum(isolated_s, floor_s)


def _finish_time_fairness(engine: Engine, floor_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(rho, isolated JCT) per job, NaN where the job did not succeed; rho divides by the
    isolated JCT floored at `floor_s` (see `isolated_floor`)."""
    n = engine._n
    rho = np.full(n, np.nan)
    iso = np.full(n, np.nan)
    if n == 0:
        return rho, iso
    recs = engine._records
    arrival = engine._arrival[:n]
    finish = np.array([r.finish_s if r.finish_s is not None else np.nan for r in recs])
    ok = np.array([r.state is JobState.SUCCEEDED for r in recs]) & np.isfinite(finish)
    if not ok.any():
        return rho, iso
    avg_active = _average_active(engine, arrival, finish, ok)
    cap = engine._static_cap.astype(float)
    chips = engine._chips[:n].astype(float)
    thr = engine._thr[:n]
    share = cap[None, :] / (avg_active[:, None] * chips[:, None])
    share = np.where(thr > 0, share, 0.0)
    total = share.sum(axis=1)
    scale = np.where(total > 1.0, 1.0 / np.where(total > 0, total, 1.0), 1.0)
    rate = (share * thr).sum(axis=1) * scale
    iso = np.divide(engine._total[:n], rate, out=np.full(n, np.nan), where=rate > 0)
    good = ok & np.isfinite(iso) & (iso > 0)
    iso[~good] = np.nan
    jct = finish - arrival
    rho[good] = jct[good] / isolated_floor(iso[good], floor_s)
    return rho, iso


def _average_active(
    engine: Engine, arrival: np.ndarray, finish: np.ndarray, ok: np.ndarray
) -> np.ndarray:
    """Time-averaged number of active jobs (at least 1) over each job's stay."""
    n = len(arrival)
    t = np.asarray(engine.active_t, dtype=float)
    counts = np.asarray(engine.active_n, dtype=float)
    avg_active = np.ones(n)
    if len(t) == 0:
        return avg_active
    # Integral of the active-job step function, evaluated at arrival and finish.
    dt = np.diff(t, append=t[-1])
    cum = np.concatenate([[0.0], np.cumsum(counts * dt)])

    def integral(x: np.ndarray) -> np.ndarray:
        k = np.searchsorted(t, x, side="right") - 1
        k = np.clip(k, 0, len(t) - 1)
        return cum[k] + counts[k] * (x - t[k])

    a = arrival[ok]
    f = finish[ok]
    span = np.maximum(f - a, 1e-9)
    avg_active[ok] = np.maximum((integral(f) - integral(a)) / span, 1.0)
    return avg_active

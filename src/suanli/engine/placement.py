"""Placement by the broker: the policy decides who gets chips, the planner decides where.

Blox's split (admission -> scheduling -> placement). The policy's allocation and the priority
rule choose which waiting jobs start this round; then each starting job's pool is chosen again
by a `Placer`. The broker (`BrokerPlacer`) asks the planner (`suanli.plan.plan`) for the job's
options on the engine's live state (free chips, running jobs and queued work per pool) with the
job's objective, what is left of its deadline and budget, its allowed regions and spot
permission, and takes the best option that can start now on a pool the policy allows (any chip
for a chip-agnostic policy, the chip class the policy chose otherwise). A job without a spec (a
trace job) is ranked by the planner's formulas over the engine's own speeds and prices.

One code path for simulation and the live service: both run this pass inside `Engine._round`.
Gavel mode and placement-aware policies keep the priority rule's pool (`Engine._choose_placer`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from suanli.engine.types import ON_CHIPS_STATES, EngineJob, JobState
from suanli.errors import SuanliError

if TYPE_CHECKING:
    from suanli.engine.cluster import Cluster
    from suanli.plan.result import PlacementOption, PlanResult
    from suanli.plan.state import NetworkState, RunningJob


@dataclass(slots=True, eq=True, unsafe_hash=True)
class Choice:
    """The placer's answer for one job: a pool index (-1: keep the policy's pool) and the
    option behind it (cost includes egress; None where it was not priced). A value, not
    `frozen` for the speed of building one per start (see `Placement`)."""

    pool: int
    cost: float | None = None
    run_s: float | None = None
    egress_cost: float = 0.0
    note: str = ""
    transfer_s: float | None = None  # the option's dataset transfer (its route), if planned
    # A mixed-chip gang: (pool index, chips, layers) per part, `pool` is the first part's;
    # `throughput` is the split's work units per second.
    split: tuple[tuple[int, int, int], ...] = ()
    throughput: float | None = None


@dataclass(frozen=True, slots=True)
class LiveView:
    """What a placer sees of the engine for one job."""

    now_s: float
    allowed: np.ndarray  # [P] bool: pools the policy allows this job, with room for its gang
    free_chips: np.ndarray  # [P] free once this round's other placements are taken
    remaining_work: float
    throughput: np.ndarray  # [P] work units/s at the job's gang (0: cannot run there)
    price_per_chip_hour: np.ndarray  # [P]
    spent: float  # what the job has cost so far
    staging_s: np.ndarray  # [P] moving its dataset to each pool's region, seconds
    egress_cost: np.ndarray  # [P] and what that transfer costs
    network_state: Callable[[], NetworkState]  # the planner's view, built when first asked
    runnable: np.ndarray | None = None  # [P] bool: pools the job may use now (any room)


class Placer(Protocol):
    def choose(self, job: EngineJob, view: LiveView, cluster: Cluster) -> Choice: ...


class BrokerPlacer:
    """The planner's best option that can start now (see the module doc)."""

    def choose(self, job: EngineJob, view: LiveView, cluster: Cluster) -> Choice:
        if job.spec is not None and cluster.network is not None:
            return self._planned(job, view, cluster)
        return self._ranked(job, view)

    @staticmethod
    def _ranked(job: EngineJob, view: LiveView) -> Choice:
        """cost = chips x price x run time, finish = run time (the job starts now)."""
        idx = np.flatnonzero(view.allowed & (view.throughput > 0))
        if len(idx) == 0:
            return Choice(-1)
        egress = view.egress_cost[idx]
        cost, run_s, finish = pool_costs(job.num_chips, view.price_per_chip_hour[idx],
                                         view.remaining_work, view.throughput[idx], egress,
                                         view.staging_s[idx])
        k = 0 if len(idx) == 1 else int(rank_order(job.objective, idx, cost, finish)[0])
        return Choice(int(idx[k]), float(cost[k]), float(run_s[k]), float(egress[k]))

    @staticmethod
    def _planned(job: EngineJob, view: LiveView, cluster: Cluster) -> Choice:
        from suanli.plan import plan

        spec = job.spec
        assert spec is not None and cluster.network is not None
        gang = spec.model_copy(update={
            "resources": spec.resources.model_copy(update={"count": job.num_chips})})
        deadline = job.deadline_s - view.now_s if math.isfinite(job.deadline_s) else None
        budget = spec.budget - view.spent if spec.budget is not None else None
        try:
            result = plan(gang, cluster.network, view.network_state(), objective=spec.objective,
                          vouchers=job.vouchers,
                          deadline_s=deadline if deadline and deadline > 0 else None,
                          budget=budget if budget and budget > 0 else None)
        except SuanliError as exc:
            return Choice(-1, note=f"the broker could not plan it now ({exc}); placed by the "
                                   f"policy")
        if result.chosen is None:
            why = "; ".join(result.infeasible[:2]) or "no option"
            return Choice(-1, note=f"no option meets the job's limits now ({why}); placed by "
                                   f"the policy")
        index = {pid: k for k, pid in enumerate(cluster.pool_ids)}
        for option in startable_now(result):
            note = "" if option is result.chosen else _why_not(result.chosen, view, index)
            if option.heterogeneous:
                split = _split_room(job, option, view, index)
                if split:
                    return Choice(split[0][0], float(option.cost), float(option.run_s),
                                  float(option.egress_cost), note, float(option.transfer_s),
                                  split, job.total_work / float(option.run_s))
                continue
            k = index.get(f"{option.center}/{option.pool}")
            if k is None or not view.allowed[k]:
                continue
            return Choice(k, float(option.cost), float(option.run_s),
                          float(option.egress_cost), note, float(option.transfer_s))
        return Choice(-1, note=f"the broker's options ({result.chosen.label} first) have no "
                               f"room the policy allows now; placed by the policy")


def startable_now(result: PlanResult) -> Iterator[PlacementOption]:
    """The options the engine can place on now, best first: no wait for chips (a mixed-chip
    split included: the engine holds both pools as one gang). The first is where a job goes
    (the plan preview shows it as `placement_now`)."""
    return (o for o in result.options if o.wait_s <= 0)


def _split_room(job: EngineJob, option, view: LiveView,
                index: dict[str, int]) -> tuple[tuple[int, int, int], ...]:
    """A mixed-chip option's parts as (pool index, chips, layers) if every part has room
    and can run the job now (a pool the job may not use or that is down: no room)."""
    parts = []
    for share in option.split:
        k = index.get(f"{option.center}/{share.pool}")
        if k is None or view.free_chips[k] < share.count or not view.runnable[k]:
            return ()
        parts.append((k, int(share.count), int(share.layers)))
    return tuple(parts) if len(parts) > 1 and job.total_work > 0 else ()


def _why_not(chosen, view: LiveView, index: dict[str, int]) -> str:
    """Why the planner's first option is not where the job goes."""
    if chosen.heterogeneous:
        return f"planned {chosen.label}, but its pools have no room for both parts now"
    k = index[f"{chosen.center}/{chosen.pool}"]
    free = int(view.free_chips[k])
    if free < chosen.count:
        return f"planned {chosen.label}, but that pool has {free} free chips now"
    return f"planned {chosen.label}, but the policy gave this job other chips"


def _moved_note(rec, pool_id: str) -> str:
    """A job placed again elsewhere after an outage or preemption says where it moved from and
    why (the reason it left its chips)."""
    if not rec.pools or rec.pools[-1] == pool_id:
        return ""
    # `is`, not `.value ==`: an enum's `.value` is a property lookup, and this runs per start
    why = rec.reason if rec.state is JobState.PREEMPTED else f"it was {rec.state.value}"
    return f"moved from {rec.pools[-1]} ({why})"


def _with_moved_note(choice: Choice, rec, pool_id: str) -> Choice:
    """The choice with `_moved_note` put before its own note (unchanged if it did not move)."""
    moved = _moved_note(rec, pool_id)
    if not moved:
        return choice
    return _choice_at(choice, choice.pool, "; ".join(x for x in (moved, choice.note) if x))


def pool_costs(num_chips, price_per_chip_hour, remaining_work, throughput, egress_cost,
               staging_s) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cost, run seconds, finish seconds) of starting now on each pool: cost = chips x price x
    run time + egress, finish = staging + run time. Broadcasts: one job over its pools, or a
    row per job."""
    run_s = remaining_work / throughput
    cost = num_chips * price_per_chip_hour * run_s / 3600.0 + egress_cost
    return cost, run_s, staging_s + run_s


def rank_order(objective: str, pools: np.ndarray, cost: np.ndarray,
               finish: np.ndarray) -> np.ndarray:
    """Pools best first along the last axis: by finish then cost for objective "time", by cost
    then finish otherwise; ties to the lower pool index."""
    keys = (pools, cost, finish) if objective == "time" else (pools, finish, cost)
    return np.lexsort(keys, axis=-1)


def _choice_at(choice: Choice, pool: int, note: str) -> Choice:
    """`choice` with another pool and note (built directly: `dataclasses.replace` is slow and
    the broker's pass makes one per job it starts)."""
    return Choice(pool, choice.cost, choice.run_s, choice.egress_cost, note, choice.transfer_s,
                  choice.split, choice.throughput)


def _ranked_rows(engine, idx: np.ndarray, chips: np.ndarray, allowed_rows: np.ndarray):
    """`BrokerPlacer._ranked` for many jobs without a spec or dataset at once (no staging, no
    egress): each job's pools in the ranker's order, then per job the first allowed one with
    room. The same `pool_costs` and `rank_order` as `_ranked`, so the same choice and numbers.
    Nothing is priced until the first job asks."""
    rows: dict[str, list] = {}  # "cost", "run", "ok", and per objective the pools' order

    def priced() -> dict[str, list]:
        if not rows:
            thr = engine._thr[idx]
            with np.errstate(divide="ignore", invalid="ignore"):  # pools it cannot run on
                cost, run_s, finish = pool_costs(
                    chips[:, None], engine._price[None, :],
                    (engine._total[idx] - engine._base[idx])[:, None], thr, 0.0, 0.0)
            pools = np.broadcast_to(np.arange(thr.shape[1]), thr.shape)
            rows.update(cost=cost.tolist(), run=run_s.tolist(),
                        ok=(allowed_rows & (thr > 0)).tolist(), arrays=[pools, cost, finish])
        return rows

    def choose(row: int, objective: str, left: np.ndarray, c: int) -> tuple[
            int, float | None, float | None]:
        """(pool, cost, run seconds) of the job's choice; (-1, None, None) if none."""
        r = rows or priced()
        by = "time" if objective == "time" else "by cost"
        if by not in r:
            r[by] = rank_order(objective, *r["arrays"]).tolist()
        ok = r["ok"][row]
        for q in r[by][row]:
            if ok[q] and left[q] >= c:
                return q, r["cost"][row][q], r["run"][row][q]
        return -1, None, None

    return choose


def _costs_on(engine, idx: np.ndarray, chips: np.ndarray,
              pools: np.ndarray) -> tuple[list[float], list[float]]:
    """(cost, run seconds) of each job on one pool each, priced as `_ranked_rows` prices
    them (the pools are ones the jobs can run on)."""
    cost, run_s, _ = pool_costs(chips, engine._price[pools], engine._total[idx] -
                                engine._base[idx], engine._thr[idx, pools], 0.0, 0.0)
    return cost.tolist(), run_s.tolist()


class PlacementMixin:
    """Part of `Engine`: the broker's pass over the jobs a round starts."""

    def _broker_pass(self, A: np.ndarray, target: np.ndarray, now: float) -> np.ndarray:
        """Re-choose the pool of each job that starts this round (not those staying put)."""
        current = self._run_pool[A]
        split_only = np.zeros(len(A), dtype=bool)
        if self._split_only:
            split_only = np.isin(A, list(self._split_only)) & (target < 0) & (current < 0)
        starts = np.flatnonzero(((target >= 0) & (current != target)) | split_only)
        if len(starts) == 0:
            return target
        chips = self._chips[A]
        left = self._cap_up.astype(np.int64).copy()
        placed = target >= 0
        np.subtract.at(left, target[placed], chips[placed])
        if self._mixed_thr:
            left -= self._held_by_mixed(A, target)
        blocked = self._blocked_mask(A)
        state_cache: list[NetworkState] = []
        load: list[tuple[list[tuple[RunningJob, ...]], np.ndarray]] = []
        target = target.copy()
        # Per starting job, the pools it may use now (rows computed for all of them at once).
        runnable_rows = (self._thr[A[starts]] > 0) & (self._cap_up > 0)[None, :]
        if blocked is not None:
            runnable_rows &= ~blocked[starts]
        if not self.traits.agnostic:
            p0s = np.maximum(target[starts], 0)
            same_class = self._pool_class[None, :] == self._pool_class[p0s][:, None]
            same_class[target[starts] < 0] = True
            runnable_allowed = runnable_rows & same_class
        else:
            runnable_allowed = runnable_rows
        ranked = None
        if type(self.placer) is BrokerPlacer:
            ranked = _ranked_rows(self, A[starts], chips[starts], runnable_allowed)
            # Rows whose one allowed pool is the policy's (a chip class of one pool): the
            # ranker can only pick it, and `left` is unchanged by the job.
            p0s = target[starts]
            only = (runnable_allowed.sum(axis=1) == 1) & (p0s >= 0) & \
                runnable_allowed[np.arange(len(starts)), np.maximum(p0s, 0)]
            only_l = only.tolist()
            cost_only: list[float | None] = [None] * len(starts)
            run_only = list(cost_only)
            if only.any():
                rows = np.flatnonzero(only)
                cost, run_s = _costs_on(self, A[starts[rows]], chips[starts[rows]], p0s[rows])
                for row, c_row, r_row in zip(rows.tolist(), cost, run_s, strict=True):
                    cost_only[row] = c_row
                    run_only[row] = r_row
        records = self._records
        pool_ids = self._pool_ids
        for row, (k, i, p0, c) in enumerate(zip(
                starts.tolist(), A[starts].tolist(), target[starts].tolist(),
                chips[starts].tolist(), strict=True)):
            rec = records[i]
            if ranked is not None and only_l[row] and rec.job.spec is None and \
                    rec.job.dataset is None:
                self._planned[i] = Choice(p0, cost_only[row], run_only[row], 0.0,
                                          _moved_note(rec, pool_ids[p0]))
                continue
            if p0 >= 0:
                left[p0] += c
            if ranked is not None and rec.job.spec is None and rec.job.dataset is None:
                if p0 < 0:
                    continue  # fits no single pool: only a split places it
                q, cost, run_s = ranked(row, rec.job.objective, left, c)
                p = q if q >= 0 else p0
                note = _moved_note(rec, self._pool_ids[p])
                if q >= 0 or note:  # as `_with_moved_note` and `_choice_at` would build it
                    self._planned[i] = Choice(p, cost, run_s, 0.0, note)
                if p != p0:
                    state_cache.clear()
                left[p] -= c
                target[k] = p
                continue
            runnable = runnable_rows[row]
            allowed = (left >= c) & runnable_allowed[row]

            def network_state(free=left) -> NetworkState:
                if not state_cache:
                    if not load:  # running jobs and queued work: the same all round
                        load.append(self._pool_load(now))
                    state_cache.append(self._network_state(load[0], free))
                return state_cache[0]

            stage_s, egress = self._staging_rows(i)
            view = LiveView(now_s=now, allowed=allowed, free_chips=left.copy(),
                            remaining_work=float(self._total[i] - self._base[i]),
                            throughput=self._thr[i], price_per_chip_hour=self._price,
                            spent=rec.cost, network_state=network_state,
                            staging_s=stage_s, egress_cost=egress, runnable=runnable)
            choice = self.placer.choose(rec.job, view, self.cluster)
            if choice.split and all(left[q] >= n for q, n, _ in choice.split) and (
                    self.traits.agnostic or p0 < 0
                    or any(self._pool_class[q] == self._pool_class[p0] for q, *_ in choice.split)):
                # one gang over both pools (`mixed.py`)
                self._planned[i] = _with_moved_note(choice, rec, self._pool_ids[choice.pool])
                for q, n, _ in choice.split:
                    left[q] -= n
                target[k] = choice.pool
                state_cache.clear()
                continue
            if p0 < 0:
                continue  # fits no single pool: only a split places it
            if choice.split:
                choice = Choice(-1, note="the broker's mixed-chip split has no room now")
            p = choice.pool if choice.pool >= 0 and allowed[choice.pool] else p0
            choice = _with_moved_note(choice, rec, self._pool_ids[p])
            if p != p0 or choice.pool >= 0 or choice.note:
                self._planned[i] = _choice_at(choice, p, choice.note)
            if p != p0:
                state_cache.clear()
            left[p] -= c
            target[k] = p
        return target

    def network_state(self, now: float, free: np.ndarray | None = None) -> NetworkState:
        """The planner's view of the engine: free chips, running jobs (chips, time left) and
        queued work (chip-seconds on each waiting job's fastest pool) per pool."""
        free = self._cap_up - self._used if free is None else free
        return self._network_state(self._pool_load(now), free)

    def _pool_load(self, now: float) -> tuple[list[tuple[RunningJob, ...]], np.ndarray]:
        """Running jobs (chips, time left) and queued chip-seconds per pool at `now`; the
        broker's pass builds it once a round and only the free chips change between jobs."""
        from suanli.plan.state import RunningJob

        running: list[list[RunningJob]] = [[] for _ in range(self._P)]
        queued = np.zeros(self._P)
        for i in self._active:
            rec = self._records[i]
            p = int(self._run_pool[i])
            left = float(self._total[i] - self._work_at(i, now))
            if p >= 0 and rec.state in ON_CHIPS_STATES:
                rate = float(self._thr[i, p])
                running[p].append(RunningJob(int(self._chips[i]), left / rate if rate > 0
                                             else math.inf))
            else:
                row = self._thr[i]
                if row.max() > 0:
                    q = int(row.argmax())
                    queued[q] += self._chips[i] * left / row[q]
        return [tuple(r) for r in running], queued

    def _network_state(self, load: tuple[list[tuple[RunningJob, ...]], np.ndarray],
                       free: np.ndarray) -> NetworkState:
        from suanli.plan.state import NetworkState, PoolState

        running, queued = load
        return NetworkState({
            pid: PoolState(free_chips=int(max(free[k], 0)), running=running[k],
                           queued_chip_s=float(queued[k]))
            for k, pid in enumerate(self._pool_ids)
        }, dataset_copies={name: frozenset(regions) for name, regions in self._data_at.items()})

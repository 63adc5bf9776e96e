"""Runs: taking and releasing chips, starting and ending a run, progress and accounting.

A run is one stretch of a job on one pool's chips. Progress is throughput x productive time
(time after the restore); a checkpoint is taken every `checkpoint_interval_s` of productive
time; ending a run commits the work that survives it and charges chip-seconds, cost, energy.
"""

from __future__ import annotations

import math
from itertools import repeat

import numpy as np

from suanli.engine.backend import run_end_s
from suanli.engine.placement import Choice
from suanli.engine.types import ON_CHIPS_STATES, JobState, Placement, PlacementPart


def pick_nodes(free: np.ndarray, c: int, per_node: int) -> tuple[tuple[int, int], ...]:
    """Whole gang on as few nodes as possible: best fit for a gang within one node, else
    the emptiest nodes first."""
    if per_node == 1:
        if c == 1:
            n = int(free.argmax())  # the first free node
            if free[n] <= 0:
                raise RuntimeError("not enough free chips for a gang the round placed")
            return ((n, 1),)
        idx = np.flatnonzero(free)[:c]
        if len(idx) < c:
            raise RuntimeError("not enough free chips for a gang the round placed")
        return tuple(zip(idx.tolist(), [1] * c, strict=True))
    if c <= per_node:
        fit = np.where(free >= c, free, per_node + 1)
        n = int(fit.argmin())
        if fit[n] <= per_node:
            return ((n, c),)
    order = np.argsort(-free, kind="stable")
    out = []
    need = c
    for n in order:
        f = int(free[n])
        if f <= 0:
            break
        take = min(f, need)
        out.append((int(n), take))
        need -= take
        if need == 0:
            break
    if need:
        raise RuntimeError("not enough free chips for a gang the round placed")
    return tuple(out)


# Below this many jobs the batched paths (`_end_runs`, `_take_chips_all`) take the one-job
# loop: their fixed cost (tens of NumPy calls) is that of about eight jobs' loop.
BATCH_MIN = 8


class RunsMixin:
    """Part of `Engine`: chips, runs, progress and accounting."""

    def _work_at(self, i: int, now: float) -> float:
        if self._records[i].state not in ON_CHIPS_STATES:
            return self._base.item(i)
        base = self._base.item(i)
        productive = now - self._seg_start.item(i) - self._seg_restore.item(i)
        if productive <= 0:
            return base
        rate = self._rate_of(i, self._run_pool.item(i))
        return min(self._total.item(i), base + productive * rate)

    def _work_now(self, idx: np.ndarray, now: float) -> np.ndarray:
        """Estimated work done by each job in idx at `now` (vectorised _work_at)."""
        work = self._base[idx].copy()
        pools = self._run_pool[idx]
        on = pools >= 0
        if on.any():
            j = idx[on]
            productive = np.maximum(now - self._seg_start[j] - self._seg_restore[j], 0.0)
            rate = self._thr[j, pools[on]]
            if self._mixed_thr:
                rate = np.array([self._rate_of(int(a), int(b)) for a, b in
                                 zip(j, pools[on], strict=True)])
            work[on] = np.minimum(self._total[j], work[on] + productive * rate)
        return work

    def _checkpoint_at(self, i: int, now: float) -> float:
        base = self._base.item(i)
        productive = now - self._seg_start.item(i) - self._seg_restore.item(i)
        if productive <= 0:
            return base
        iv = self._ckpt_iv.item(i)
        saved = math.floor(productive / iv) * iv if math.isfinite(iv) else 0.0
        return min(self._total.item(i), base + saved * self._rate_of(i, self._run_pool.item(i)))

    def _take_chips(self, i: int, p: int, nodes: tuple[tuple[int, int], ...] | None) -> tuple:
        c = self._chips.item(i)
        free = self._node_free[p]
        if nodes is None:
            nodes = pick_nodes(free, c, self.cluster.pools[p].chips_per_node)
        for node, chips in nodes:
            free[node] -= chips
        self._used[p] += c
        return nodes

    def _take_chips_all(self, idx: list[int], pools: list[int]) -> list[tuple | None]:
        """`_take_chips(i, p, None)` for each (job, pool) in turn: the nodes each gang gets.
        On a pool of one-chip nodes the loop hands each gang the next free nodes in node
        order, so its picks are slices of the pool's free nodes, taken a pool at a time in
        NumPy; other pools pick job by job (`pick_nodes`' best fit). The caller gives back
        the chips of every job it does not start (`_give_back_chips`)."""
        out: list[tuple | None] = [()] * len(idx)
        by_pool: dict[int, list[int]] = {}
        for k, p in enumerate(pools):
            by_pool.setdefault(p, []).append(k)
        chips_col = self._chips
        for p, ks in by_pool.items():
            free = self._node_free[p]
            if len(ks) < BATCH_MIN or self.cluster.pools[p].chips_per_node != 1:
                for k in ks:
                    out[k] = self._take_chips(idx[k], p, None)
                continue
            chips = chips_col[[idx[k] for k in ks]]
            nodes = np.flatnonzero(free > 0)
            ends = np.cumsum(chips)
            if ends[-1] > len(nodes):
                raise RuntimeError("not enough free chips for a gang the round placed")
            taken = nodes[:ends[-1]]
            free[taken] -= 1
            self._used[p] += int(ends[-1])
            picks = taken.tolist()
            start = 0
            for k, end in zip(ks, ends.tolist(), strict=True):
                out[k] = tuple(zip(picks[start:end], repeat(1)))  # ((node, 1), ...)
                start = end
        return out

    def _give_back_chips(self, i: int, p: int, nodes: tuple) -> None:
        """Undo `_take_chips` for a job that does not start after all."""
        free = self._node_free[p]
        for node, c in nodes:
            free[node] += c
        self._used[p] -= self._chips.item(i)

    def _begin_run(self, i: int, p: int, now: float, restore_s: float, nodes,
                   planned: Choice | None = None, staging_s: float = 0.0,
                   egress_cost: float = 0.0, parts: tuple[PlacementPart, ...] = (),
                   throughput: float | None = None) -> Placement:
        """Take the run's columns; the productive time starts after staging + restore.
        A mixed-chip gang passes its `parts` (chips already taken) and the split's throughput."""
        restore_s = restore_s + staging_s
        rec = self._records[i]
        self._run_pool[i] = p
        self._seg_start[i] = now
        self._seg_restore[i] = restore_s
        self._acct[i] = now
        self._on_chips[i] = None
        if parts:
            self._mixed_thr[i] = float(throughput or 0.0)
        pool = self.cluster.pools[p]
        as_planned = planned is not None and planned.pool == p
        placement = Placement(
            pool.pool_id, self._chips.item(i), tuple(nodes), pool.accelerator, pool.center,
            float(throughput or 0.0) if parts else self._thr.item(i, p),  # _rate_of
            self._total.item(i) - self._base.item(i), restore_s,
            planned.cost if as_planned else None, planned.run_s if as_planned else None,
            egress_cost, planned.note if as_planned else "", staging_s, parts,
        )
        rec.placement = placement
        self._run_end[i] = run_end_s(now, placement)
        if parts:
            for pool_id in [part.pool_id for part in parts]:
                if pool_id not in rec.pools:
                    rec.pools.append(pool_id)
        elif pool.pool_id not in rec.pools:
            rec.pools.append(pool.pool_id)
        return placement

    def _end_run(self, i: int, now: float, keep: str) -> None:
        """Take a job off its chips: account its time and commit its progress.

        keep: "all" (it finished), "full" (checkpointed on preemption/cancel), or
        "checkpoint" (killed: only the last periodic checkpoint survives).
        """
        rec = self._records[i]
        p = self._run_pool.item(i)
        if keep == "all":
            work = self._total.item(i)
        elif keep == "full" and rec.state in ON_CHIPS_STATES:  # _work_at, inline
            work = base = self._base.item(i)
            productive = now - self._seg_start.item(i) - self._seg_restore.item(i)
            if productive > 0:
                rate = self._mixed_thr.get(i) if self._mixed_thr else None
                if rate is None:
                    rate = self._thr.item(i, p)
                work = min(self._total.item(i), base + productive * rate)
        elif keep == "full":
            work = self._base.item(i)
        else:
            work = self._checkpoint_at(i, now)
        dt = now - self._acct.item(i)  # _account_one, inline: this runs for every stop
        if dt > 0:
            self._recv[i, p] += dt
            self._touched[i] = True
            self._pool_time[p] += dt
        self._acct[i] = now
        dur = max(0.0, now - self._seg_start.item(i))
        chips_i = self._chips.item(i)
        chip_s = dur * chips_i
        rec.chip_seconds += chip_s
        placement = rec.placement
        staged = min(placement.staging_s, dur) if placement is not None else 0.0
        parts = self._parts_on(i) if placement is not None and placement.parts else \
            [(p, chips_i, placement.nodes if placement is not None else ())]
        for q, chips, nodes in parts:
            # Each part at its own pool's price and power.
            rec.cost += (dur - staged) * chips / 3600.0 * self._price.item(q)
            rec.energy_kwh += dur * chips * self._watts.item(q) / 3.6e6
            self._busy_chip_s[q] += dur * chips
            free = self._node_free[q]
            down = self._node_down[q]
            for node, c in nodes:
                if down[node] == 0:
                    free[node] += c
            self._used[q] -= chips
        self._attained[i] += chip_s
        self._base[i] = work
        rec.done_work = rec.checkpoint_work = work
        if self._mixed_thr:
            self._mixed_thr.pop(i, None)
        self._run_pool[i] = -1
        self._on_chips.pop(i, None)
        rec.placement = None
        self._dirty = True

    def _end_runs(self, idx: list[int], now: float) -> None:
        """`_end_run(i, now, "full")` for many checkpointed jobs at once (a round's
        preemptions: a time-sharing policy stops tens a round, 760,000 over the Philly
        replay under max-min fairness). The same arithmetic in the same order per job
        (sums into shared pools by `np.add.at`, which adds in index order), so the numbers
        are bit for bit those of the loop. A mixed-chip gang's run takes the loop."""
        if len(idx) < BATCH_MIN or self._mixed_thr:
            for i in idx:
                self._end_run(i, now, keep="full")
            return
        records = self._records
        j = np.asarray(idx, dtype=np.int64)
        p = self._run_pool[j]
        base = self._base[j]
        productive = now - self._seg_start[j] - self._seg_restore[j]
        work = np.where(productive > 0,
                        np.minimum(self._total[j], base + productive * self._thr[j, p]), base)
        dt = now - self._acct[j]
        pos = dt > 0
        if pos.any():
            self._recv[j[pos], p[pos]] += dt[pos]
            self._touched[j[pos]] = True
            np.add.at(self._pool_time, p[pos], dt[pos])
        self._acct[j] = now
        dur = np.maximum(now - self._seg_start[j], 0.0)
        chips = self._chips[j]
        chip_s = dur * chips
        placements = [records[i].placement for i in idx]
        staging = np.array([0.0 if pl is None else pl.staging_s for pl in placements])
        cost = (dur - np.minimum(staging, dur)) * chips / 3600.0 * self._price[p]
        energy = dur * chips * self._watts[p] / 3.6e6
        np.add.at(self._busy_chip_s, p, chip_s)
        np.subtract.at(self._used, p, chips)
        self._attained[j] += chip_s
        self._base[j] = work
        self._run_pool[j] = -1
        node_free = self._node_free
        node_down = self._node_down
        on_chips = self._on_chips
        for i, q, pl, w, cs, c, e in zip(idx, p.tolist(), placements, work.tolist(),
                                         chip_s.tolist(), cost.tolist(), energy.tolist(),
                                         strict=True):
            rec = records[i]
            rec.chip_seconds += cs
            rec.cost += c
            rec.energy_kwh += e
            rec.done_work = rec.checkpoint_work = w
            rec.placement = None
            if pl is not None:
                free = node_free[q]
                down = node_down[q]
                for node, n in pl.nodes:
                    if down[node] == 0:
                        free[node] += n
            on_chips.pop(i, None)
        self._dirty = True

    def _checkpoint_and_stop_all(self, idx: list[int], now: float, why: str,
                                 done: str) -> None:
        """`_checkpoint_and_stop` for each job of idx that is on chips: each is told to
        checkpoint and stopped, then all runs end in one pass (`_end_runs`), then each is
        preempted: each job's transitions and numbers are those of the one-job path.

        With a listener (the live service) it is the one-job path, job by job: a listener
        may cancel another job of the batch or raise between two transitions, and only the
        one-job order leaves every job either on its chips or fully stopped then."""
        records = self._records
        if self.listener is not None:
            for i in idx:
                if records[i].state in ON_CHIPS_STATES:  # else a listener cancelled it
                    records[i].preemptions += 1
                    self._checkpoint_and_stop(i, now, why, done)
            return
        # No listener: nothing acts between these transitions, so each job on chips now is
        # checkpointed, stopped and preempted.
        stopping = [i for i in idx if records[i].state in ON_CHIPS_STATES]
        set_state = self._set_state
        stop = self.backend.stop
        for i in stopping:
            rec = records[i]
            rec.preemptions += 1
            set_state(i, JobState.CHECKPOINTING, now, why)
            stop(rec.job.job_id, now, "preempt")
        self._end_runs(stopping, now)
        for i in stopping:
            set_state(i, JobState.PREEMPTED, now, done)

    def _checkpoint_and_stop(self, i: int, now: float, why: str, done: str) -> bool:
        """Checkpoint job i and take it off its chips (a round's move, a pool removed, a
        resize); it pays restore_s when it next starts. False if a listener cancelled it
        while it was checkpointing (then it is stopped already)."""
        rec = self._records[i]
        self._set_state(i, JobState.CHECKPOINTING, now, why)
        if rec.state is not JobState.CHECKPOINTING:
            return False
        self.backend.stop(rec.job.job_id, now, "preempt")
        self._end_run(i, now, keep="full")
        self._set_state(i, JobState.PREEMPTED, now, done)
        return True

    def _account_one(self, i: int, now: float) -> None:
        p = self._run_pool.item(i)
        dt = now - self._acct.item(i)
        if dt > 0:
            self._recv[i, p] += dt
            self._touched[i] = True
            self._pool_time[p] += dt
        self._acct[i] = now

    def _account_all(self, now: float) -> None:
        if not self._on_chips:
            return
        idx = np.fromiter(self._on_chips, dtype=np.int64, count=len(self._on_chips))
        pools = self._run_pool[idx]
        dt = np.maximum(now - self._acct[idx], 0.0)
        self._recv[idx, pools] += dt
        self._touched[idx] = True
        np.add.at(self._pool_time, pools, dt)
        self._acct[idx] = now

    def _last_end_s(self) -> float:
        """When the last running job would finish (the backend's own formula, bit for bit:
        `_begin_run` stores each run's `run_end_s`)."""
        if not self._on_chips:
            return 0.0
        idx = np.fromiter(self._on_chips, dtype=np.int64, count=len(self._on_chips))
        return max(0.0, float(self._run_end[idx].max()))

"""A network change: the pools the engine places on are replaced while jobs run.

An operator adds, grows, shrinks or removes pools. `set_cluster` swaps the capacity in one
call, the same way in simulation and in the live service:

1. Runs that no longer fit (their pool is gone, or the nodes they hold are gone or smaller)
   are checkpointed and preempted through the normal path (the backend is told to stop, and
   the job pays its restore cost when it next starts). The runs that started first keep
   their chips.
2. Every per-pool column is rebuilt for the new pools; what is known about a kept pool
   (throughputs, received time, deficits, outages) follows it by pool id. A job has a rate on
   a new pool if its own throughput map names the pool, else the rate it has on a pool of the
   same chip.
3. A waiting job that no pool can run any more fails with the reason, as a new one would at
   submission.
4. The allocation is recomputed at the next round, which places on the new capacity.
"""

from __future__ import annotations

import numpy as np

from suanli.engine.cluster import Cluster
from suanli.engine.failures import Failure
from suanli.engine.types import ON_CHIPS_STATES, JobState


class ReshapeMixin:
    """Part of `Engine`: `set_cluster()`."""

    def set_cluster(self, cluster: Cluster, now_s: float | None = None) -> list[str]:
        """Replace the pools the engine places on; returns the ids of the runs preempted.

        Pools are matched by id. Capacity added takes effect at the next round; runs on
        capacity removed are checkpointed and requeued; waiting jobs no pool can run fail.
        """
        now = self.clock.now() if now_s is None else float(now_s)
        self._account_all(now)
        victims = self._runs_that_do_not_fit(cluster)
        for i in victims:
            self._preempt_for_reshape(i, now)
        old_of_new = np.array([self.cluster._index.get(pid, -1) for pid in cluster.pool_ids],
                              dtype=np.int64)
        self._swap_pools(cluster, old_of_new)
        self._fail_unrunnable(now)
        self._force_realloc = True
        self._changed(now)
        self._sample(now)
        return [self._records[i].job.job_id for i in victims]

    # -- 1. runs that lose their chips --------------------------------------------------------

    def _runs_that_do_not_fit(self, cluster: Cluster) -> list[int]:
        """Runs whose pool is gone or whose nodes the new pool no longer has, earliest kept."""
        free: dict[str, np.ndarray] = {}
        victims = []
        order = sorted(self._on_chips, key=lambda i: (self._seg_start[i], i))
        for i in order:
            pl = self._records[i].placement
            pool_id = pl.pool_id if pl is not None else None
            k = cluster._index.get(pool_id) if pool_id is not None else None
            if k is None or pl.parts:  # a mixed gang is placed again as a whole
                victims.append(i)
                continue
            pool = cluster.pools[k]
            if pool_id not in free:
                free[pool_id] = np.array([pool.node_chips(n) for n in range(pool.nodes)],
                                         dtype=np.int64)
            room = free[pool_id]
            if all(node < len(room) and room[node] >= chips for node, chips in pl.nodes):
                for node, chips in pl.nodes:
                    room[node] -= chips
            else:
                victims.append(i)
        return victims

    def _preempt_for_reshape(self, i: int, now: float) -> None:
        """Checkpoint and stop one run, as a round that moves a job does."""
        rec = self._records[i]
        pool_id = rec.placement.pool_id if rec.placement is not None else "?"
        rec.preemptions += 1
        self._checkpoint_and_stop(i, now, f"preempted: pool {pool_id} was removed or shrunk",
                                  "checkpointed")

    # -- 2. the per-pool columns --------------------------------------------------------------

    def _swap_pools(self, cluster: Cluster, old_of_new: np.ndarray) -> None:
        old_regions = self._region_names()
        old_node_down = self._node_down
        old_pool_time, old_busy = self._pool_time, self._busy_chip_s
        old_thr, old_acc = self._thr, list(self._pool_acc)
        self._init_pools(cluster)
        kept = old_of_new >= 0
        src = np.maximum(old_of_new, 0)

        def remap(col: np.ndarray) -> np.ndarray:
            out = np.zeros(col.shape[:-1] + (len(old_of_new),), dtype=col.dtype)
            out[..., kept] = col[..., src[kept]]
            return out

        self._pool_time = remap(old_pool_time)
        self._busy_chip_s = remap(old_busy)
        for name in ("_recv", "_deficit", "_alloc"):
            setattr(self, name, remap(getattr(self, name)))
        self._touched[:] = True  # new pools' received time starts at 0, not at the reset
        self._thr = remap(old_thr)
        self._rates_on_new_pools(old_thr, old_acc, kept)
        new_of_old = {int(o): k for k, o in enumerate(old_of_new) if o >= 0}
        self._run_pool = np.array([new_of_old.get(int(p), -1) for p in self._run_pool],
                                  dtype=np.int64)
        region_map = {i: self._region_index.get(r, -1) for i, r in enumerate(old_regions)}
        self._data_region = np.array([region_map.get(int(r), -1) if r >= 0 else -1
                                      for r in self._data_region], dtype=np.int64)
        for k, o in enumerate(old_of_new):
            if o >= 0:
                n = min(len(self._node_down[k]), len(old_node_down[o]))
                self._node_down[k][:n] = old_node_down[o][:n]
        self._remap_outages(new_of_old)
        self._used[:] = 0
        for i in self._on_chips:
            self._used[int(self._run_pool[i])] += int(self._chips[i])
        for p in range(self._P):
            self._refresh_pool(p)
        self.timeline_used = [remap(u) for u in self.timeline_used]

    def _rates_on_new_pools(self, old_thr: np.ndarray, old_acc: list[str],
                            kept: np.ndarray) -> None:
        """A new pool's rate: the job's own map, else its rate on a pool of the same chip."""
        n = self._n
        for k in np.flatnonzero(~kept).tolist():
            pid, acc = self._pool_ids[k], self._pool_acc[k]
            same = [j for j, a in enumerate(old_acc) if a == acc]
            fallback = old_thr[:n, same].max(axis=1) if same else np.zeros(n)
            own = np.array([float(self._records[i].job.throughput.get(pid, 0.0) or 0.0)
                            for i in range(n)])
            col = np.where(own > 0, own, fallback)
            self._thr[:n, k] = np.where(np.isfinite(col) & (col > 0), col, 0.0)

    def _remap_outages(self, new_of_old: dict[int, int]) -> None:
        """Outages under way or scheduled follow their nodes to the new pool indices."""
        for _at, _seq, _kind, payload in self._timers._heap:
            if isinstance(payload, Failure) and payload.nodes:
                payload.nodes = [(new_of_old[p], n) for p, n in payload.nodes
                                 if p in new_of_old and n < len(self._node_chips[new_of_old[p]])]

    # -- 3. jobs nobody can run any more ------------------------------------------------------

    def _fail_unrunnable(self, now: float) -> None:
        for i in list(self._active) + sorted(self._pending):
            rec = self._records[i]
            if rec.state.terminal or rec.state in ON_CHIPS_STATES:
                continue
            reason = self._unrunnable_reason(i)
            if reason:
                self._finish(i, JobState.FAILED, now, f"after a network change, {reason}")

"""Staging: a job whose dataset lives in another region moves it before it runs.

The transfer takes the fastest route of the network's link model (`suanli.plan.routing`, the
planner's own), from the nearest region that already holds a copy; its egress (GB x price per
GB along that route) is charged to the job. While the data moves the job holds its chips in the
STAGING state (the chip time is not billed); the simulated backend counts it like a restore.
A region that holds a copy (the source, or one a job staged to) is never sent it again.
"""

from __future__ import annotations

import math

import numpy as np

from suanli.engine.types import JobState


class StagingMixin:
    """Part of `Engine`: where datasets are, and what moving one to a pool takes."""

    def _staging_rows(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Per pool: (transfer seconds, egress cost) of job i's dataset; zeros without one."""
        need = self._records[i].job.dataset
        P = self._P
        network = self.cluster.network
        if need is None or need.size_gb <= 0 or network is None:
            return np.zeros(P), np.zeros(P)
        from suanli.plan.routing import route_table

        routes = route_table(network)
        have = self._data_at.setdefault(need.name, {need.region})
        best_s = np.full(len(routes.regions), math.inf)
        best_cost = np.zeros(len(routes.regions))
        for region in have:
            if region not in routes.index:
                continue
            tr = routes.transfer(region, need.size_gb)
            better = tr.fast_s < best_s
            best_s = np.where(better, tr.fast_s, best_s)
            best_cost = np.where(better, need.size_gb * tr.fast_price_per_gb, best_cost)
            best_s[routes.index[region]] = 0.0
            best_cost[routes.index[region]] = 0.0
        cols = self._staging_cols(routes)
        return best_s[cols], best_cost[cols]

    def _staging_cols(self, routes) -> np.ndarray:
        """The route table's region index of each pool (cached per table)."""
        cached = self.cluster.derived.get(("staging_cols", id(routes)))
        if cached is None:
            cached = np.array([routes.index.get(p.region, 0) for p in self.cluster.pools],
                              dtype=np.int64)
            self.cluster.derived[("staging_cols", id(routes))] = cached
        return cached

    def _staging(self, i: int, p: int) -> tuple[float, float]:
        """(seconds, egress cost) to move job i's dataset to pool p's region."""
        if self._records[i].job.dataset is None:
            return 0.0, 0.0
        secs, cost = self._staging_rows(i)
        return float(secs[p]), float(cost[p])

    def _begin_staging(self, i: int, p: int, now: float, stage_s: float, egress: float,
                       restore_s: float, why: str) -> None:
        rec = self._records[i]
        need = rec.job.dataset
        rec.egress_cost += egress
        rec.cost += egress
        rec.data_moved_gb += need.size_gb
        rec.staging_s += stage_s
        pool = self.cluster.pools[p]
        self._set_state(
            i, JobState.STAGING, now,
            f"placed on {pool.pool_id}{why}; staging dataset {need.name} ({need.size_gb:g} GB) "
            f"to {pool.region}: {stage_s:.0f} s, egress {egress:.2f}")
        self._push_timer(now + stage_s, "staged", (i, now, restore_s))

    def _data_arrived(self, i: int) -> None:
        """Job i's dataset is in its pool's region now (staged, or the job ran there)."""
        need = self._records[i].job.dataset
        p = int(self._run_pool[i])
        if need is not None and p >= 0:
            self._data_at.setdefault(need.name, {need.region}).add(self.cluster.pools[p].region)

    def _staged(self, payload, at: float) -> None:
        i, token, restore_s = payload
        rec = self._records[i]
        if rec.state is not JobState.STAGING or self._seg_start[i] != token:
            return  # stopped while its data moved
        self._data_arrived(i)
        need = rec.job.dataset
        self._set_state(i, JobState.STARTING, at, f"dataset {need.name} staged")
        if rec.state is not JobState.STARTING:
            return
        if restore_s > 0:
            self._push_timer(at + restore_s, "restored", (i, token))
        else:
            self._set_state(i, JobState.RUNNING, at, "running")

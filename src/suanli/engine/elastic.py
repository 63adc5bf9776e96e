"""Elastic jobs: a job with a count range runs at the count an elastic policy gives it.

An `EngineJob` with `elastic` set may run on any of its `ElasticSpeed.counts`, at the speed
its table gives for that count (Pollux, OSDI 2021; Sia, SOSP 2023: count and chip type are
chosen together and jobs are re-sized as load changes). The mechanism, in three stages:

1. **Offer** (`_elastic_options`): when the policy is elastic (declared at registration,
   `PolicyTraits.elastic`), its `PolicyState` carries every job's candidate counts and
   throughput per (count, pool) (`ElasticOptions`); a fixed-count job has one option, its
   gang. A fixed-count policy gets None and sees every job at its current count.
2. **Resize** (`_apply_counts`, at each reallocation): the allocation's `num_chips` gives a
   job's new count. A job on chips whose count changes is checkpointed and stopped through the
   normal preemption path (the backend is told to stop; its record counts a `resize`), so it
   pays its `restore_s` when the round starts it again at the new size, as a moved job does.
   A waiting job's count changes for free.
3. **Re-rate**: the job's gang size and throughput row become those of the new count, and its
   `EngineJob` is replaced by one with that `num_chips` and `throughput`, so the placer, the
   backend (a placement's `count`) and the records all see the count that runs.

Speeds are tables per pool id, turned into rows for the engine's current pools when first
needed and again after a network change (`set_cluster`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from suanli.engine.cluster import Cluster
from suanli.engine.types import ON_CHIPS_STATES, EngineJob
from suanli.errors import SuanliError
from suanli.policies.base import ElasticOptions


@dataclass(frozen=True, slots=True)
class ElasticRows:
    """One elastic job's speeds on the engine's pools: counts [C] and throughput [C, P]."""

    counts: np.ndarray
    throughput: np.ndarray
    cluster: Cluster  # the pools the columns are for


def elastic_rows(job: EngineJob, cluster: Cluster) -> ElasticRows:
    """The job's `ElasticSpeed` as arrays over `cluster`'s pools (0: cannot run there)."""
    assert job.elastic is not None
    counts = np.array(job.elastic.counts, dtype=np.int64)
    thr = np.zeros((len(counts), len(cluster)))
    for c_idx, c in enumerate(job.elastic.counts):
        for pool_id, rate in job.elastic.throughput_by_count[c].items():
            k = cluster._index.get(pool_id)
            if k is not None and rate > 0 and np.isfinite(rate):
                thr[c_idx, k] = rate
    return ElasticRows(counts, thr, cluster)


class ElasticMixin:
    """Part of `Engine`: candidate counts for an elastic policy, and re-sizing jobs."""

    def _check_elastic(self, job: EngineJob) -> None:
        """An elastic job starts from one of its counts."""
        if job.elastic is not None and job.num_chips not in job.elastic.counts:
            raise SuanliError(
                f"job {job.job_id}: num_chips {job.num_chips} is not one of its elastic counts "
                f"{job.elastic.counts}", field="num_chips", value=job.num_chips)

    def _rows_of(self, i: int) -> ElasticRows | None:
        job = self._records[i].job
        if job.elastic is None:
            return None
        rows = self._elastic_rows.get(i)
        if rows is None or rows.cluster is not self.cluster:
            rows = self._elastic_rows[i] = elastic_rows(job, self.cluster)
        return rows

    # -- 1. offer ---------------------------------------------------------------------------

    def _elastic_options(self, A: np.ndarray, thr: np.ndarray,
                         blocked: np.ndarray | None) -> ElasticOptions | None:
        """Every job's counts and speeds for an elastic policy (None for a fixed-count one).

        `thr` is the jobs' current rows as the policy sees them (blocked pools already 0).
        """
        if not self.traits.elastic:
            return None
        rows = {k: self._rows_of(int(i)) for k, i in enumerate(A.tolist())
                if self._records[int(i)].job.elastic is not None}
        width = max((len(r.counts) for r in rows.values()), default=1)
        J = len(A)
        counts = np.zeros((J, width), dtype=np.int64)
        speed = np.zeros((J, width, self._P))
        counts[:, 0] = self._chips[A]
        speed[:, 0, :] = thr
        for k, r in rows.items():
            n = len(r.counts)
            counts[k, :n] = r.counts
            counts[k, n:] = 0
            speed[k, :n] = r.throughput
            speed[k, n:] = 0.0
        if blocked is not None:
            speed[np.broadcast_to(blocked[:, None, :], speed.shape)] = 0.0
        is_elastic = np.zeros(J, dtype=bool)
        is_elastic[list(rows)] = [len(r.counts) > 1 for r in rows.values()]
        return ElasticOptions(counts=counts, throughput=speed,
                              restore_s=self._restore[A].copy(), elastic=is_elastic)

    # -- 2. resize ----------------------------------------------------------------------------

    def _apply_counts(self, chosen: np.ndarray | None, A: np.ndarray, now: float) -> None:
        """Give each elastic job the count the allocation chose (0 or None: keep)."""
        if chosen is None:
            return
        chosen = np.asarray(chosen, dtype=np.int64)
        if chosen.shape != (len(A),):
            raise SuanliError(f"policy {self.policy_name} returned num_chips of shape "
                              f"{chosen.shape}, expected {(len(A),)}",
                              field="policy", value=self.policy_name)
        changed = np.flatnonzero((chosen > 0) & (chosen != self._chips[A]))
        for k in changed.tolist():
            i, c = int(A[k]), int(chosen[k])
            rows = self._rows_of(i)
            if rows is None or c not in rows.counts:
                allowed = () if rows is None else tuple(rows.counts.tolist())
                raise SuanliError(
                    f"policy {self.policy_name} gave job {self._records[i].job_id} {c} chips; "
                    f"it may run on {allowed or 'its fixed count only'}",
                    field="policy", value=self.policy_name)
            rec = self._records[i]
            if rec.state in ON_CHIPS_STATES:
                self._stop_to_resize(i, c, now)
            if rec.state.terminal or rec.state in ON_CHIPS_STATES:
                continue  # a listener cancelled it meanwhile
            self._rerate(i, c, rows)

    def _stop_to_resize(self, i: int, new_count: int, now: float) -> None:
        """Checkpoint and stop a run whose count changes; it restarts (paying restore_s) at
        the new count when the round places it again."""
        rec = self._records[i]
        old = int(self._chips[i])
        rec.resizes += 1
        self._checkpoint_and_stop(i, now, f"resized from {old} to {new_count} chips by the policy",
                                  f"checkpointed to resize to {new_count} chips")

    # -- 3. re-rate ---------------------------------------------------------------------------

    def _rerate(self, i: int, count: int, rows: ElasticRows) -> None:
        """The job's gang size and throughput row become those of `count`."""
        c_idx = int(np.flatnonzero(rows.counts == count)[0])
        self._chips[i] = count
        self._thr[i] = rows.throughput[c_idx]
        job = self._records[i].job
        assert job.elastic is not None
        self._records[i].job = replace(job, num_chips=count,
                                       throughput=dict(job.elastic.throughput_by_count[count]))
        self._dirty = True

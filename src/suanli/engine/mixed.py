"""Mixed-chip gangs: one job holding chips in two pools of one center at once.

When the broker's best option that can start now is a two-pool split (`plan/hetero.py`:
layers sized to each chip's speed), the job is placed as one gang: both parts must have room,
it runs at the split's throughput, and it leaves both pools together (it ends, fails, is
cancelled, or an outage of either part's nodes or a reshape stops it). `_run_pool` holds the
primary part's pool (the policy's bookkeeping of received time stays per job and pool); the
parts are in the run's `Placement.parts`.

A running mixed gang is not moved by the round: the priority rule places whole gangs on one
pool, so the gang keeps its chips (they are taken out of the round's capacity) until it
leaves them. A job whose gang fits no single pool but a pair of pools of one center waits for
the broker, which places it only as a split.
"""

from __future__ import annotations

import numpy as np

from suanli.engine.runs import pick_nodes
from suanli.engine.types import PlacementPart


class MixedMixin:
    """Part of `Engine`: taking, holding and releasing a mixed-chip gang's chips."""

    def _rate_of(self, i: int, p: int) -> float:
        """The run's work units per second: the split's for a mixed gang, else the pool's."""
        rate = self._mixed_thr.get(i)
        return float(self._thr[i, p]) if rate is None else rate

    def _parts_on(self, i: int) -> list[tuple[int, int, tuple[tuple[int, int], ...]]]:
        """(pool index, chips, nodes) of each part of the run of job i (one for a single pool)."""
        pl = self._records[i].placement
        if pl is None:
            return []
        if not pl.parts:
            return [(int(self._run_pool[i]), int(self._chips[i]), pl.nodes)]
        return [(self.cluster.index(part.pool_id), part.count, part.nodes) for part in pl.parts]

    def _may_split(self, i: int) -> bool:
        """A job that fits no single pool but may run over two pools of distinct chips in one
        center (the planner decides whether a split is worth it)."""
        from suanli.plan.planner import HETERO_KINDS  # the kinds the planner may split

        job = self._records[i].job
        spec = job.spec
        if spec is None or spec.kind not in HETERO_KINDS or self.cluster.network is None:
            return False
        runnable = self._thr[i] > 0
        c = int(self._chips[i])
        centers = np.array([pool.center for pool in self.cluster.pools])
        for center in set(centers[runnable].tolist()):
            here = runnable & (centers == center)
            accs = {self._pool_acc[k] for k in np.flatnonzero(here)}
            if len(accs) > 1 and int(self._static_cap[here].sum()) >= c:
                return True
        return False

    def _assign_pinned(self, A: np.ndarray) -> np.ndarray:
        """The priority rule with running mixed gangs kept where they are."""
        if not self._mixed_thr:
            return self._assign(A)
        pinned = np.array([int(i) in self._mixed_thr for i in A], dtype=bool)
        held = np.zeros(self._P, dtype=np.int64)
        for i in A[pinned].tolist():
            for p, chips, _ in self._parts_on(i):
                held[p] += chips
        target = self._run_pool[A].copy()
        free = ~pinned
        if free.any():
            cap = self._cap_up
            self._cap_up = np.maximum(cap - held, 0)
            try:
                target[free] = self._assign(A[free])
            finally:
                self._cap_up = cap
        return target

    def _held_by_mixed(self, A: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Correction to `chips per target pool` for gangs that hold chips in two pools."""
        fix = np.zeros(self._P, dtype=np.int64)
        for k in np.flatnonzero(target >= 0).tolist():
            i = int(A[k])
            if i in self._mixed_thr and int(self._run_pool[i]) == int(target[k]):
                fix[int(target[k])] -= int(self._chips[i])
                for p, chips, _ in self._parts_on(i):
                    fix[p] += chips
        return fix

    def _take_parts(self, i: int, split) -> tuple[PlacementPart, ...]:
        """Take a split's chips in each of its pools (best-fit nodes, as for one pool)."""
        parts = []
        for p, chips, layers in split:
            pool = self.cluster.pools[p]
            free = self._node_free[p]
            nodes = pick_nodes(free, chips, pool.chips_per_node)
            for node, c in nodes:
                free[node] -= c
            self._used[p] += chips
            parts.append(PlacementPart(pool.pool_id, pool.accelerator, chips, nodes, layers))
        return tuple(parts)

"""Pools a job avoids for a while: its backend found no live node to run it there.

A live backend (Ray) can be asked to start a job on a center none of whose machines is
attached. That is not the job's failure nor a lost node, so it costs no retry: the job goes
back to QUEUED with the backend's reason, the pool is masked out for that job for
`unplaceable_avoid_s`, at least two rounds (as a link outage masks pools cut from a job's data),
and the scheduler places it elsewhere, or on the same pool again once the time is up (a machine
may have joined). A job that runs elsewhere meanwhile keeps avoiding the pool while it runs, so
it is not moved back to a pool that may still have no node.
"""

from __future__ import annotations

import numpy as np

from suanli.engine.types import JobState

UNPLACEABLE_AVOID_S = 60.0


class AvoidMixin:
    """Part of `Engine`: the per-job avoided pools behind the "unplaceable" backend event."""

    unplaceable_avoid_s: float = UNPLACEABLE_AVOID_S

    def _requeue_unplaceable(self, i: int, now: float, detail: str) -> None:
        """Back to QUEUED, no retry counted; the pool it was placed on is avoided a while."""
        pool_id = self._pool_ids[int(self._run_pool[i])]
        self._end_run(i, now, keep="full")
        period_s = self._avoid_period_s()
        self._avoid_pool(i, pool_id, now + period_s)
        self._set_state(i, JobState.QUEUED, now,
                        f"{detail or 'no live node'}; waiting: {pool_id} avoided for "
                        f"{period_s:g}s, no retry used")
        self._changed(now)

    def _avoid_period_s(self) -> float:
        return max(self.unplaceable_avoid_s, 2.0 * self.round_s)  # past the next round

    def _avoid_pool(self, i: int, pool_id: str, until: float) -> None:
        self._avoid.setdefault(i, {})[pool_id] = until
        self._push_timer(until, "unavoid", (i, pool_id, until))

    def _unavoid(self, payload: tuple[int, str, float], now: float) -> None:
        i, pool_id, until = payload
        pools = self._avoid.get(i)
        if pools is None or pools.get(pool_id) != until:
            return  # avoided again since: a later timer ends it
        if i in self._on_chips:  # running elsewhere: do not move it back to a doubtful pool
            self._avoid_pool(i, pool_id, now + self._avoid_period_s())
            return
        del pools[pool_id]
        if not pools:
            del self._avoid[i]
        self._changed(now)

    def _avoid_mask(self, idx: np.ndarray) -> np.ndarray | None:
        """[len(idx), P] True where the job avoids the pool; None when no job avoids any."""
        if not self._avoid:
            return None
        index = {pid: k for k, pid in enumerate(self._pool_ids)}
        mask = np.zeros((len(idx), self._P), dtype=bool)
        for row, i in enumerate(idx.tolist()):
            for pool_id in self._avoid.get(i, ()):
                k = index.get(pool_id)
                if k is not None:
                    mask[row, k] = True
        return mask

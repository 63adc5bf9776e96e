"""Outages: a node, a pool, a center or a WAN link down for a while.

`parse_failure` turns a target (`center/pool/<n>`, `center/pool`, a center, `regionA~regionB`)
into the nodes or the link it takes down. When it starts, the jobs on those chips (or whose
data lives across the link) lose the work since their last checkpoint and wait to be placed
again; outages do not use up a job's retries.
"""

from __future__ import annotations

import numpy as np

from suanli.engine.cluster import Cluster
from suanli.engine.types import JobState
from suanli.errors import SuanliError

FailureScope = str  # "node" | "pool" | "center" | "link"


class Failure:
    __slots__ = ("scope", "target", "at_s", "duration_s", "nodes", "link")

    def __init__(self, scope: str, target: str, at_s: float, duration_s: float) -> None:
        self.scope = scope
        self.target = target
        self.at_s = at_s
        self.duration_s = duration_s
        self.nodes: list[tuple[int, int]] = []  # (pool index, node index)
        self.link: frozenset[str] | None = None


def parse_failure(
    cluster: Cluster, node_chips: list[np.ndarray], scope: FailureScope, target: str,
    at_s: float, duration_s: float,
) -> Failure:
    """The outage a scope and target name; user errors for a bad scope, target or duration."""
    if duration_s <= 0:
        raise SuanliError("failure duration_s must be positive", field="duration_s",
                          value=duration_s)
    f = Failure(scope, target, at_s, duration_s)
    if scope == "node":
        pool_id, _, node_text = target.rpartition("/")
        p = cluster.index(pool_id)
        try:
            node = int(node_text)
        except ValueError:
            raise SuanliError(f"node target must be center/pool/<index>, got {target!r}",
                              field="target", value=target) from None
        if not 0 <= node < len(node_chips[p]):
            raise SuanliError(
                f"pool {pool_id} has nodes 0..{len(node_chips[p]) - 1}, got {node}",
                field="target", value=target,
            )
        f.nodes = [(p, node)]
    elif scope == "pool":
        p = cluster.index(target)
        f.nodes = [(p, n) for n in range(len(node_chips[p]))]
    elif scope == "center":
        f.nodes = [
            (p, n)
            for p in cluster.pools_in_center(target)
            for n in range(len(node_chips[p]))
        ]
    elif scope == "link":
        a, sep, b = target.partition("~")
        if not sep:
            raise SuanliError(f"link target must be regionA~regionB, got {target!r}",
                              field="target", value=target)
        f.link = frozenset((a.strip(), b.strip()))
    else:
        raise SuanliError(
            f"failure scope must be node, pool, center or link, got {scope!r}",
            field="scope", value=scope,
        )
    return f


class FailuresMixin:
    """Part of `Engine`: outages starting and ending, and link-outage masks."""

    def _fail_start(self, f: Failure, now: float) -> None:
        self._push_timer(now + f.duration_s, "recover", f)
        reason = f"failure: {f.scope} {f.target} down"
        victims: dict[int, None] = {}
        if f.link is not None:
            self._down_links[f.link] = self._down_links.get(f.link, 0) + 1
            for i in list(self._on_chips):
                if self._link_blocked(i, int(self._run_pool[i])):
                    victims[i] = None
        touched = set()
        for p, n in f.nodes:
            self._node_down[p][n] += 1
            if self._node_down[p][n] == 1:
                touched.add(p)
                for i in list(self._on_chips):  # a mixed gang goes if either part is hit
                    for q, _, nodes in self._parts_on(i):
                        if q == p and any(node == n for node, _ in nodes):
                            victims[i] = None
        for i in victims:
            rec = self._records[i]
            self._end_run(i, now, keep="checkpoint")
            rec.interruptions += 1
            self._set_state(i, JobState.PREEMPTED, now, reason)
            self.backend.stop(rec.job.job_id, now, "failure")
        for p in touched:
            self._refresh_pool(p)
        self._changed(now)
        self._sample(now)

    def _fail_end(self, f: Failure, now: float) -> None:
        if f.link is not None:
            left = self._down_links.get(f.link, 0) - 1
            if left > 0:
                self._down_links[f.link] = left
            else:
                self._down_links.pop(f.link, None)
        touched = set()
        for p, n in f.nodes:
            self._node_down[p][n] -= 1
            if self._node_down[p][n] == 0:
                touched.add(p)
        for p in touched:
            self._refresh_pool(p)
        self._changed(now)

    def _refresh_pool(self, p: int) -> None:
        """Recompute a pool's up capacity and free chips per node from scratch."""
        up = self._node_down[p] == 0
        free = np.where(up, self._node_chips[p], 0)
        for i in self._on_chips:
            for q, _, nodes in self._parts_on(i):
                if q == p:
                    for node, chips in nodes:
                        free[node] -= chips
        self._node_free[p] = np.maximum(free, 0)
        self._cap_up[p] = int(self._node_chips[p][up].sum())

    def _link_blocked(self, i: int, p: int) -> bool:
        r = int(self._data_region[i])
        if r < 0 or not self._down_links:
            return False
        rp = int(self._pool_region[p])
        if r == rp:
            return False
        names = self._region_names()
        return frozenset((names[r], names[rp])) in self._down_links

    def _region_names(self) -> list[str]:
        return sorted(self._region_index, key=self._region_index.__getitem__)

    def _blocked_mask(self, idx: np.ndarray) -> np.ndarray | None:
        """[len(idx), P] True where a link outage cuts a job from its data, or the job avoids
        the pool (engine/avoid.py)."""
        avoid = self._avoid_mask(idx)
        if not self._down_links:
            return avoid
        names = self._region_names()
        R = len(names)
        down = np.zeros((R, R), dtype=bool)
        for link in self._down_links:
            ends = [self._region_index[r] for r in link if r in self._region_index]
            if len(ends) == 2:
                down[ends[0], ends[1]] = down[ends[1], ends[0]] = True
        dr = self._data_region[idx]
        mask = np.zeros((len(idx), self._P), dtype=bool)
        has = dr >= 0
        if has.any():
            mask[has] = down[dr[has]][:, self._pool_region]
        return mask if avoid is None else mask | avoid

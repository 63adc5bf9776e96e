"""Gavel's priority placement: which job gets which pool's chips this round.

Each job's priority on a pool is its allocated time fraction X[j, p] over the share of the
pool's time it received since the last reallocation. Whole gangs are placed greedily in
priority order on pools with enough chips left (ties are documented in `_assign`).
"""

from __future__ import annotations

import numpy as np

from suanli.engine.records import any_per_row


class PriorityMixin:
    """Part of `Engine`: the per-round priority rule."""

    def _assign(self, A: np.ndarray) -> np.ndarray:
        """Gavel's priority rule: whole gangs, greedily, in priority order.

        Returns the pool index for each job of A (-1: not placed this round).
        """
        P = self._P
        X = self._alloc.take(A, axis=0)
        if not self.work_conserving:
            # Only jobs with an allocation can be placed: the rule runs on those rows alone
            # (a long queue of unallocated jobs costs one pass here, not one per array).
            rows = np.flatnonzero(any_per_row(X > 0))
            if len(rows) < len(A):
                target = np.full(len(A), -1, dtype=np.int64)
                if len(rows):
                    target[rows] = self._assign(A[rows])
                return target
        thr = self._thr.take(A, axis=0)
        blocked = self._blocked_mask(A)
        if blocked is not None:
            thr = np.where(blocked, 0.0, thr)
        recv = self._recv.take(A, axis=0)
        pool_time = self._pool_time
        if not self.gavel_mode and len(self._class_members) < P:
            return self._assign_by_class(A, X, thr, recv)
        prio = priorities(X, recv, pool_time, thr)
        runs = thr > 0
        chips = self._chips[A]
        cap = self._cap_up
        ok = runs & (chips[:, None] <= cap[None, :])
        if not self.work_conserving:
            ok &= prio > 0
        jj, pp = np.nonzero(ok)
        if len(jj) == 0:
            return np.full(len(A), -1, dtype=np.int64)
        pr = prio[jj, pp]
        de = self._deficit[A[jj], pp]
        xx = X[jj, pp]
        if self.gavel_mode:
            order_pools = list(range(P))
            if self._shuffle_pools:
                self._pool_rng.shuffle(order_pools)
            rank = np.empty(P, dtype=np.int64)
            rank[order_pools] = np.arange(P)
            # Per pool in `order_pools`, by priority, deficit, allocation (all descending);
            # the sort is stable, so equal keys keep job order as in Gavel.
            order = np.lexsort((jj, -xx, -de, -pr, rank[pp]))
            return _fill_pools(order_pools, jj[order], pp[order], chips, cap)
        # Ties (jobs the allocation has not seen yet have priority 0): keep running jobs
        # where they are, then prefer the faster pool, then the earlier job.
        running_here = self._run_pool[A[jj]] == pp
        # (job, pool) as one key: pairs come out of nonzero in that order, so it is their index
        order = np.lexsort((np.arange(len(jj)), -thr[jj, pp], ~running_here, -xx, -de, -pr))
        return _greedy_in_order(jj[order], pp[order], chips, cap)

    def _assign_by_class(
        self, A: np.ndarray, X: np.ndarray, thr: np.ndarray, recv: np.ndarray
    ) -> np.ndarray:
        """The priority rule over classes of identical chips, then a pool within the class.

        A network often has several pools of one chip (three H800 pools in three centers).
        Spreading a job's time over them would move it between centers every round for
        nothing, so priorities use the class's summed fraction and received time; within the
        class a job stays on the pool it runs on if it can, else takes the pool where its
        allocation is largest, then the one with the most chips left.
        """
        M = self._class_onehot
        members = self._class_members
        C = len(members)
        cap = self._cap_up
        Xc = X @ M
        recv_c = recv @ M
        pool_time_c = self._pool_time @ M
        thr_c = np.column_stack([thr[:, m].max(axis=1) for m in members])
        cap_c = np.array([cap[m].max() for m in members])
        prio = priorities(Xc, recv_c, pool_time_c, thr_c)
        chips = self._chips[A]
        ok = (thr_c > 0) & (chips[:, None] <= cap_c[None, :])
        if not self.work_conserving:
            ok &= prio > 0
        jj, cc = np.nonzero(ok)
        target = np.full(len(A), -1, dtype=np.int64)
        if len(jj) == 0:
            return target
        run_pool = self._run_pool[A]
        run_class = np.where(run_pool >= 0, self._pool_class[np.maximum(run_pool, 0)], -1)
        running_here = run_class[jj] == cc
        order = np.lexsort((cc, jj, -thr_c[jj, cc], ~running_here,
                            -Xc[jj, cc], -(self._deficit[A] @ M)[jj, cc], -prio[jj, cc]))
        js = jj[order].tolist()
        cs = cc[order].tolist()
        left = cap.tolist()
        chips_l = chips.tolist()
        run_l = run_pool.tolist()
        min_chips = int(chips.min())
        class_left = [max(left[p] for p in m) for m in members]
        n_full = sum(1 for v in class_left if v < min_chips)
        placed = 0
        n_jobs = len(A)
        for j, c in zip(js, cs, strict=True):
            if target[j] >= 0 or class_left[c] < chips_l[j]:
                continue
            need = chips_l[j]
            cur = run_l[j]
            best = -1
            if cur >= 0 and self._pool_class[cur] == c and left[cur] >= need and thr[j, cur] > 0:
                best = cur
            else:
                best_key = None
                for p in members[c]:
                    if left[p] >= need and thr[j, p] > 0:
                        key = (X[j, p], left[p], -p)
                        if best_key is None or key > best_key:
                            best, best_key = p, key
            if best < 0:
                continue
            left[best] -= need
            target[j] = best
            placed += 1
            if placed == n_jobs:
                break
            was_full = class_left[c] < min_chips
            class_left[c] = max(left[p] for p in members[c])
            if not was_full and class_left[c] < min_chips:
                n_full += 1
                if n_full == C:
                    break
        return target


def priorities(X: np.ndarray, recv: np.ndarray, pool_time: np.ndarray,
               thr: np.ndarray) -> np.ndarray:
    """Gavel's priority X / (share of the pool's time received), per job and pool (or chip
    class): X x 1e9 where the job received none of it, 0 where X is 0 or the job cannot run.
    Division only where defined, so there are no warnings to mute."""
    frac = np.divide(recv, pool_time, out=np.zeros_like(recv), where=pool_time > 0)
    prio = np.divide(X, frac, out=X * 1e9, where=frac > 0)
    prio[(X <= 0) | (thr <= 0)] = 0.0
    return prio


def _fill_pools(order_pools: list[int], js: np.ndarray, ps: np.ndarray, chips: np.ndarray,
                cap: np.ndarray) -> np.ndarray:
    """The greedy fill when candidates are sorted pool by pool (Gavel mode): each pool in turn
    takes its best candidates not yet placed whose gangs fit. The same result as one greedy
    pass over the sorted (job, pool) pairs, a pool at a time in NumPy."""
    target = np.full(len(chips), -1, dtype=np.int64)
    placed = np.zeros(len(chips), dtype=bool)
    uniform = bool((chips == chips[0]).all())
    min_chips = int(chips.min())
    for p in order_pools:
        room = int(cap[p])
        if room < min_chips:
            continue
        cand = js[ps == p]
        cand = cand[~placed[cand]]
        if uniform:
            take = cand[: room // int(chips[0])]
        else:
            picks = []
            for j, c in zip(cand.tolist(), chips[cand].tolist(), strict=True):
                if c <= room:
                    picks.append(j)
                    room -= c
                    if room < min_chips:
                        break
            take = np.array(picks, dtype=np.int64)
        placed[take] = True
        target[take] = p
    return target


def _greedy_in_order(js: np.ndarray, ps: np.ndarray, chips: np.ndarray,
                     cap: np.ndarray) -> np.ndarray:
    """One greedy pass over (job, pool) pairs in order: a pair is taken when its job is not
    placed yet and its gang fits what is left of the pool.

    A pair that cannot be taken when reached never can be later (pools only fill, placed jobs
    stay placed), so after a run of such pairs the rest of the list is filtered in NumPy,
    dropping every pair that is dead by now; the Python loop then sees mostly pairs it takes.
    """
    target = np.full(len(chips), -1, dtype=np.int64)
    where = [-1] * len(chips)  # target as a list: the loop reads it for every pair
    chips_l = chips.tolist()
    left = cap.tolist()
    min_chips = int(chips.min())
    placed = 0
    n_jobs = len(chips)
    while len(js):
        skipped = 0
        stop_at = len(js)
        for n, (j, p) in enumerate(zip(js.tolist(), ps.tolist(), strict=True)):
            c = chips_l[j]
            if where[j] >= 0 or c > left[p]:
                skipped += 1
                if skipped >= 32:
                    stop_at = n + 1
                    break
                continue
            left[p] -= c
            where[j] = target[j] = p
            placed += 1
            if placed == n_jobs or max(left) < min_chips:
                return target
        else:
            return target
        js, ps = js[stop_at:], ps[stop_at:]
        live = (target[js] < 0) & (chips[js] <= np.asarray(left)[ps])
        js, ps = js[live], ps[live]
    return target

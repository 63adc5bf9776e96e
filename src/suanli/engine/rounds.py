"""Rounds: when one is needed, when the allocation is recomputed, and applying its placement.

A round accounts the time each job received, recomputes the policy's allocation if allowed
(Gavel's reset of deficits and received time), places gangs by priority (`priority.py`),
stops the jobs that lose or change chips and starts the newly placed ones.
"""

from __future__ import annotations

import math

import numpy as np

from suanli.engine.records import any_per_row
from suanli.engine.timers import EPS
from suanli.engine.types import ON_CHIPS_STATES, WAITING_STATES, JobState
from suanli.errors import SuanliError
from suanli.policies.base import Allocation, PolicyState

# Gavel's minimum_time_between_allocation_resets: the allocation is recomputed at most this
# often (when something changed); jobs that arrive in between run on chips left idle.
DEFAULT_REALLOC_INTERVAL_S = 1920.0


class RoundsMixin:
    """Part of `Engine`: the round mechanism."""

    def _round_if_due(self, now: float) -> None:
        """Run the round if it is needed and due; remember whether the next one is due."""
        if self._next_round_s is not None and self._round_needed():
            if (self._next_round_s < now - EPS and not self.gavel_mode
                    and not self._round_promised):
                # Rounds were skipped while nothing needed one: return to the round grid.
                k = math.ceil((now - self._next_round_s) / self.round_s - EPS)
                self._next_round_s += k * self.round_s
            if self._next_round_s <= now + EPS:
                self._round(now)  # late (a wall clock past the round): at now
        self._round_promised = self._next_round_s is not None and self._round_needed()

    def _round_needed(self) -> bool:
        if self._stuck and not self._dirty:
            return False
        if self._dirty:
            return True
        waiting = len(self._active) > len(self._on_chips)
        if self.gavel_mode:
            return bool(self._on_chips) or waiting
        return waiting and bool(self._on_chips)

    def _realloc_allowed(self, now: float, A: np.ndarray, shown: np.ndarray) -> bool:
        """Whether the allocation may be recomputed now; `shown`: `_policy_view(A)`."""
        if self._force_realloc or not self._ever_realloc:
            return True
        if self.gavel_mode:
            # Gavel's test: `time since last reset >= minimum interval or last reset == 0`
            # (the second clause keeps recomputing until a reset happens at a time > 0).
            return (now - self._last_realloc_s >= self.realloc_interval_s
                    or self._last_realloc_s == 0)
        if now - self._last_realloc_s >= self.realloc_interval_s - EPS:
            return True
        if self.work_conserving:
            return False  # a waiting job runs on chips the allocated jobs leave idle
        # A strict policy (FIFO) places only the jobs its allocation gives a pool: do not leave
        # chips idle for a waiting job the last allocation gave none of them (a new job, or one
        # queued behind jobs that have ended since). Only the jobs the policy is shown count:
        # a job behind the head of the queue cannot be given chips however the free chips fit
        # it, so reallocating for it would only reset deficits (and let `fifo_perf` re-place
        # running jobs) at an arbitrary moment; on the Philly replay that was a quarter of
        # FIFO's reallocations. The interval above still reallocates regularly.
        waiting = shown[self._run_pool[shown] < 0]
        free = self._cap_up - self._used
        waiting = waiting[self._chips[waiting] <= free.max(initial=0)]  # the gangs that fit
        if len(waiting) == 0:
            return False
        fits = (self._thr.take(waiting, axis=0) > 0) & (
            self._chips[waiting][:, None] <= free[None, :])
        fits &= ~(self._has_alloc[waiting][:, None] & (self._alloc.take(waiting, axis=0) > 0))
        return bool(fits.any())

    def _round(self, now: float) -> None:
        self.rounds += 1
        self._account_all(now)
        A = self._active_array()
        if self._alloc_dirty and len(A):
            shown = self._policy_view(A)
            if self._realloc_allowed(now, A, shown):
                self._reallocate(now, A, shown)
                A = self._active_array()  # rejected jobs leave
        self._force_realloc = False
        placed_any = False
        if len(A):
            target = self._assign_pinned(A)
            if self.placer is not None:
                target = self._broker_pass(A, target, now)
            placed_any = self._apply(target, A, now)
        self._dirty = False
        self._sample(now)
        running = bool(self._on_chips)
        if not self._active:
            self._next_round_s = None
            return
        if self.gavel_mode:
            if running:
                self._next_round_s = min(now + self.round_s, self._last_end_s())
            elif self._pending:
                self._next_round_s = None  # Gavel jumps to the next arrival
            elif not self._forced_last:
                # No arrivals left and nothing runs: Gavel forces a reallocation.
                self._force_realloc = True
                self._alloc_dirty = True
                self._forced_last = True
                self._next_round_s = now
            else:
                self._next_round_s = None
                self._stuck = True
            if running or placed_any:
                self._forced_last = False
        else:
            self._next_round_s = now + self.round_s
            if not running and not placed_any:
                self._stuck = True  # nothing can change until an event arrives

    def _policy_view(self, A: np.ndarray) -> np.ndarray:
        """The jobs of A the policy is shown: all of them, or for a `head_of_queue` policy the
        jobs on chips and the head of the queue.

        The head is the shortest arrival-order prefix of A whose gangs need more chips than
        the cluster has (all of A if none). A strict arrival-order policy cannot place all of
        the prefix, so it stops at a job inside it and gives nothing to any job behind: the
        view's allocation is the full one, with rows of zeros left out.
        """
        if not self.traits.head_of_queue or len(A) < 2:
            return A
        # Jobs join A as they arrive, so A is usually in FIFO order (arrival, then index)
        # already; the view keeps A's order either way, so the policy sees its rows as it
        # would see them in the full state.
        rank = None if self._active_in_order else np.lexsort((A, self._arrival[A]))
        order = A if rank is None else A[rank]
        chips = int(self._cap_up.sum())
        need = np.cumsum(self._chips[order[:chips + 1]])  # every gang takes at least a chip
        k = int(np.searchsorted(need, chips, side="right"))
        if k + 1 >= len(order):
            return A
        shown = self._run_pool[A] >= 0
        shown[slice(0, k + 1) if rank is None else rank[:k + 1]] = True
        return A[shown]

    def _policy_state(self, now: float, A: np.ndarray) -> PolicyState:
        thr = self._thr.take(A, axis=0)
        blocked = self._blocked_mask(A)
        if blocked is not None:
            thr[blocked] = 0.0
        done = self._work_now(A, now)
        running_on = self._run_pool[A].copy()
        attained = self._attained[A].copy()
        on = running_on >= 0
        if on.any():
            attained[on] += (now - self._seg_start[A[on]]) * self._chips[A[on]]
        ref = self._ref_thr[A].copy()
        missing = ref <= 0
        if missing.any():
            ref[missing] = thr[missing].max(axis=1)
        return PolicyState(
            now_s=now,
            job_ids=A.copy(),
            num_chips=self._chips[A].copy(),
            priority=self._prio[A].copy(),
            arrival_s=self._arrival[A].copy(),
            remaining_work=np.maximum(self._total[A] - done, 0.0),
            attained_service_s=attained,
            throughput=thr,
            pool_ids=list(self._pool_ids),
            pool_accelerators=list(self._pool_acc),
            capacity=self._cap_up.astype(float),
            price_per_chip_hour=self._price.copy(),
            deadline_s=self._deadline[A].copy(),
            tenant=self._tenant[A].tolist() if self._has_tenants else [None] * len(A),
            running_on=running_on,
            reference_throughput=ref,
            elastic=self._elastic_options(A, thr, blocked),
        )

    def _reallocate(self, now: float, A: np.ndarray, shown: np.ndarray) -> None:
        """Gavel's reset of deficits and received time, then the policy on the jobs `shown`
        (`_policy_view(A)`); the rest of A is allocated nothing."""
        # Gavel's reset: credit each job's deficit with the time it should have had under the
        # old allocation minus what it received, then restart the received-time counters.
        elapsed = now - self._last_realloc_s if self._ever_realloc else 0.0
        # Only touched rows (an allocation, or time received, since the last reset) can have
        # a deficit to credit or received time to reset: a deep queue's other rows are
        # skipped. Rows are gathered with `take` and only changed rows written back: fancy
        # indexing of [jobs, pools] rows is ~10x slower.
        T = A[self._touched[A]]
        recv = self._recv.take(T, axis=0)
        old = self._alloc.take(T, axis=0)
        delta = old * elapsed
        unseen = ~self._has_alloc[T]
        if unseen.any():
            delta[unseen] = 0.0
        delta -= recv - self._half_round
        changed = any_per_row(delta != 0.0)
        self._deficit[T[changed]] += delta[changed]
        self._recv[T[any_per_row(recv != self._half_round)]] = self._half_round
        self._touched[T] = False
        self._pool_time[:] = self._half_round * len(A)
        state = self._policy_state(now, shown)
        alloc: Allocation = self.policy(state)
        X = np.asarray(alloc.fractions, dtype=float)
        if X.shape != (len(shown), self._P):
            raise SuanliError(
                f"policy {self.policy_name} returned fractions of shape {X.shape}, "
                f"expected {(len(shown), self._P)}",
                field="policy", value=self.policy_name,
            )
        X = np.where(np.isfinite(X) & (X > 0), X, 0.0)
        if len(shown) < len(A):
            self._alloc[T[any_per_row(old > 0)]] = 0.0  # behind the head of the queue: nothing
        self._alloc[shown] = X
        self._touched[shown[any_per_row(X > 0)]] = True
        self._has_alloc[A] = True
        self._apply_counts(alloc.num_chips, shown, now)  # elastic jobs' new counts (elastic.py)
        self._last_realloc_s = now
        self._ever_realloc = True
        self._alloc_dirty = False
        self.reallocations += 1
        if alloc.rejected:
            note = f": {alloc.note}" if alloc.note else ""
            for i in sorted(int(j) for j in alloc.rejected):
                if 0 <= i < self._n and i in self._active:
                    rec = self._records[i]
                    if rec.state in ON_CHIPS_STATES:
                        self._end_run(i, now, keep="full")
                        self._finish(i, JobState.FAILED, now, f"rejected by policy{note}")
                        self.backend.stop(rec.job.job_id, now, "cancel")
                    else:
                        self._finish(i, JobState.FAILED, now, f"rejected by policy{note}")

    def _apply(self, target: np.ndarray, A: np.ndarray, now: float) -> bool:
        """Stop the jobs that lose or change chips, then start the newly placed ones.

        target[k] is the pool chosen for job A[k] this round (-1: none).
        """
        current = self._run_pool[A]
        moved = current != target
        if not moved.any():
            self._planned.clear()
            return bool(self._on_chips)  # nobody stops or starts: a round that costs nothing
        stop = A[(current >= 0) & moved].tolist()
        start_mask = (target >= 0) & moved
        start_jobs = A[start_mask].tolist()
        start_pools = target[start_mask].tolist()
        self._checkpoint_and_stop_all(stop, now, "preempted by the round", "checkpointed")
        planned_by_job = self._planned
        # The gangs' chips are taken at once unless a mixed-chip gang starts (its parts take
        # chips in turn with the others) or a listener may cancel a job between two starts
        # (the loop then takes each gang's chips as it starts, as the one-job path does).
        split = any(c.split for c in planned_by_job.values()) if planned_by_job else False
        taken = None
        if not split and self.listener is None:
            taken = self._take_chips_all(start_jobs, start_pools)
        try:
            started = self._start_all(start_jobs, start_pools, taken, now)
        finally:
            # After a backend that raised, chips no run claimed are not held by anyone.
            for k, nodes in enumerate(taken or ()):
                if nodes is not None:
                    self._give_back_chips(start_jobs[k], start_pools[k], nodes)
        self._planned.clear()  # choices for jobs a listener cancelled meanwhile
        return started or bool(self._on_chips)

    def _start_all(self, start_jobs: list[int], start_pools: list[int],
                   taken: list[tuple | None] | None, now: float) -> bool:
        """Start each job on its pool; True if any started. `taken`: the nodes
        `_take_chips_all` took for each (None: each takes its own); an entry is set to None
        once a run claims its chips or they are given back."""
        records = self._records
        set_state = self._set_state
        backend = self.backend
        planned_by_job = self._planned
        started = False
        for n, (i, p) in enumerate(zip(start_jobs, start_pools, strict=True)):
            rec = records[i]
            if rec.state not in WAITING_STATES:
                if taken is not None:
                    self._give_back_chips(i, p, taken[n])
                    taken[n] = None
                continue  # cancelled by a listener during this round
            first = rec.start_s is None
            restore = 0.0 if (first or self.gavel_mode) else self._restore.item(i)
            stage_s, egress = (0.0, 0.0) if rec.job.dataset is None else self._staging(i, p)
            planned = planned_by_job.pop(i, None) if planned_by_job else None
            if stage_s > 0 and planned is not None and planned.pool == p and \
                    planned.transfer_s is not None:
                # The broker's option says which route the data takes (fastest or cheapest).
                stage_s, egress = planned.transfer_s, planned.egress_cost
            if planned is not None and planned.split and planned.pool == p:
                parts = self._take_parts(i, planned.split)  # a mixed-chip gang
                placement = self._begin_run(i, p, now, restore, parts[0].nodes, planned,
                                            stage_s, egress, parts, planned.throughput)
            else:
                nodes = self._take_chips(i, p, None) if taken is None else taken[n]
                placement = self._begin_run(i, p, now, restore, nodes, planned, stage_s, egress)
                if taken is not None:
                    taken[n] = None  # the run holds them now
            if first:
                rec.start_s = now
            why = f": {placement.note}" if placement.note else ""
            if stage_s > 0:
                self._begin_staging(i, p, now, stage_s, egress, restore, why)
                if rec.state is JobState.STAGING:
                    backend.start(rec.job, placement, now)
                    started = True
                continue
            set_state(i, JobState.STARTING, now, f"placed on {placement.pool_id}{why}")
            if rec.state is not JobState.STARTING:
                continue  # the listener cancelled it before the backend was told
            backend.start(rec.job, placement, now)
            if restore > 0:
                self._push_timer(now + restore, "restored", (i, now))
            else:
                set_state(i, JobState.RUNNING, now, "running")
            started = True
        return started

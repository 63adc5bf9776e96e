"""Job storage and state changes: NumPy columns per job, records, the listener, timelines.

The engine keeps each job's numbers in NumPy columns indexed by an internal job index (so a
round is vectorised over thousands of jobs) next to the `JobRecord` its callers see. Every
state change goes through `_set_state`, which tells the listener before anything else acts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from suanli.engine.types import JobRecord, JobState, Transition
from suanli.errors import SuanliError


def any_per_row(mask: np.ndarray) -> np.ndarray:
    """[J] whether each row of a [J, P] bool array has a True, a column at a time: NumPy
    reduces a short last axis (a few pools) about 10x slower than it ORs columns."""
    if mask.ndim != 2 or mask.shape[1] > 16:
        return mask.any(axis=1)
    out = np.zeros(mask.shape[0], dtype=bool)
    for p in range(mask.shape[1]):
        out |= mask[:, p]
    return out


class RecordsMixin:
    """Part of `Engine`: job columns, records and state transitions."""

    def _grow(self, need: int) -> None:
        P = self._P
        old = getattr(self, "_cap_jobs", 0)
        if need <= old:
            return
        cap = max(need, 2 * old, 1024)

        def grow(name: str, shape: tuple[int, ...], dtype: Any, fill: Any) -> None:
            new = np.full(shape, fill, dtype=dtype)
            if old:
                new[:old] = getattr(self, name)
            setattr(self, name, new)

        grow("_chips", (cap,), np.int64, 0)
        grow("_total", (cap,), float, 0.0)
        grow("_prio", (cap,), float, 1.0)
        grow("_arrival", (cap,), float, 0.0)
        grow("_tenant", (cap,), object, None)
        grow("_is_active", (cap,), bool, False)  # in `_active` (for `_active_array`)
        grow("_deadline", (cap,), float, math.inf)
        grow("_ckpt_iv", (cap,), float, 3600.0)
        grow("_restore", (cap,), float, 0.0)
        grow("_thr", (cap, P), float, 0.0)
        grow("_data_region", (cap,), np.int64, -1)
        grow("_base", (cap,), float, 0.0)  # work committed at the start of the current run
        grow("_seg_start", (cap,), float, 0.0)
        grow("_seg_restore", (cap,), float, 0.0)  # restore paid in the current run
        grow("_run_pool", (cap,), np.int64, -1)
        grow("_run_end", (cap,), float, 0.0)  # when the current run ends if not stopped
        grow("_acct", (cap,), float, 0.0)
        grow("_attained", (cap,), float, 0.0)  # chip-seconds received
        grow("_recv", (cap, P), float, 0.0)  # time received per pool since reallocation
        grow("_deficit", (cap, P), float, 0.0)
        grow("_alloc", (cap, P), float, 0.0)
        grow("_has_alloc", (cap,), bool, False)
        # Received time or allocation may differ from a reallocation's reset (new rows: yes);
        # a reallocation credits deficits and resets received time on these rows alone.
        grow("_touched", (cap,), bool, True)
        grow("_ref_thr", (cap,), float, 0.0)
        self._cap_jobs = cap

    def _active_array(self) -> np.ndarray:
        """The active jobs' indices in arrival order (the order of `_active`), kept up to date
        by appending arrivals and dropping leavers, not rebuilt from the dict each time."""
        cache = self._active_cache
        if cache is None:
            cache = np.fromiter(self._active, dtype=np.int64, count=len(self._active))
        elif self._active_added or self._active_left:
            if self._active_added:
                cache = np.concatenate([cache, np.asarray(self._active_added, dtype=np.int64)])
            if self._active_left:
                cache = cache[self._is_active[cache]]
        else:
            return cache
        self._active_added.clear()
        self._active_left = False
        self._active_cache = cache
        return cache

    def _job_index(self, job_id: str) -> int:
        try:
            return self._index[job_id]
        except KeyError:
            raise SuanliError(f"unknown job {job_id!r}", field="job_id", value=job_id) from None

    def _event(self, rec: JobRecord, state: JobState, at: float, reason: str) -> None:
        if self.record_events:
            rec.events.append((at, state.value, reason))

    def _set_state(self, i: int, new: JobState, at: float, reason: str = "") -> None:
        rec = self._records[i]
        old = rec.state
        rec.state = new
        rec.reason = reason
        if self.record_events:
            rec.events.append((at, new.value, reason))
        if self.listener is not None:
            self.listener(Transition(rec.job.job_id, old, new, at, rec.placement, reason))

    def _finish(self, i: int, state: JobState, at: float, reason: str) -> None:
        rec = self._records[i]
        rec.finish_s = at
        if state is JobState.SUCCEEDED:
            rec.done_work = rec.checkpoint_work = float(self._total[i])
        self._set_state(i, state, at, reason)
        self._n_terminal += 1
        self._pending.discard(i)
        if i in self._active:
            del self._active[i]
            self._is_active[i] = False
            self._active_left = True
            self._has_alloc[i] = False
            self._note_active(at)
            self._dirty = True
            self._alloc_dirty = True
        if not self._active and not self._on_chips:
            self._next_round_s = None
        self._sample(at)

    def _note_active(self, now: float) -> None:
        if self.record_timeline:
            self.active_t.append(now)
            self.active_n.append(len(self._active))

    def _sample(self, now: float) -> None:
        if not self.record_timeline:
            return
        if self.timeline_t and self.timeline_t[-1] == now:
            self.timeline_used[-1] = self._used.copy()
            self.timeline_waiting[-1] = len(self._active) - len(self._on_chips)
            return
        self.timeline_t.append(now)
        self.timeline_used.append(self._used.copy())
        self.timeline_waiting.append(len(self._active) - len(self._on_chips))

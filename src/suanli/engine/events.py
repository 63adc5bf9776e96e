"""Events: what happens between rounds — arrivals, timers, and what the backend reports."""

from __future__ import annotations

from typing import Any

from suanli.engine.types import ON_CHIPS_STATES, BackendEvent, JobState


class EventsMixin:
    """Part of `Engine`: timers and backend events."""

    def _push_timer(self, at_s: float, kind: str, payload: Any) -> None:
        self._timers.push(at_s, kind, payload)

    def _drain_timers(self, now: float) -> None:
        pop_due = self._timers.pop_due
        while (timer := pop_due(now)) is not None:
            at, _seq, kind, payload = timer
            if kind == "arrive":
                if self._records[payload].state is JobState.PENDING:
                    self._arrive(payload, at)
            elif kind == "restored":
                i, token = payload
                rec = self._records[i]
                if rec.state is JobState.STARTING and self._seg_start[i] == token:
                    self._set_state(i, JobState.RUNNING, at, "restored from checkpoint")
            elif kind == "staged":
                self._staged(payload, at)
            elif kind == "fail":
                self._fail_start(payload, at)
            elif kind == "recover":
                self._fail_end(payload, at)
            elif kind == "unavoid":
                self._unavoid(payload, at)

    def _arrive(self, i: int, now: float) -> None:
        self._pending.discard(i)
        if i not in self._active:
            key = (self._arrival.item(i), i)
            if not self._active:
                self._active_in_order = True
            elif key < self._last_arrived:
                self._active_in_order = False  # joined behind a later arrival
            self._last_arrived = key
            self._active[i] = None
            self._is_active[i] = True
            self._active_added.append(i)
        self._recv[i] = self._half_round
        self._deficit[i] = 0.0
        self._has_alloc[i] = False
        self._set_state(i, JobState.QUEUED, now, "arrived")
        self._note_active(now)
        self._changed(now)

    def _changed(self, now: float) -> None:
        """The job set or capacity changed: reallocate and replan at the next round."""
        self._dirty = True
        self._alloc_dirty = True
        self._stuck = False
        if self._next_round_s is None:
            self._next_round_s = now  # a new round grid starts: its first round is due now
            self._round_promised = True

    def _on_backend_event(self, ev: BackendEvent) -> None:
        i = self._index.get(ev.job_id)
        if i is None:
            return
        rec = self._records[i]
        if rec.state not in ON_CHIPS_STATES:
            return  # a late report for a run the engine already stopped
        at = ev.at_s
        if ev.kind == "progress":  # a note in the job's events (a dataset's copy, ...)
            self._set_state(i, rec.state, at, ev.detail)
        elif ev.kind == "unplaceable":  # nothing ran: wait and re-place, no retry
            self._requeue_unplaceable(i, at, ev.detail)
        elif ev.kind == "succeeded":
            self._data_arrived(i)  # it read its data here: a live copy may beat the link model
            self._end_run(i, at, keep="all")
            self._finish(i, JobState.SUCCEEDED, at, ev.detail or "finished")
        else:
            self._end_run(i, at, keep="checkpoint")
            detail = ev.detail or "job failed"
            if not ev.retryable:
                self._finish(i, JobState.FAILED, at, f"{detail} (not retried: the job's own "
                                                     "exit; see retry_on_exit_codes)")
            elif rec.retries < rec.job.max_retries:
                rec.retries += 1
                self._set_state(
                    i, JobState.QUEUED, at,
                    f"{detail}; retry {rec.retries} of {rec.job.max_retries}",
                )
                self._changed(at)
            else:
                self._finish(
                    i, JobState.FAILED, at,
                    f"{detail}; retries exhausted ({rec.job.max_retries})",
                )

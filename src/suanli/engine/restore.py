"""Restore: rebuild a job's state from the service's database after a restart."""

from __future__ import annotations

from suanli.engine.types import ON_CHIPS_STATES, EngineJob, JobRecord, JobState, Placement


class RestoreMixin:
    """Part of `Engine`: `restore()`."""

    def restore(
        self, job: EngineJob, state: JobState, placement: Placement | None, done_work: float
    ) -> JobRecord:
        """Rebuild a job from the service's database after a restart (no backend calls).

        A job restored on chips keeps them (the service re-attaches to its process) and is
        credited `done_work` from now on; its chips are the placement's nodes if it names them,
        else nodes taken as for a new run. A waiting one queues again.
        """
        state = JobState(state)
        listener, self.listener = self.listener, None  # the database already has this state
        try:
            return self._restore_job(job, state, placement, done_work)
        finally:
            self.listener = listener

    def _restore_job(
        self, job: EngineJob, state: JobState, placement: Placement | None, done_work: float
    ) -> JobRecord:
        rec = self.submit(job) if job.job_id not in self._index else self.jobs[job.job_id]
        i = self._index[job.job_id]
        now = self.clock.now()
        done_work = min(max(0.0, done_work), job.total_work)
        self._base[i] = done_work
        rec.done_work = rec.checkpoint_work = done_work
        if rec.state.terminal and not state.terminal:
            return rec  # it failed validation on submit
        if state.terminal:
            if not rec.state.terminal:
                self._finish(i, state, now, "restored")
            return rec
        if state is JobState.PENDING:
            return rec
        if rec.state is JobState.PENDING:
            self._arrive(i, now)
        if state in ON_CHIPS_STATES and placement is not None:
            p = self.cluster.index(placement.pool_id)
            # The placement's nodes if it names them, else nodes picked as for a new run.
            nodes = self._take_chips(i, p, placement.nodes or None)
            rec.start_s = rec.start_s if rec.start_s is not None else now
            self._begin_run(i, p, now, restore_s=0.0, nodes=nodes)
            self._set_state(i, JobState.RUNNING, now, "restored")
        elif state is JobState.PREEMPTED:
            rec.start_s = rec.start_s if rec.start_s is not None else now
            self._set_state(i, JobState.PREEMPTED, now, "restored")
        return rec

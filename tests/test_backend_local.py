"""The local backend runs real process groups; these tests drive whole job lifecycles, in the
sandbox (the default) and in single-user mode. What the sandbox keeps out is in
test_isolation.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from suanli.backends import BackendEvent, LocalBackend, RunSpec, _proc, make_backend, run_spec_from
from suanli.errors import SuanliError, UnknownNameError


def wait_events(backend: LocalBackend, n: int = 1, timeout_s: float = 20.0) -> list[BackendEvent]:
    events: list[BackendEvent] = []
    deadline = time.monotonic() + timeout_s
    while len(events) < n and time.monotonic() < deadline:
        events += backend.poll(time.monotonic())
        time.sleep(0.02)
    assert len(events) >= n, f"only {events} after {timeout_s}s"
    return events


def wait_until(cond, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def pid_alive(pid: int) -> bool:
    fields = _proc._stat_fields(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def live_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (an orphan's zombie waits on PID 1)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc._stat_fields(int(entry.name))
            if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                out.append(int(entry.name))
    return out


@pytest.fixture(params=["sandbox", "none"])
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    b = LocalBackend(tmp_path / "jobs", grace_s=0.5, isolation=request.param)
    yield b
    b.shutdown(stop_jobs=True)


def seen_by_job(backend: LocalBackend, host_path: Path, in_sandbox: str) -> str:
    """A job directory as the job sees it: /job/... in the sandbox, the host path otherwise."""
    return in_sandbox if backend.isolation.name == "sandbox" else str(host_path)


def spec(job_id: str = "job-1", run: str | None = "true", **kw) -> RunSpec:
    base = dict(center="c1", accelerator="H20", count=8, pool_id="c1/h20")
    return RunSpec(job_id=job_id, run=run, **{**base, **kw})


def test_command_sees_placement_and_job_env_and_output_reaches_log(backend: LocalBackend):
    run = ('echo "id=$SUANLI_JOB_ID center=$SUANLI_CENTER acc=$SUANLI_ACCELERATOR '
           'count=$SUANLI_COUNT pool=$SUANLI_POOL ckpt=$SUANLI_CHECKPOINT_DIR foo=$FOO"; '
           'echo oops >&2; echo "cwd=$PWD"')
    backend.launch(spec(run=run, setup="echo setting-up", env={"FOO": "bar"}), 0.0)
    [event] = wait_events(backend)
    assert (event.job_id, event.kind) == ("job-1", "succeeded")
    log = (backend.root_dir / "job-1" / "job.log").read_text()
    ckpt = seen_by_job(backend, backend.root_dir / "job-1" / "checkpoint", "/job/checkpoint")
    assert f"id=job-1 center=c1 acc=H20 count=8 pool=c1/h20 ckpt={ckpt} foo=bar" in log
    assert "oops" in log and "setting-up" in log
    assert f"cwd={seen_by_job(backend, backend.root_dir / 'job-1' / 'work', '/job/work')}" in log
    assert log.startswith("=== suanli ") and "attempt 1 job=job-1" in log


def test_service_secrets_do_not_leak_into_jobs(backend: LocalBackend, monkeypatch):
    monkeypatch.setenv("SUANLI_DB_PASSWORD", "hunter2")
    backend.launch(spec(run='echo "pw=${SUANLI_DB_PASSWORD:-none} path=${PATH:+set}"'), 0.0)
    wait_events(backend)
    log = (backend.root_dir / "job-1" / "job.log").read_text()
    assert "pw=none path=set" in log


def test_exit_codes_drive_states(backend: LocalBackend):
    backend.launch(spec("ok", run="exit 0"), 0.0)
    backend.launch(spec("bad", run="echo failing; exit 7"), 0.0)
    backend.launch(spec("bad-setup", run="echo never-runs", setup="exit 4"), 0.0)
    events = {e.job_id: e for e in wait_events(backend, 3)}
    assert events["ok"].kind == "succeeded"
    assert (events["bad"].kind, events["bad"].detail) == ("failed", "exit 7")
    assert (events["bad-setup"].kind, events["bad-setup"].detail) == ("failed", "exit 4")
    assert "never-runs" not in (backend.root_dir / "bad-setup" / "job.log").read_text()
    assert backend.poll(0.0) == []  # each end is reported once


def test_job_without_run_sleeps_its_duration_or_fails_clearly(backend: LocalBackend):
    backend.launch(spec("sim", run=None, duration_s=0.1), 0.0)
    backend.launch(spec("nothing", run=None), 0.0)
    events = {e.job_id: e for e in wait_events(backend, 2)}
    assert events["sim"].kind == "succeeded"
    assert events["nothing"].kind == "failed"
    assert "no `run` command" in events["nothing"].detail


def test_starting_a_running_job_twice_is_an_error(backend: LocalBackend):
    backend.launch(spec(run="sleep 30"), 0.0)
    with pytest.raises(SuanliError):
        backend.launch(spec(run="sleep 30"), 0.0)


def test_cancel_kills_the_whole_process_group(backend: LocalBackend):
    backend.launch(spec(run="sleep 300 & echo up > started; wait"), 0.0)
    wait_until((backend.root_dir / "job-1" / "work" / "started").exists)
    leader = backend.handle("job-1")
    assert len(live_members(leader.pgid)) >= 3  # wrapper, job shell, its background sleep
    backend.stop("job-1", 1.0, "cancel")
    wait_until(lambda: not live_members(leader.pgid) and not pid_alive(leader.pid))
    assert backend.poll(2.0) == []  # the engine asked for the stop: no event comes back
    assert backend.running() == []
    assert "stopped: cancel" in (backend.root_dir / "job-1" / "job.log").read_text()


def test_stop_escalates_to_sigkill_when_the_job_ignores_sigterm(backend: LocalBackend):
    backend.launch(spec(run="trap '' TERM; sleep 300 & echo up > started; wait"), 0.0)
    wait_until((backend.root_dir / "job-1" / "work" / "started").exists)
    pgid = backend.handle("job-1").pgid
    backend.stop("job-1", 1.0, "preempt")
    wait_until(lambda: not live_members(pgid))


def test_leftover_background_processes_end_with_the_job(backend: LocalBackend):
    backend.launch(spec(run="sleep 300 & echo up > started"), 0.0)
    pgid = backend.handle("job-1").pgid
    [event] = wait_events(backend)
    assert event.kind == "succeeded"
    assert (backend.root_dir / "job-1" / "work" / "started").exists()
    wait_until(lambda: not live_members(pgid))


def test_checkpoint_dir_persists_across_attempts_and_log_keeps_history(backend: LocalBackend):
    run = ('n=$(cat "$SUANLI_CHECKPOINT_DIR/step" 2>/dev/null || echo 0); '
           'echo "resumed at $n"; echo $((n + 1)) > "$SUANLI_CHECKPOINT_DIR/step"; [ "$n" -ge 1 ]')
    backend.launch(spec(run=run), 0.0)
    [first] = wait_events(backend)
    assert first.kind == "failed"
    backend.launch(spec(run=run), 1.0)
    [second] = wait_events(backend)
    assert second.kind == "succeeded"
    log = (backend.root_dir / "job-1" / "job.log").read_text()
    assert "attempt 1 job=job-1" in log and "attempt 2 job=job-1" in log
    assert "resumed at 0" in log and "resumed at 1" in log


def test_explicit_log_and_checkpoint_paths_are_used(backend: LocalBackend, tmp_path: Path):
    log, ckpt = tmp_path / "logs" / "j.log", tmp_path / "ckpt"
    backend.launch(spec(run='echo hi > "$SUANLI_CHECKPOINT_DIR/x"; echo logged',
                        log_path=str(log), checkpoint_dir=str(ckpt)), 0.0)
    wait_events(backend)
    assert "logged" in log.read_text()
    assert (ckpt / "x").read_text() == "hi\n"


def _launch_in_another_process(root: Path, job_id: str, run: str) -> dict:
    """Start a job from a separate Python process that then exits: a service restart."""
    code = textwrap.dedent(f"""
        import json
        from suanli.backends import LocalBackend, RunSpec
        b = LocalBackend({str(root)!r})
        b.launch(RunSpec({job_id!r}, run={run!r}), 0.0)
        print(json.dumps(b.handle({job_id!r}).to_dict()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    return json.loads(out.stdout)


def test_adopt_after_restart_finds_the_running_process_and_later_its_exit_code(tmp_path):
    root = tmp_path / "jobs"
    h = _launch_in_another_process(root, "long", "while [ ! -f go ]; do sleep 0.05; done; exit 5")
    restarted = LocalBackend(root, grace_s=0.5)
    try:
        assert restarted.adopt("long", h["pid"], h["pgid"], root / "long" / "job.log",
                               h["started_at_ticks"])
        assert restarted.running() == ["long"]
        assert restarted.poll(0.0) == []
        (root / "long" / "work" / "go").touch()
        [event] = wait_events(restarted)
        assert (event.kind, event.detail) == ("failed", "exit 5")
        assert "attempt 1 failed: exit 5" in (root / "long" / "job.log").read_text()
    finally:
        restarted.shutdown(stop_jobs=True)


def test_adopt_can_be_stopped(tmp_path):
    root = tmp_path / "jobs"
    h = _launch_in_another_process(root, "long", "sleep 300")
    restarted = LocalBackend(root, grace_s=0.5)
    assert restarted.adopt("long", h["pid"], h["pgid"])  # start ticks from process.json
    restarted.stop("long", 0.0, "cancel")
    wait_until(lambda: not live_members(h["pgid"]))


def test_adopt_reports_a_job_that_finished_while_down_from_its_exit_file(tmp_path):
    root = tmp_path / "jobs"
    h = _launch_in_another_process(root, "quick", "exit 0")
    wait_until(lambda: (root / "quick" / "exit_code").exists())
    wait_until(lambda: not _proc.is_running(_proc.ProcessHandle(**h)))
    restarted = LocalBackend(root)
    assert not restarted.adopt("quick", h["pid"], h["pgid"], None, h["started_at_ticks"])
    [event] = restarted.poll(0.0)
    assert (event.job_id, event.kind) == ("quick", "succeeded")


def test_adopt_reports_a_killed_process_as_gone(backend: LocalBackend, tmp_path):
    backend.launch(spec("doomed", run="sleep 300"), 0.0)
    h = backend.handle("doomed")
    os.killpg(h.pgid, signal.SIGKILL)  # no wrapper left to write an exit code
    wait_until(lambda: not _proc.is_running(h))  # a zombie (the old instance never reaps it)
    restarted = LocalBackend(backend.root_dir)
    assert not restarted.adopt("doomed", h.pid, h.pgid, None, h.started_at_ticks)
    [event] = restarted.poll(0.0)
    assert (event.kind, event.detail) == ("failed", "process gone (exit code unknown)")


def test_adopt_in_the_same_process_sees_the_old_instances_child_end(backend: LocalBackend):
    backend.launch(spec("j", run="while [ ! -f go ]; do sleep 0.05; done; exit 3"), 0.0)
    h = backend.handle("j")
    restarted = LocalBackend(backend.root_dir)
    assert restarted.adopt("j", h.pid, h.pgid, None, h.started_at_ticks)
    (backend.root_dir / "j" / "work" / "go").touch()
    [event] = wait_events(restarted)  # the old child stays a zombie; it still counts as ended
    assert event.detail == "exit 3"


def test_adopt_refuses_a_reused_pid(tmp_path):
    b = LocalBackend(tmp_path / "jobs")
    me = os.getpid()
    assert not b.adopt("ghost", me, os.getpgid(me), None, started_at_ticks=1)
    [event] = b.poll(0.0)
    assert event.detail == "process gone (exit code unknown)"


def test_run_spec_from_reads_engine_job_and_placement_by_name():
    job = SimpleNamespace(job_id="j9", num_chips=4, meta={
        "run": "python train.py", "setup": "pip install x", "env": {"A": 1},
        "log_path": "/tmp/j9.log", "duration_s": 60})
    placement = SimpleNamespace(pool_id="gz/h800", center="gz", accelerator="H800", count=4)
    s = run_spec_from(job, placement)
    assert (s.job_id, s.run, s.setup, dict(s.env)) == ("j9", "python train.py", "pip install x",
                                                       {"A": "1"})
    assert (s.center, s.accelerator, s.count, s.pool_id) == ("gz", "H800", 4, "gz/h800")
    assert (s.log_path, s.duration_s, s.checkpoint_dir) == ("/tmp/j9.log", 60.0, None)
    bare = run_spec_from(SimpleNamespace(job_id="k", num_chips=2, meta={}),
                         SimpleNamespace(pool_id="sh/a100", accelerator="A100"))
    assert (bare.center, bare.count, bare.run) == ("sh", 2, None)


def test_engine_protocol_start_goes_through_the_adapter(backend: LocalBackend):
    from suanli.engine import Backend, EngineJob, Placement

    assert isinstance(backend, Backend)
    job = EngineJob(job_id="e1", num_chips=2, total_work=1.0, throughput={"c2/910b": 1.0},
                    arrival_s=0.0, meta={"run": 'echo "on $SUANLI_POOL x$SUANLI_COUNT"'})
    placement = Placement(pool_id="c2/910b", count=2, accelerator="910B", center="c2")
    backend.start(job, placement, 0.0)
    [event] = wait_events(backend)
    assert event.kind == "succeeded" and backend.next_event_s() is None
    assert "on c2/910b x2" in (backend.root_dir / "e1" / "job.log").read_text()


def test_job_ids_become_safe_distinct_directories():
    names = {_proc.safe_name(j) for j in ("a/b", "a_b", "../x", "a b")}
    assert len(names) == 4 and all("/" not in n and not n.startswith(".") for n in names)


def test_make_backend_by_name(tmp_path):
    assert isinstance(make_backend("local", root_dir=tmp_path), LocalBackend)
    with pytest.raises(UnknownNameError):
        make_backend("slurm")


def test_adopt_without_start_ticks_checks_the_wrapper_command_line(backend: LocalBackend):
    backend.launch(spec("j", run="sleep 300"), 0.0)
    h = backend.handle("j")
    (backend.root_dir / "j" / "process.json").unlink()  # no launch record, no ticks
    restarted = LocalBackend(backend.root_dir)
    assert restarted.adopt("j", h.pid, h.pgid)  # argv names this job's exit file
    me = os.getpid()
    assert not restarted.adopt("other", me, os.getpgid(me))  # a live pid, but not a job of ours
    [event] = restarted.poll(0.0)
    assert (event.job_id, event.kind) == ("other", "failed")


def test_wrapper_with_an_owner_takes_its_group_down_when_the_owner_dies(tmp_path):
    """What the ray backend relies on: a force-cancelled worker's job does not outlive it."""
    owner = subprocess.Popen(["sleep", "300"])
    dirs = _proc.JobDirs.of(tmp_path, "owned")
    dirs.prepare(dirs.checkpoint)
    job = _proc.spawn(setup=None, run="trap '' TERM; sleep 300 & echo $! > child.pid; wait",
                      cwd=dirs.work, env={"PATH": os.environ["PATH"]}, log_path=dirs.default_log,
                      exit_file=dirs.exit_file, owner_pid=owner.pid, grace_s=0.3)
    wait_until((dirs.work / "child.pid").exists)
    child = int((dirs.work / "child.pid").read_text())
    owner.kill()
    owner.wait()
    job.wait(timeout=30)
    wait_until(lambda: not pid_alive(child))  # it ignored SIGTERM: the SIGKILL got it


def test_an_exit_file_written_by_another_attempts_wrapper_is_ignored(tmp_path):
    dirs = _proc.JobDirs.of(tmp_path, "j")
    dirs.root.mkdir(parents=True)
    dirs.exit_file.write_text("143 4242\n")  # a late write by the previous attempt's wrapper
    assert dirs.read_exit_code(4242) == 143
    assert dirs.read_exit_code(4243) is None

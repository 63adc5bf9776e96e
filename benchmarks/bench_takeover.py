"""Leader takeover time: two replicas (`suanli up`, local backend) on one PostgreSQL
database; the leader is killed (-9) or frozen (SIGSTOP for 12 s), and we time how long until
the other replica leads, and until a job submitted right after the failure is running.

    python benchmarks/bench_takeover.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_submit import (  # noqa: E402 - the sibling benchmark's helpers
    ADMIN,
    drop_schema,
    free_port,
    pg_schema_url,
    start_server,
)

PG = os.environ.get("SUANLI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
JOB = {"kind": "generic", "run": "sleep 30",
       "work": {"reference_accelerator": "L20", "duration_s": 60},
       "resources": {"accelerators": ["L20"]}}


def leading(url: str) -> bool | None:
    try:
        lead = httpx.get(f"{url}/healthz", timeout=0.5).json()["leader"]
        return bool(lead and lead["leading"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None  # not answering


def wait(pred, timeout_s: float = 60.0, step_s: float = 0.05) -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout_s:
            raise SystemExit("timed out")
        time.sleep(step_s)
    return time.monotonic() - t0


def one_run(db: str, mode: str, freeze_s: float) -> dict:
    home = tempfile.mkdtemp(prefix="suanli-takeover-")
    db_url, schema = pg_schema_url(db)
    procs: dict[str, subprocess.Popen] = {}
    try:
        for _ in range(2):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            procs[url] = start_server(db_url, port, "local", home)
        wait(lambda: [leading(u) for u in procs].count(True) == 1)
        lead = next(u for u in procs if leading(u))
        other = next(u for u in procs if u != lead)
        token = httpx.post(f"{other}/v1/tenants", json={"name": "t", "credits": "100000"},
                           headers={"Authorization": f"Bearer {ADMIN}"}).json()["token"]
        alice = httpx.Client(base_url=other, headers={"Authorization": f"Bearer {token}"})
        out: dict = {"mode": mode}
        sig = signal.SIGKILL if mode == "kill" else signal.SIGSTOP
        os.kill(procs[lead].pid, sig)
        t0 = time.monotonic()
        job = alice.post("/v1/jobs", json={**JOB, "name": "after"}).json()["id"]
        out["takeover_s"] = round(wait(lambda: leading(other) is True) + 0.0, 3)
        wait(lambda: alice.get(f"/v1/jobs/{job}").json()["state"] == "running")
        out["job_running_after_s"] = round(time.monotonic() - t0, 3)
        if mode == "freeze":
            rest = freeze_s - (time.monotonic() - t0)
            if rest > 0:
                time.sleep(rest)
            os.kill(procs[lead].pid, signal.SIGCONT)
            t1 = time.monotonic()
            out["woken_steps_down_s"] = round(wait(lambda: leading(lead) is False), 3)
            out["woken_answers_after_s"] = round(time.monotonic() - t1, 3)
        alice.post(f"/v1/jobs/{job}/cancel")
        alice.close()
        return out
    finally:
        for p in procs.values():
            try:
                os.kill(p.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        drop_schema(db, schema)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=PG)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--freeze-s", type=float, default=12.0)
    args = ap.parse_args()
    runs = [one_run(args.db, mode, args.freeze_s)
            for mode in ("kill", "freeze") for _ in range(args.runs)]
    summary = {}
    for mode in ("kill", "freeze"):
        ts = [r["takeover_s"] for r in runs if r["mode"] == mode]
        summary[mode] = {"takeover_s_mean": round(statistics.fmean(ts), 3),
                         "takeover_s_max": max(ts)}
    print(json.dumps({"benchmark": "takeover", "lease_s": 4.0, "runs": runs,
                      "summary": summary}, indent=2))


if __name__ == "__main__":
    main()

"""Load test of job submission: concurrent httpx clients against a real uvicorn server.

The server runs in its own process (`suanli up`, API and database; `--backend none` by
default so the load is submission alone), on 127.0.0.1, with a fresh SQLite file or a fresh
PostgreSQL schema. Prints JSON: submissions/s, latency percentiles, errors.

    python benchmarks/bench_submit.py                       # SQLite, 3000 jobs or 20 s
    python benchmarks/bench_submit.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import httpx

ADMIN = "sl_bench-admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_schema_url(url: str) -> tuple[str, str]:
    import psycopg

    schema = f"suanli_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def start_server(db_url: str, port: int, backend: str, home: str) -> subprocess.Popen:
    env = {**os.environ, "SUANLI_ADMIN_TOKEN": ADMIN, "SUANLI_HOME": home}
    cmd = [sys.executable, "-m", "suanli.cli.main", "up", "--db", db_url, "--port", str(port),
           "--backend", backend, "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


# --jobs run: one-chip jobs; the 704 L20 chips start nearly every one at once, so the local
# backend spawns a real process per submission (on a small machine these compete with the
# server). --jobs queue: 256-chip gangs; at most two fit at a time, so almost all wait in the
# queue and the load is admission + scheduling over a growing queue.
JOBS = {
    "run": {"kind": "generic", "run": "echo hi",
            "work": {"reference_accelerator": "L20", "duration_s": 60},
            "resources": {"accelerators": ["L20"]}},
    "queue": {"kind": "generic", "run": "echo hi",
              "work": {"reference_accelerator": "L20", "duration_s": 60},
              "resources": {"accelerators": ["L20"], "count": 256}},
}
JOB = JOBS["run"]


async def load(urls: list[str], token: str, job: dict, total: int, seconds: float,
               concurrency: int, prefix: str) -> dict:
    """`concurrency` clients; request n goes to replica n % len(urls)."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    clients = [httpx.AsyncClient(base_url=u, limits=limits, timeout=30, headers=headers)
               for u in urls]

    async def worker() -> None:
        nonlocal sent
        while sent < total and time.perf_counter() < deadline:
            sent += 1
            n = sent
            client = clients[n % len(clients)]
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/jobs", json={**job, "name": f"{prefix}-{n}"},
                                      headers={"Idempotency-Key": f"{prefix}-{n}"})
                code = str(r.status_code)
            except httpx.HTTPError as exc:
                code = type(exc).__name__
            latencies.append(time.perf_counter() - t0)
            if code != "201":
                errors[code] = errors.get(code, 0) + 1

    t_start = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        for c in clients:
            await c.aclose()
    elapsed = time.perf_counter() - t_start
    lat = sorted(latencies)
    ok = len(lat) - sum(errors.values())
    return {
        "submissions": ok, "requests": len(lat), "errors": errors,
        "seconds": round(elapsed, 3),
        "submissions_per_s": round(ok / elapsed, 1),
        "p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2) if lat else None,
        "max_ms": round(1000 * lat[-1], 2) if lat else None,
        "mean_ms": round(1000 * statistics.fmean(lat), 2) if lat else None,
    }


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=None, help="database URL (default: a temp SQLite file)")
    ap.add_argument("--count", type=int, default=3000, help="submissions at most")
    ap.add_argument("--seconds", type=float, default=20.0, help="time limit")
    ap.add_argument("--concurrency", type=int, default=6, help="concurrent clients")
    ap.add_argument("--backend", default="none", help="none (API only) | local")
    ap.add_argument("--jobs", choices=sorted(JOBS), default="run",
                    help="run: 1-chip jobs that start at once | queue: gangs that mostly wait")
    ap.add_argument("--warmup", type=int, default=100, help="submissions before measuring")
    args = ap.parse_args()
    global JOB
    JOB = JOBS[args.jobs]

    home = tempfile.mkdtemp(prefix="suanli-bench-")
    schema = None
    db_url = args.db or f"sqlite:///{home}/bench.db"
    if db_url.startswith("postgresql"):
        db_url, schema = pg_schema_url(args.db)
    port = free_port()
    proc = start_server(db_url, port, args.backend, home)
    url = f"http://127.0.0.1:{port}"
    try:
        r = httpx.post(f"{url}/v1/tenants", json={"name": "bench", "credits": "100000000"},
                       headers={"Authorization": f"Bearer {ADMIN}"})
        token = r.json()["token"]
        # the warm-up plans the job shape once
        asyncio.run(load([url], token, JOB, args.warmup, 30.0, 4, "warmup"))
        server_cpu0, client_cpu0 = cpu_s(proc.pid), time.process_time()
        result = asyncio.run(load([url], token, JOB, args.count, args.seconds,
                                  args.concurrency, "bench"))
        result["server_cpu_s"] = round(cpu_s(proc.pid) - server_cpu0, 2)
        result["client_cpu_s"] = round(time.process_time() - client_cpu0, 2)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        if schema:
            drop_schema(args.db, schema)
    dialect = "postgresql" if schema else "sqlite"
    print(json.dumps({"benchmark": "submit", "database": dialect, "backend": args.backend,
                      "jobs": args.jobs,
                      "concurrency": args.concurrency, "cpus": os.cpu_count(), **result},
                     indent=2))


if __name__ == "__main__":
    main()

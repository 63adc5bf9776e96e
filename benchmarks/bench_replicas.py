"""Submissions/s and latency with 1 or 2 replicas (`suanli up` processes) on one PostgreSQL
database, load balanced round-robin over their ports.

Each replica is its own process on 127.0.0.1; with `--backend local` one of them leads the
scheduler (the other serves the API only and leaves the scheduling to it). Prints JSON.

    python benchmarks/bench_replicas.py --replicas 2
    python benchmarks/bench_replicas.py --replicas 1 --backend none
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_submit import (  # noqa: E402 - the sibling benchmark's helpers
    ADMIN,
    JOBS,
    cpu_s,
    drop_schema,
    free_port,
    load,
    pg_schema_url,
    start_server,
)

PG = os.environ.get("SUANLI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=PG, help="PostgreSQL URL (a fresh schema is made in it)")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--count", type=int, default=3000, help="submissions at most")
    ap.add_argument("--seconds", type=float, default=20.0, help="time limit")
    ap.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    ap.add_argument("--backend", default="local", help="local (one replica leads) | none")
    ap.add_argument("--jobs", choices=sorted(JOBS), default="queue",
                    help="queue: gangs that mostly wait | run: 1-chip jobs that start at once")
    ap.add_argument("--warmup", type=int, default=100)
    args = ap.parse_args()

    home = tempfile.mkdtemp(prefix="suanli-bench-")
    db_url, schema = pg_schema_url(args.db)
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(args.replicas):  # one after the other: the first seeds the database
            port = free_port()
            procs.append(start_server(db_url, port, args.backend, home))
            procs[-1].port = port  # type: ignore[attr-defined]
        urls = [f"http://127.0.0.1:{p.port}" for p in procs]  # type: ignore[attr-defined]
        r = httpx.post(f"{urls[0]}/v1/tenants", json={"name": "bench", "credits": "100000000"},
                       headers={"Authorization": f"Bearer {ADMIN}"})
        token = r.json()["token"]
        job = JOBS[args.jobs]
        asyncio.run(load(urls, token, job, args.warmup, 30.0, 4, "warmup"))
        cpu0 = [cpu_s(p.pid) for p in procs]
        result = asyncio.run(load(urls, token, job, args.count, args.seconds,
                                  args.concurrency, "bench"))
        result["server_cpu_s"] = [round(cpu_s(p.pid) - c, 2) for p, c in zip(procs, cpu0,
                                                                            strict=True)]
        leaders = [httpx.get(f"{u}/healthz").json().get("leader") for u in urls]
        result["leading"] = [bool(ld and ld.get("leading")) for ld in leaders]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        drop_schema(args.db, schema)
    print(json.dumps({"benchmark": "submit-replicas", "database": "postgresql",
                      "replicas": args.replicas, "backend": args.backend, "jobs": args.jobs,
                      "concurrency": args.concurrency, "cpus": os.cpu_count(), **result},
                     indent=2))


if __name__ == "__main__":
    main()

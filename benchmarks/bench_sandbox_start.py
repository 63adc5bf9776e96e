"""What the job sandbox costs at start: local-backend launch to the job's first output line
(`echo`) and to its recorded end (`true`), sandboxed vs single-user, median of N runs.

    python benchmarks/bench_sandbox_start.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from suanli.backends import LocalBackend, RunSpec


def _one(b: LocalBackend, job_id: str, run: str, until_output: str | None) -> float:
    t0 = time.perf_counter()
    b.launch(RunSpec(job_id, run=run), 0.0)
    log = b.root_dir / job_id / "job.log"
    if until_output is not None:
        while until_output not in log.read_text():
            time.sleep(0.0005)
        elapsed = time.perf_counter() - t0
        while not b.poll(0.0):
            time.sleep(0.001)
        return elapsed
    while not b.poll(0.0):
        time.sleep(0.0005)
    return time.perf_counter() - t0


def measure(isolation: str, runs: int, root: Path) -> dict[str, float]:
    b = LocalBackend(root / isolation, isolation=isolation)
    first = [_one(b, f"echo-{i}", "echo first-line", "first-line") for i in range(runs)]
    end = [_one(b, f"true-{i}", "true", None) for i in range(runs)]
    return {"first_output_median_ms": round(statistics.median(first) * 1000, 2),
            "end_median_ms": round(statistics.median(end) * 1000, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = {iso: measure(iso, args.runs, Path(tmp)) for iso in ("none", "sandbox")}
    out["overhead_first_output_ms"] = round(out["sandbox"]["first_output_median_ms"]
                                            - out["none"]["first_output_median_ms"], 2)
    out["overhead_end_ms"] = round(out["sandbox"]["end_median_ms"]
                                   - out["none"]["end_median_ms"], 2)
    out["runs"] = args.runs
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""`suanli demo`: the live network end to end, in-process, in under a minute.

Starts the service on the built-in network with a temporary SQLite database and the local
backend (uvicorn in a thread on a free loopback port), creates a tenant with a city's compute
voucher, submits the example jobs (copies given short `run:` commands) and a few small ones,
and shows them placed, running and settled in a live table. The jobs run in the sandbox when
this machine has one (bubblewrap); otherwise the demo, one user on their own machine, runs them
in single-user mode and says so in one line.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from suanli.backends.sandbox import find_sandbox
from suanli.service.client import Client
from suanli.service.server import serve_in_thread
from suanli.service.settings import Settings
from suanli.tables import jobs_table

console = Console()

TERMINAL = {"succeeded", "failed", "cancelled"}
RUN = ('echo "[{name}] training on $SUANLI_COUNT x $SUANLI_ACCELERATOR at $SUANLI_CENTER"; '
       'sleep {sleep_s}; echo "[{name}] done"')

SMALL_JOBS: list[dict[str, Any]] = [
    {"name": "bert-eval", "kind": "generic",
     "work": {"reference_accelerator": "L20", "duration_s": 1800},
     "resources": {"accelerators": ["L20", "RTX4090"]}},
    {"name": "resnet-sweep", "kind": "generic",
     "work": {"reference_accelerator": "A100", "duration_s": 7200, "reference_count": 4},
     "resources": {"accelerators": ["A100", "A800"], "count": 4}},
    {"name": "ascend-port", "kind": "generic",
     "work": {"reference_accelerator": "910B", "duration_s": 3600, "reference_count": 8},
     "resources": {"accelerators": ["910B"], "count": 8}},
]


def example_jobs(examples_dir: Path | None = None) -> list[dict[str, Any]]:
    """The repository's examples/*.yaml (if present) and the small built-in jobs, each given
    a short `run:` command (copies only: the example files are not touched)."""
    jobs: list[dict[str, Any]] = []
    d = examples_dir or Path.cwd() / "examples"
    if d.is_dir():
        for path in sorted(d.glob("*.yaml")):
            try:
                data = yaml.safe_load(path.read_text("utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(data, dict) and "name" in data:
                jobs.append(data)
    jobs.extend(SMALL_JOBS)
    for i, job in enumerate(jobs):
        job["run"] = RUN.format(name=job["name"], sleep_s=2 + i % 3)
    return jobs


def demo_isolation() -> tuple[str, str | None]:
    """("sandbox", None) where this machine can sandbox jobs, else ("none", why not)."""
    found = find_sandbox()
    if isinstance(found, str):
        return "none", (f"no job sandbox here ({found}): the demo runs its jobs as you, in "
                        f"single-user mode (apt-get install bubblewrap to sandbox them)")
    return "sandbox", None


def run_demo(timeout_s: float = 90.0, live: bool = True) -> dict[str, Any]:
    isolation, why = demo_isolation()
    if why and live:
        console.print(f"[yellow]{why}[/]")
    tmp = Path(tempfile.mkdtemp(prefix="suanli-demo-"))
    admin_token = "sl_" + secrets.token_urlsafe(24)
    settings = Settings(network="east-west", db_url=f"sqlite:///{tmp / 'suanli.db'}",
                        backend="local", round_s=0.5, tick_s=0.2, admin_token=admin_token,
                        data_dir=tmp / "runs", print_admin_token=False,
                        stop_jobs_on_shutdown=True, isolation=isolation)
    server = serve_in_thread(settings)
    try:
        with Client(server.url, admin_token) as admin:
            tenant = admin.create_tenant("demo-lab", credits="50000.00")
        submitted, rejected = [], []
        with Client(server.url, tenant["token"]) as c:
            for job in example_jobs():
                try:
                    submitted.append(c.submit(job, key=f"demo-{job['name']}"))
                except Exception as exc:  # noqa: BLE001 - shown, not fatal: the demo goes on
                    rejected.append({"name": job.get("name"), "error": str(exc)})
            ids = {j["id"] for j in submitted}
            deadline = time.monotonic() + timeout_s
            header = Text.from_markup(
                f"suanli demo: service at [bold]{server.url}[/], tenant [bold]demo-lab[/] "
                f"with a 50000 CNY voucher, {len(submitted)} jobs on the east-west network")

            def snapshot() -> list[dict[str, Any]]:
                return sorted((j for j in c.jobs(limit=1000) if j["id"] in ids),
                              key=lambda j: j["id"])

            rows = snapshot()
            with Live(Group(header, jobs_table(rows)), console=console, refresh_per_second=8,
                      transient=False) if live else _NoLive() as view:
                while time.monotonic() < deadline:
                    rows = snapshot()
                    view.update(Group(header, jobs_table(rows, title="jobs (live)")))
                    if rows and all(j["state"] in TERMINAL for j in rows):
                        break
                    time.sleep(0.3)
            usage = c.usage()
            logs = {j["id"]: c.logs(j["id"])[0] for j in rows}
        if live:
            console.print()
            for r in rejected:
                console.print(f"[yellow]refused at admission[/] {r['name']}: {r['error']}")
            console.print(
                f"credits: granted {usage['granted']}, spent {usage['spent']}, "
                f"reserved {usage['reserved']}, balance {usage['balance']} {usage['currency']} "
                f"(ledger sums to {usage['ledger_balance']})")
            done = sum(j["state"] == "succeeded" for j in rows)
            console.print(f"{done} of {len(rows)} jobs succeeded; database and logs in {tmp}")
        return {"url": server.url, "jobs": rows, "rejected": rejected, "usage": usage,
                "logs": logs, "data_dir": str(tmp), "isolation": isolation}
    finally:
        server.stop()


class _NoLive:
    def __enter__(self) -> _NoLive:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, _renderable: Any) -> None:
        return None

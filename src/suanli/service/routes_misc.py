"""/v1/usage and /v1/ledger (a tenant's money), /metrics (Prometheus), /healthz."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select, text

from suanli.backends.types import NodeReportingBackend
from suanli.service.auth import principal
from suanli.service.errors import ApiError
from suanli.service.metrics import CONTENT_TYPE, GaugeFamily
from suanli.service.routes_jobs import _ERRORS, svc_of
from suanli.service.views import money_str
from suanli.store import jobs as store_jobs
from suanli.store import tenants, vouchers
from suanli.store.models import Job
from suanli.store.tenants import Principal

if TYPE_CHECKING:
    from suanli.service.runner import Runner

router = APIRouter()


def _tenant_id(request: Request, who: Principal, name: str | None) -> tuple[int, str]:
    if name is None or name == who.name:
        return who.tenant_id, who.name
    if not who.is_admin:
        raise ApiError(404, f"no tenant {name!r}", field="tenant", value=name)
    with svc_of(request).db.read() as conn:
        return tenants.tenant_by_name(conn, name)["id"], name


@router.get("/v1/usage", responses=_ERRORS, summary="Your balance, reservations, spend, quotas")
def usage(request: Request, who: Principal = Depends(principal),
          tenant: str | None = Query(None, max_length=100, description="admin: another tenant"),
          ) -> dict[str, Any]:
    svc = svc_of(request)
    tid, name = _tenant_id(request, who, tenant)
    J = Job.__table__
    with svc.db.read() as conn:
        balance, reserved = tenants.balance_of(conn, tid)
        sums = tenants.ledger_sums(conn, tid)
        by_state = store_jobs.counts_by_state(conn, tid)
        quotas = tenants.quotas_of(conn, tid)
        paid_by = [{"id": v["id"], "issuer": v["issuer"], "paid": money_str(v["paid"]),
                    "remaining": money_str(v["remaining"])}
                   for v in vouchers.list_vouchers(conn, tid)]
        acc = func.coalesce(J.c.accelerator, J.c.est_accelerator)
        n = func.coalesce(J.c.count, J.c.est_count)
        in_use = {a: int(k) for a, k in conn.execute(
            select(acc, func.sum(n)).where(J.c.tenant_id == tid,
                                           J.c.state.in_(store_jobs.ACTIVE_STATES))
            .group_by(acc)) if a is not None}
        chip_hours = {a: float(h or 0.0) / 3600.0 for a, h in conn.execute(
            select(J.c.accelerator, func.sum(J.c.run_s * J.c.count))
            .where(J.c.tenant_id == tid, J.c.accelerator.is_not(None))
            .group_by(J.c.accelerator))}
    spent = -sums["settle"]
    return {
        "tenant": name, "currency": svc.currency,
        "balance": money_str(balance), "reserved": money_str(reserved),
        "granted": money_str(sums["grant"]), "spent": money_str(spent),
        "ledger": {k: money_str(v) for k, v in sums.items()},
        "ledger_balance": money_str(sum(sums.values(), Decimal("0.00"))),
        "jobs": by_state, "quotas": quotas, "chips_in_use": in_use,
        "chip_hours": chip_hours,
        "vouchers": paid_by,  # what each voucher paid of this tenant's charges
        "vouchers_paid": money_str(sum((Decimal(v["paid"]) for v in paid_by), Decimal("0.00"))),
    }


@router.get("/v1/ledger", responses=_ERRORS, summary="Your credit movements, newest first")
def ledger(request: Request, who: Principal = Depends(principal),
           tenant: str | None = Query(None, max_length=100),
           limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
    svc = svc_of(request)
    tid, name = _tenant_id(request, who, tenant)
    with svc.db.read() as conn:
        rows = tenants.ledger_entries(conn, tid, limit)
    return {"tenant": name, "entries": [
        {"id": r["id"], "kind": r["kind"], "amount": money_str(r["amount"]),
         "job_id": r["job_id"], "at": r["created_at"], "note": r["note"]} for r in rows]}


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=True,
            responses=_ERRORS, summary="Prometheus metrics (any token; aggregates only)")
def metrics(request: Request, _who: Principal = Depends(principal)) -> PlainTextResponse:
    """Whole-network figures only, the same for every caller: no label or series names a
    tenant, so one tenant's token shows nothing of another's."""
    svc = svc_of(request)
    with svc.db.read() as conn:
        by_state = store_jobs.counts_by_state(conn)
    states = sorted(set(by_state) | {"queued", "running"})
    gauges = [GaugeFamily("suanli_jobs", "Jobs by state.",
                          [({"state": s}, by_state.get(s, 0)) for s in states])]
    if svc.runner is not None:
        util = dict(svc.runner.utilisation)
        gauges += [
            GaugeFamily("suanli_pool_chips_used", "Chips held by jobs, per pool.",
                        [({"pool": p}, u) for p, (u, _c) in util.items()]),
            GaugeFamily("suanli_pool_chips", "Chips a pool has, per pool.",
                        [({"pool": p}, c) for p, (_u, c) in util.items()]),
            GaugeFamily("suanli_pool_utilisation_ratio", "Share of a pool's chips held by jobs.",
                        [({"pool": p}, (u / c) if c else 0.0) for p, (u, c) in util.items()]),
            GaugeFamily("suanli_scheduler_steps", "Scheduler steps since this process started.",
                        [({}, svc.runner.steps)]),
        ]
    return PlainTextResponse(svc.metrics.render(gauges), media_type=CONTENT_TYPE)


@router.get("/healthz", summary="Liveness: the database answers and the scheduler runs")
def healthz(request: Request) -> dict[str, Any]:
    svc = svc_of(request)
    with svc.db.read() as conn:
        conn.execute(text("SELECT 1"))
    runner = svc.runner
    return {"ok": True, "database": svc.db.dialect, "network": svc.network.name,
            "scheduler": None if runner is None else {"steps": runner.steps,
                                                      "last_error": runner.last_error},
            "leader": None if runner is None else runner.leader_info(),
            "nodes": _live_nodes(runner)}


def _live_nodes(runner: Runner | None) -> list[dict[str, Any]] | None:
    """Centers with a live machine, for a backend whose machines come and go (Ray); None for
    one that runs where the service runs."""
    if runner is None or not runner.backend.capabilities.live_nodes:
        return None
    backend = cast(NodeReportingBackend, runner.backend)
    return backend.live_centers()

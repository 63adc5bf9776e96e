"""Public JSON for the dashboard: the network and aggregate use, nothing of any tenant.

Under `/dashboard/api/`, outside `/v1`, so the request guard lets it through without a token.
Everything here is the same for every caller: centers, pools and prices (as `/v1/centers`
gives any tenant), links and datasets, chips used per pool, and job counts by state over the
whole network. No job, name, tenant or money amount of anyone appears.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from suanli.service.dashboard.history import Sampler
from suanli.service.routes_jobs import svc_of
from suanli.service.views import center_view
from suanli.store import jobs as store_jobs
from suanli.store import network as store_network

router = APIRouter(prefix="/dashboard/api", tags=["dashboard"])


@router.get("/network", summary="The network, its use and its job counts (public)")
def network(request: Request) -> dict[str, Any]:
    svc = svc_of(request)
    with svc.db.read() as conn:
        centers = store_network.centers(conn)
        by_state = store_jobs.counts_by_state(conn)
    used = dict(svc.runner.utilisation) if svc.runner is not None else {}
    views = [center_view(c, used) for c in centers]
    net = svc.network
    places = _places(views)
    return {
        "name": net.name, "description": net.description, "illustrative": net.illustrative,
        "currency": net.currency, "scheduler": svc.runner is not None,
        "centers": views,
        "links": [{"a": lk.a, "b": lk.b, "bandwidth_gbps": lk.bandwidth_gbps,
                   "latency_ms": lk.latency_ms, "from": places.get(lk.a), "to": places.get(lk.b)}
                  for lk in net.links],
        "datasets": [{"name": d.name, "location": d.location, "size_gb": d.size_gb,
                      "at": places.get(d.location)} for d in net.datasets],
        "jobs_by_state": by_state,
    }


def _places(centers: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Where a link end or a dataset sits: a center's coordinates, or a region's centroid."""
    out: dict[str, dict[str, float]] = {c["id"]: {"lat": c["lat"], "lon": c["lon"]}
                                        for c in centers}
    regions: dict[str, list[dict[str, Any]]] = {}
    for c in centers:
        regions.setdefault(c["region"], []).append(c)
    for region, cs in regions.items():
        out.setdefault(region, {"lat": sum(c["lat"] for c in cs) / len(cs),
                                "lon": sum(c["lon"] for c in cs) / len(cs)})
    return out


@router.get("/history", summary="Pool utilisation and queue length over time (public)")
def history(request: Request,
            since: float = Query(0.0, ge=0, le=1e11, description="Unix seconds: newer only"),
            ) -> dict[str, Any]:
    sampler: Sampler = request.app.state.history
    return {"interval_s": sampler.interval_s,
            "samples": [s.to_json() for s in list(sampler.samples) if s.at > since]}



"""Centers and pools (GET for all; changes admin only) and tenants (admin only)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from suanli.catalog import builtin_catalog
from suanli.service.auth import admin, principal
from suanli.service.errors import ApiError
from suanli.service.routes_jobs import _ERRORS, svc_of
from suanli.service.state import ServiceState
from suanli.service.views import center_view, pool_view, tenant_view
from suanli.store import jobs as store_jobs
from suanli.store import leader as store_leader
from suanli.store import network as store_network
from suanli.store import tenants
from suanli.store.models import Job
from suanli.store.tenants import Principal

router = APIRouter(prefix="/v1")
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                         pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100,
                                        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
Price = Annotated[Decimal, Field(ge=0, le=10**9, max_digits=18, decimal_places=4)]
Amount = Annotated[Decimal, Field(ge=-10**12, le=10**12, max_digits=18, decimal_places=2)]
_STRICT = ConfigDict(extra="forbid")


class PoolIn(BaseModel):
    model_config = _STRICT
    id: Ident
    accelerator: str = Field(min_length=1, max_length=64)
    nodes: int = Field(ge=0, le=100_000)
    chips_per_node: int | None = Field(default=None, ge=1, le=1024)
    price_per_chip_hour: Price
    spot_price_per_chip_hour: Price | None = None
    reserved_chips: int = Field(default=0, ge=0, le=10**7)


class PoolPatch(BaseModel):
    model_config = _STRICT
    nodes: int | None = Field(default=None, ge=0, le=100_000)
    price_per_chip_hour: Price | None = None
    spot_price_per_chip_hour: Price | None = None
    reserved_chips: int | None = Field(default=None, ge=0, le=10**7)


class CenterIn(BaseModel):
    model_config = _STRICT
    id: Ident
    name: str = Field(min_length=1, max_length=300)
    region: Ident
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    electricity_price_per_kwh: float = Field(ge=0, le=1000)
    pue: float = Field(default=1.3, ge=1.0, le=10)
    carbon_g_per_kwh: float = Field(default=550.0, ge=0, le=10_000)
    pools: list[PoolIn] = Field(default_factory=list, max_length=1000)


class CenterPatch(BaseModel):
    model_config = _STRICT
    name: str | None = Field(default=None, min_length=1, max_length=300)
    electricity_price_per_kwh: float | None = Field(default=None, ge=0, le=1000)
    pue: float | None = Field(default=None, ge=1.0, le=10)
    carbon_g_per_kwh: float | None = Field(default=None, ge=0, le=10_000)


class TenantIn(BaseModel):
    model_config = _STRICT
    name: Name
    credits: Amount = Decimal("0")
    quotas: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)],
                 Annotated[int, Field(ge=0, le=10**7)]] = Field(default_factory=dict)
    admin: bool = False


class GrantIn(BaseModel):
    model_config = _STRICT
    amount: Amount
    note: str = Field(default="", max_length=500)


def _accelerator(name: str, field: str) -> str:
    return builtin_catalog().get(name, field=field).id


def _pool_values(p: PoolIn, field: str) -> dict[str, Any]:
    acc = builtin_catalog().get(p.accelerator, field=f"{field}.accelerator")
    d = p.model_dump()
    d["accelerator"] = acc.id
    d["chips_per_node"] = p.chips_per_node or acc.chips_per_node
    return store_network.pool_values(d)


def _used(svc: ServiceState) -> dict[str, tuple[int, int]]:
    return dict(svc.runner.utilisation) if svc.runner is not None else {}


def _no_active_jobs_on(svc: ServiceState, center: str, pool: str | None = None) -> None:
    J = Job.__table__
    stmt = select(J.c.id).where(J.c.center == center,
                                J.c.state.in_(("staging", "starting", "running",
                                               "checkpointing")))
    if pool is not None:
        stmt = stmt.where(J.c.pool == pool)
    with svc.db.read() as conn:
        busy = [r.id for r in conn.execute(stmt.limit(5))]
    if busy:
        where = f"{center}/{pool}" if pool else center
        raise ApiError(409, f"{where} runs jobs {busy}: cancel them or wait", field="center",
                       value=center, jobs=busy)


# -- centers and pools ------------------------------------------------------------------------

@router.get("/centers", responses=_ERRORS, summary="Centers and their pools")
def list_centers(request: Request, _who: Principal = Depends(principal)) -> dict[str, Any]:
    svc = svc_of(request)
    with svc.db.read() as conn:
        cs = store_network.centers(conn)
    used = _used(svc)
    return {"network": svc.network.name, "currency": svc.currency,
            "centers": [center_view(c, used) for c in cs]}


@router.get("/centers/{center_id}", responses=_ERRORS, summary="One center")
def get_center(request: Request, center_id: str = Path(max_length=64),
               _who: Principal = Depends(principal)) -> dict[str, Any]:
    svc = svc_of(request)
    with svc.db.read() as conn:
        for c in store_network.centers(conn):
            if c["id"] == center_id:
                return center_view(c, _used(svc))
    raise ApiError(404, f"no center {center_id!r}", field="center", value=center_id)


@router.get("/pools", responses=_ERRORS, summary="Every pool, with its utilisation")
def list_pools(request: Request, _who: Principal = Depends(principal)) -> dict[str, Any]:
    svc = svc_of(request)
    with svc.db.read() as conn:
        cs = store_network.centers(conn)
    used = _used(svc)
    return {"pools": [pool_view(c["id"], p, used) for c in cs for p in c["pools"]]}


@router.post("/centers", status_code=201, responses=_ERRORS, summary="Add a center (admin)")
def add_center(request: Request, body: CenterIn,
               _who: Principal = Depends(admin)) -> JSONResponse:
    svc = svc_of(request)
    pools = [_pool_values(p, f"pools.{i}") for i, p in enumerate(body.pools)]
    with svc.db.write() as conn:
        store_network.add_center(conn, body.model_dump(exclude={"pools"}))
        for p in pools:
            store_network.add_pool(conn, body.id, p)
        store_leader.bump_network_version(conn)  # every replica's scheduler sees it
    svc.reload_network()
    return JSONResponse(get_center(request, body.id, _who), status_code=201)


@router.patch("/centers/{center_id}", responses=_ERRORS, summary="Change a center (admin)")
def patch_center(request: Request, body: CenterPatch, center_id: str = Path(max_length=64),
                 _who: Principal = Depends(admin)) -> dict[str, Any]:
    svc = svc_of(request)
    with svc.db.write() as conn:
        store_network.update_center(conn, center_id, body.model_dump(exclude_none=True))
        store_leader.bump_network_version(conn)
    svc.reload_network()
    return get_center(request, center_id, _who)


@router.delete("/centers/{center_id}", status_code=204, responses=_ERRORS,
               summary="Remove a center and its pools (admin)")
def delete_center(request: Request, center_id: str = Path(max_length=64),
                  _who: Principal = Depends(admin)) -> JSONResponse:
    svc = svc_of(request)
    _no_active_jobs_on(svc, center_id)
    with svc.db.write() as conn:
        store_network.delete_center(conn, center_id)
        store_leader.bump_network_version(conn)
        remaining = store_network.centers(conn)
        if not any(c["pools"] for c in remaining):
            raise ApiError(409, "cannot remove the last pool of the network", field="center",
                           value=center_id)
    svc.reload_network()
    return JSONResponse(None, status_code=204)


@router.post("/centers/{center_id}/pools", status_code=201, responses=_ERRORS,
             summary="Add a pool to a center (admin)")
def add_pool(request: Request, body: PoolIn, center_id: str = Path(max_length=64),
             _who: Principal = Depends(admin)) -> JSONResponse:
    svc = svc_of(request)
    values = _pool_values(body, "<body>")
    with svc.db.write() as conn:
        store_network.add_pool(conn, center_id, values)
        store_leader.bump_network_version(conn)
    svc.reload_network()
    return JSONResponse(get_center(request, center_id, _who), status_code=201)


@router.patch("/centers/{center_id}/pools/{pool_id}", responses=_ERRORS,
              summary="Change a pool's prices, nodes or reserved chips (admin)")
def patch_pool(request: Request, body: PoolPatch, center_id: str = Path(max_length=64),
               pool_id: str = Path(max_length=64),
               _who: Principal = Depends(admin)) -> dict[str, Any]:
    svc = svc_of(request)
    values = body.model_dump(exclude_unset=True)
    if "price_per_chip_hour" in values and values["price_per_chip_hour"] is None:
        raise ApiError(422, "price_per_chip_hour cannot be null", field="price_per_chip_hour")
    with svc.db.write() as conn:
        store_network.update_pool(conn, center_id, pool_id, values)
        store_leader.bump_network_version(conn)
    svc.reload_network()
    return get_center(request, center_id, _who)


@router.delete("/centers/{center_id}/pools/{pool_id}", status_code=204, responses=_ERRORS,
               summary="Remove a pool (admin)")
def delete_pool(request: Request, center_id: str = Path(max_length=64),
                pool_id: str = Path(max_length=64),
                _who: Principal = Depends(admin)) -> JSONResponse:
    svc = svc_of(request)
    _no_active_jobs_on(svc, center_id, pool_id)
    with svc.db.write() as conn:
        store_network.delete_pool(conn, center_id, pool_id)
        store_leader.bump_network_version(conn)
        if not any(c["pools"] for c in store_network.centers(conn)):
            raise ApiError(409, "cannot remove the last pool of the network", field="pool",
                           value=pool_id)
    svc.reload_network()
    return JSONResponse(None, status_code=204)


# -- tenants ----------------------------------------------------------------------------------

@router.post("/tenants", status_code=201, responses=_ERRORS,
             summary="Create a tenant (admin); its token is shown once")
def create_tenant(request: Request, body: TenantIn,
                  _who: Principal = Depends(admin)) -> JSONResponse:
    svc = svc_of(request)
    if body.credits < 0:
        raise ApiError(422, "credits: a new tenant starts at 0 or more", field="credits",
                       value=str(body.credits))
    quotas = {_accelerator(a, f"quotas.{a}"): n for a, n in body.quotas.items()}
    with svc.db.write() as conn:
        tid, token = tenants.create_tenant(conn, body.name, is_admin=body.admin,
                                           credits=body.credits or None)
        if quotas:
            tenants.set_quotas(conn, tid, quotas)
        row = tenants.tenant_by_name(conn, body.name)
        q = tenants.quotas_of(conn, tid)
    return JSONResponse({**tenant_view(row), "quotas": q, "token": token}, status_code=201)


@router.get("/tenants", responses=_ERRORS, summary="All tenants (admin)")
def list_tenants(request: Request, _who: Principal = Depends(admin)) -> dict[str, Any]:
    with svc_of(request).db.read() as conn:
        return {"tenants": [tenant_view(t) for t in tenants.list_tenants(conn)]}


@router.get("/tenants/{name}", responses=_ERRORS, summary="One tenant (admin)")
def get_tenant(request: Request, name: str = Path(max_length=100),
               _who: Principal = Depends(admin)) -> dict[str, Any]:
    with svc_of(request).db.read() as conn:
        row = tenants.tenant_by_name(conn, name)
        return {**tenant_view(row), "quotas": tenants.quotas_of(conn, row["id"])}


@router.post("/tenants/{name}/credits", responses=_ERRORS,
             summary="Grant credits (a compute voucher) to a tenant (admin)")
def grant_credits(request: Request, body: GrantIn, name: str = Path(max_length=100),
                  _who: Principal = Depends(admin)) -> dict[str, Any]:
    with svc_of(request).db.write() as conn:
        row = tenants.tenant_by_name(conn, name)
        tenants.grant(conn, row["id"], body.amount, note=body.note or "grant")
        return tenant_view(tenants.tenant_by_name(conn, name))


@router.put("/tenants/{name}/quotas", responses=_ERRORS,
            summary="Set chip limits per accelerator (admin); null removes a limit")
def set_quotas(request: Request, body: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=64)],
        Annotated[int, Field(ge=0, le=10**7)] | None],
        name: str = Path(max_length=100), _who: Principal = Depends(admin)) -> dict[str, Any]:
    quotas = {_accelerator(a, a): n for a, n in body.items()}
    with svc_of(request).db.write() as conn:
        row = tenants.tenant_by_name(conn, name)
        return {"tenant": name, "quotas": tenants.set_quotas(conn, row["id"], quotas)}


@router.post("/tenants/{name}/tokens", status_code=201, responses=_ERRORS,
             summary="Issue another token for a tenant (admin); shown once")
def new_token(request: Request, name: str = Path(max_length=100),
              _who: Principal = Depends(admin)) -> JSONResponse:
    with svc_of(request).db.write() as conn:
        row = tenants.tenant_by_name(conn, name)
        token = tenants.issue_token(conn, row["id"])
    return JSONResponse({"tenant": name, "token": token}, status_code=201)


def active_counts(svc: ServiceState, tenant_id: int) -> dict[str, int]:
    with svc.db.read() as conn:
        return store_jobs.counts_by_state(conn, tenant_id)

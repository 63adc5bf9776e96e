"""Compute vouchers: the admin issues, lists and revokes them (`/v1/admin/vouchers`); a tenant
lists its own (`/v1/vouchers`). What a voucher pays and when: `store.vouchers`."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from suanli.service.auth import admin, principal
from suanli.service.errors import ApiError
from suanli.service.routes_jobs import _ERRORS, svc_of
from suanli.service.views import money_str
from suanli.store import tenants, vouchers
from suanli.store.tenants import Principal

router = APIRouter(prefix="/v1")
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                         pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
DAY_S = 86_400.0


class VoucherIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str = Field(min_length=1, max_length=100)
    issuer: str = Field(min_length=1, max_length=200, description="who pays, e.g. a city")
    share: Annotated[Decimal, Field(gt=0, le=1, max_digits=5, decimal_places=4,
                                    description="the share of a job's charge it pays")]
    cap: Annotated[Decimal, Field(gt=0, le=10**12, max_digits=18, decimal_places=2,
                                  description="the most it pays in all (CNY)")]
    centers: list[Ident] = Field(default_factory=list, max_length=1000)
    regions: list[Ident] = Field(default_factory=list, max_length=1000)
    expires_at: float | None = Field(default=None, gt=0, description="epoch seconds")
    valid_days: float | None = Field(default=None, gt=0, le=36_600,
                                     description="or: valid this many days from now")
    note: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _one_expiry(self) -> VoucherIn:
        if (self.expires_at is None) == (self.valid_days is None):
            raise ValueError("give exactly one of expires_at and valid_days")
        return self


def voucher_view(v: dict[str, Any], tenant: str | None = None) -> dict[str, Any]:
    out = {**v, "share": str(v["share"]), "cap": money_str(v["cap"]),
           "remaining": money_str(v["remaining"]),
           "active": v["revoked_at"] is None and v["expires_at"] > time.time()}
    if "paid" in v:
        out["paid"] = money_str(v["paid"])
    if tenant is not None:
        out["tenant"] = tenant
    return out


def _check_places(request: Request, body: VoucherIn) -> None:
    network = svc_of(request).network
    known = {"centers": {c.id for c in network.centers},
             "regions": {c.region for c in network.centers}}
    for field, names in (("centers", body.centers), ("regions", body.regions)):
        for name in names:
            if name not in known[field]:
                raise ApiError(422, f"{field}: no {field[:-1]} {name!r} in network "
                                    f"{network.name}", field=field, value=name)


@router.post("/admin/vouchers", status_code=201, responses=_ERRORS,
             summary="Issue a voucher to a tenant (admin)")
def issue_voucher(request: Request, body: VoucherIn,
                  _who: Principal = Depends(admin)) -> JSONResponse:
    _check_places(request, body)
    now = time.time()
    expires = body.expires_at if body.expires_at is not None else now + body.valid_days * DAY_S
    with svc_of(request).db.write() as conn:
        tid = tenants.tenant_by_name(conn, body.tenant)["id"]
        v = vouchers.issue(conn, tid, issuer=body.issuer, share=body.share, cap=body.cap,
                           expires_at=expires, centers=tuple(body.centers),
                           regions=tuple(body.regions), note=body.note, at=now)
    return JSONResponse(voucher_view({**v, "paid": Decimal("0.00")}, body.tenant),
                        status_code=201)


@router.get("/admin/vouchers", responses=_ERRORS, summary="All vouchers, or one tenant's (admin)")
def list_all(request: Request, _who: Principal = Depends(admin),
             tenant: str | None = Query(None, max_length=100)) -> dict[str, Any]:
    with svc_of(request).db.read() as conn:
        names = {t["id"]: t["name"] for t in tenants.list_tenants(conn)}
        tid = tenants.tenant_by_name(conn, tenant)["id"] if tenant is not None else None
        rows = vouchers.list_vouchers(conn, tid)
    return {"vouchers": [voucher_view(v, names.get(v["tenant_id"])) for v in rows]}


@router.delete("/admin/vouchers/{voucher_id}", responses=_ERRORS,
               summary="Revoke a voucher (admin): it pays for no job settled from now on")
def revoke_voucher(request: Request, voucher_id: int = Path(ge=1, le=2**31 - 1),
                   _who: Principal = Depends(admin)) -> dict[str, Any]:
    with svc_of(request).db.write() as conn:
        v = vouchers.revoke(conn, voucher_id)
        paid = vouchers.paid_by_voucher(conn).get(voucher_id, Decimal("0.00"))
    return voucher_view({**v, "paid": paid})


@router.get("/vouchers", responses=_ERRORS, summary="Your vouchers and what each has paid")
def my_vouchers(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    with svc_of(request).db.read() as conn:
        rows = vouchers.list_vouchers(conn, who.tenant_id)
    return {"vouchers": [voucher_view(v, who.name) for v in rows]}

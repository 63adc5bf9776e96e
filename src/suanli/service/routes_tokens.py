"""API tokens: a tenant lists, creates and revokes its own (/v1/tokens); the admin does it for
any tenant (/v1/admin/tenants/{name}/tokens). A listing shows id, prefix, created_at and revoked,
never the secret or its hash; a new token's secret is in the creating reply only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from suanli.service.auth import admin, principal
from suanli.service.routes_jobs import _ERRORS, svc_of
from suanli.store import tenants, tokens
from suanli.store.tenants import Principal

router = APIRouter(prefix="/v1")
INT32_MAX = 2**31 - 1  # the id column's range on PostgreSQL


def _token_id() -> Any:
    return Path(ge=1, le=INT32_MAX, description="the token's id (from a listing)")


def _tenant_name() -> Any:
    return Path(min_length=1, max_length=100, description="the tenant's name")


def _tenant_id(request: Request, name: str) -> int:
    with svc_of(request).db.read() as conn:
        return tenants.tenant_by_name(conn, name)["id"]


def _list(request: Request, tenant_id: int, name: str) -> dict[str, Any]:
    with svc_of(request).db.read() as conn:
        return {"tenant": name, "tokens": tokens.list_tokens(conn, tenant_id)}


def _create(request: Request, tenant_id: int, name: str) -> JSONResponse:
    with svc_of(request).db.write() as conn:
        row = tokens.create_token(conn, tenant_id)
    return JSONResponse({"tenant": name, **row}, status_code=201)


def _revoke(request: Request, tenant_id: int, name: str, token_id: int) -> dict[str, Any]:
    with svc_of(request).db.write() as conn:
        row = tokens.revoke_token(conn, tenant_id, token_id)
    return {"tenant": name, **row}


@router.get("/tokens", responses=_ERRORS, summary="Your API tokens (never their secrets)")
def list_own(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    return _list(request, who.tenant_id, who.name)


@router.post("/tokens", status_code=201, responses=_ERRORS,
             summary="A new API token for yourself; its secret is shown once")
def create_own(request: Request, who: Principal = Depends(principal)) -> JSONResponse:
    return _create(request, who.tenant_id, who.name)


@router.delete("/tokens/{token_id}", responses=_ERRORS,
               summary="Revoke one of your tokens; every replica refuses it from now on")
def revoke_own(request: Request, token_id: int = _token_id(),
               who: Principal = Depends(principal)) -> dict[str, Any]:
    return _revoke(request, who.tenant_id, who.name, token_id)


@router.get("/admin/tenants/{name}/tokens", responses=_ERRORS,
            summary="A tenant's API tokens (admin)")
def list_for(request: Request, name: str = _tenant_name(),
             _who: Principal = Depends(admin)) -> dict[str, Any]:
    return _list(request, _tenant_id(request, name), name)


@router.post("/admin/tenants/{name}/tokens", status_code=201, responses=_ERRORS,
             summary="A new API token for a tenant (admin); its secret is shown once")
def create_for(request: Request, name: str = _tenant_name(),
               _who: Principal = Depends(admin)) -> JSONResponse:
    return _create(request, _tenant_id(request, name), name)


@router.delete("/admin/tenants/{name}/tokens/{token_id}", responses=_ERRORS,
               summary="Revoke a tenant's token (admin)")
def revoke_for(request: Request, name: str = _tenant_name(), token_id: int = _token_id(),
               _who: Principal = Depends(admin)) -> dict[str, Any]:
    return _revoke(request, _tenant_id(request, name), name, token_id)

"""The FastAPI app: `create_app(settings)` wires the store, the runner and the routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from suanli.jobs.spec import JobSpec
from suanli.service import (
    dashboard,
    errors,
    routes_admin,
    routes_jobs,
    routes_misc,
    routes_tokens,
    routes_vouchers,
)
from suanli.service.auth import needs_token
from suanli.service.dashboard import Sampler
from suanli.service.limits import RequestGuard
from suanli.service.metrics import LatencyMiddleware
from suanli.service.settings import Settings
from suanli.service.state import ServiceState, open_state


def create_app(settings: Settings | None = None, state: ServiceState | None = None) -> FastAPI:
    """Build the app. The database is opened (and migrated) now; the scheduler starts with the
    server (lifespan) and stops with it."""
    settings = settings or Settings()
    svc = state or open_state(settings)
    sampler: Sampler | None = None

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.backend != "none" and svc.runner is None:
            svc.runner = make_runner(settings, svc)
            svc.runner.start()
        if sampler is not None:
            sampler.start()
        try:
            yield
        finally:
            if sampler is not None:
                sampler.stop()
            if svc.runner is not None:
                svc.runner.stop()
                svc.runner = None
            svc.close()

    app = FastAPI(
        title="suanli",
        version="0.1.0",
        description="The live computing-power network: submit, place, run and bill AI jobs. "
        "Authenticate with 'Authorization: Bearer <token>'. Money is CNY, as decimal strings.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served from the package by the dashboard (offline)
    )
    app.state.svc = svc
    errors.install(app)
    app.include_router(routes_jobs.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_misc.router)
    app.include_router(routes_tokens.router)
    app.include_router(routes_vouchers.router)
    sampler = dashboard.install(app, svc)
    # Inside the latency timer: refused requests are timed too. SQLite auths on the event loop
    # (one short indexed read, as the SQLite submit path does); PostgreSQL in a thread.
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes,
                       authenticate=svc.tokens.authenticate, needs_token=needs_token,
                       auth_in_thread=not svc.db.is_sqlite)
    app.add_middleware(LatencyMiddleware, metrics=svc.metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def make_runner(settings: Settings, svc: ServiceState) -> Any:
    """The scheduler of this replica: it leads only while it holds the database lease."""
    from suanli.service.leadership import Lease, replica_id
    from suanli.service.runner import SWEEP_S, Runner

    lease = Lease(svc.db, settings.replica_id or replica_id(settings.port),
                  lease_s=settings.lease_s, exclusive=svc.lock_file is not None)
    sweep_s = settings.sweep_s or (1.0 if svc.db.dialect == "postgresql" else SWEEP_S)
    return Runner(svc.db, svc.network, backend=settings.backend, policy=settings.policy,
                  round_s=settings.round_s, tick_s=settings.tick_s, data_dir=svc.data_dir,
                  ray_address=settings.ray_address,
                  stop_jobs_on_shutdown=settings.stop_jobs_on_shutdown,
                  realloc_interval_s=settings.realloc_interval_s, lease=lease,
                  sweep_s=sweep_s, on_network=svc.use_network,
                  isolation=settings.isolation)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, plus the job file's schema for the endpoints that take a raw job."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    job_schema = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = job_schema.pop("$defs", {})
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    comps.update(defs)
    comps["JobSpec"] = job_schema
    app.openapi_schema = schema
    return schema

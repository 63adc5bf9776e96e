"""The dashboard: the network on one page, served by `suanli up` at `/` with every asset in the
package (no CDN, font or tile server: these networks often run without internet).

Server-rendered Jinja2 pages carry the layout; one hand-written ES module (`static/app.js`, no
build step) draws the map and the charts as inline SVG and polls JSON: the public aggregate
endpoints here (`/dashboard/api/...`, nothing of any tenant) and, once a tenant signs in with
its token (kept in the tab's sessionStorage, sent as a Bearer header, never in a URL), the
existing `/v1` API. The history charts read samples this process keeps in memory
(`history.Sampler`). `/docs` and `/redoc` are served from vendored Swagger UI and ReDoc.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from suanli.service.dashboard import docs, pages, public
from suanli.service.dashboard.history import Sampler
from suanli.service.state import ServiceState

STATIC_DIR = Path(__file__).parent / "static"
__all__ = ["STATIC_DIR", "Sampler", "install"]


def install(app: FastAPI, svc: ServiceState) -> Sampler:
    """Mount the pages, the public JSON, the static assets and the offline API docs. Returns
    the sampler, which the app's lifespan starts and stops."""
    sampler = Sampler(svc)
    app.state.history = sampler
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.include_router(pages.router)
    app.include_router(public.router)
    app.include_router(docs.router)
    return sampler

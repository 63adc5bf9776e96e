"""The dashboard's HTML pages: layout only, rendered by Jinja2; the script fills them in.

A Content-Security-Policy of 'self' makes the no-outside-request promise the browser's to keep:
a page that tried to load a font or a tile from elsewhere would be refused, not served."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def _page(request: Request, name: str, **context: object) -> HTMLResponse:
    svc = request.app.state.svc
    resp = templates.TemplateResponse(request, name, {"network": svc.network.name, **context})
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


@router.get("/")
@router.get("/dashboard")
def dashboard(request: Request) -> HTMLResponse:
    return _page(request, "index.html")


@router.get("/dashboard/jobs/{job_id}")
def job_page(request: Request, job_id: int = PathParam(ge=1, le=2**31 - 1)) -> HTMLResponse:
    return _page(request, "job.html", job_id=job_id)

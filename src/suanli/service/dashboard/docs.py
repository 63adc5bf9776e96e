"""`/docs` and `/redoc` from assets in the package (FastAPI's defaults load them from a CDN, a
blank page without internet). Swagger UI 5.35.0 (Apache-2.0) and ReDoc 2.5.4 (MIT), vendored
from their npm packages with their licences under static/vendor/."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
VENDOR = "/dashboard/static/vendor"


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="suanli API",
                               swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
                               swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
                               swagger_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
                               # no badge from validator.swagger.io: that would leave the host
                               swagger_ui_parameters={"validatorUrl": None})


@router.get("/redoc")
def redoc() -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title="suanli API",
                          redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
                          redoc_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
                          with_google_fonts=False)

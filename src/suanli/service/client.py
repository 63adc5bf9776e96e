"""An HTTP client for the service, used by the CLI: URL and token from flags, then the
environment (SUANLI_URL, SUANLI_TOKEN), then the login profile (service/profiles.py), then the
older ~/.suanli/config.toml; server errors become one-line errors."""

from __future__ import annotations

import json
import os
import tomllib
import uuid
from pathlib import Path
from typing import Any

import httpx

from suanli.errors import SuanliError
from suanli.service.profiles import load_profile
from suanli.service.settings import suanli_home

DEFAULT_URL = "http://127.0.0.1:8600"


def default_url() -> str:
    """The local service on the port `suanli up` listens on by default ($SUANLI_PORT)."""
    port = os.environ.get("SUANLI_PORT")
    return f"http://127.0.0.1:{port}" if port else DEFAULT_URL


class ServiceError(SuanliError):
    """An error answered by the service (or no answer at all)."""

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None,
                 value: object = None, body: dict[str, Any] | None = None) -> None:
        super().__init__(message, field=field, value=value)
        self.status = status
        self.body = body or {}


def config_path() -> Path:
    return suanli_home() / "config.toml"


def load_config() -> dict[str, Any]:
    path = config_path()
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SuanliError(f"cannot read {path}: {exc}", field="config") from None


class Client:
    """Thin, typed-enough wrapper over the /v1 API."""

    def __init__(self, url: str | None = None, token: str | None = None,
                 timeout_s: float = 30.0) -> None:
        cfg = load_config() if (url is None or token is None) else {}
        prof = load_profile() if (url is None or token is None) else None
        self.url = (url or os.environ.get("SUANLI_URL") or (prof.url if prof else None)
                    or cfg.get("url") or default_url()).rstrip("/")
        self.token = (token or os.environ.get("SUANLI_TOKEN") or (prof.token if prof else None)
                      or cfg.get("token"))
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot reach the suanli service at {self.url}: {exc} "
                               "(is `suanli up` running? set SUANLI_URL)", field="url",
                               value=self.url) from None
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"error": resp.text.strip()[:300] or resp.reason_phrase}
            msg = str(body.get("error") or resp.reason_phrase)
            if resp.status_code == 401 and not self.token:
                msg += " (run `suanli login`, or set SUANLI_TOKEN)"
            raise ServiceError(f"{msg} [HTTP {resp.status_code}]", status=resp.status_code,
                               field=body.get("field"), value=body.get("value"), body=body)
        return resp

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items()
                                                 if v is not None}).json()

    def submit_yaml(self, text: str, key: str | None = None) -> dict[str, Any]:
        """Submit a job file; a retry after a dropped connection reuses the key (no duplicate)."""
        return self._submit_body(text.encode("utf-8"), "application/yaml", key)

    def submit_mapping(self, job: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        """Submit a job mapping as JSON (with its workdir archive, if any), retried the same."""
        body = json.dumps(job, default=str).encode("utf-8")  # YAML dates etc. as text
        return self._submit_body(body, "application/json", key)

    def _submit_bytes_once(self, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        return self.request("POST", "/v1/jobs", content=body, headers=headers).json()

    def _submit_body(self, body: bytes, ctype: str, key: str | None) -> dict[str, Any]:
        headers = {"Content-Type": ctype, "Idempotency-Key": key or uuid.uuid4().hex}
        try:
            return self._submit_bytes_once(body, headers)
        except ServiceError as exc:
            if exc.status is not None:
                raise
            return self._submit_bytes_once(body, headers)

    def submit(self, job: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": key} if key else {}
        return self.request("POST", "/v1/jobs", json=job, headers=headers).json()

    def plan(self, job: dict[str, Any], objective: str = "cost") -> dict[str, Any]:
        """The service's placement options for a job, without submitting it."""
        return self.request("POST", "/v1/plan", json=job, params={"objective": objective}).json()

    def jobs(self, state: list[str] | None = None, limit: int = 100,
             all_tenants: bool = False) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = state
        if all_tenants:
            params["all_tenants"] = "true"
        return self.request("GET", "/v1/jobs", params=params).json()["jobs"]

    def job(self, job_id: int) -> dict[str, Any]:
        return self.get(f"/v1/jobs/{job_id}")

    def events(self, job_id: int) -> list[dict[str, Any]]:
        return self.get(f"/v1/jobs/{job_id}/events")["events"]

    def logs(self, job_id: int, offset: int = 0) -> tuple[str, int, str]:
        """(text, next offset, job state)."""
        r = self.request("GET", f"/v1/jobs/{job_id}/logs", params={"offset": offset})
        return (r.content.decode("utf-8", "replace"), int(r.headers.get("X-Next-Offset", offset)),
                r.headers.get("X-Job-State", ""))

    def cancel(self, job_id: int) -> dict[str, Any]:
        return self.request("POST", f"/v1/jobs/{job_id}/cancel").json()

    def usage(self, tenant: str | None = None) -> dict[str, Any]:
        return self.get("/v1/usage", tenant=tenant)

    def create_tenant(self, name: str, credits: str = "0", quotas: dict[str, int] | None = None,
                      admin: bool = False) -> dict[str, Any]:
        body = {"name": name, "credits": credits, "quotas": quotas or {}, "admin": admin}
        return self.request("POST", "/v1/tenants", json=body).json()

    def grant(self, name: str, amount: str, note: str = "") -> dict[str, Any]:
        return self.request("POST", f"/v1/tenants/{name}/credits",
                            json={"amount": amount, "note": note}).json()

    def set_quotas(self, name: str, quotas: dict[str, int | None]) -> dict[str, Any]:
        return self.request("PUT", f"/v1/tenants/{name}/quotas", json=quotas).json()

    def tenants(self) -> list[dict[str, Any]]:
        return self.get("/v1/tenants")["tenants"]

    def patch_pool(self, center: str, pool: str, **values: Any) -> dict[str, Any]:
        return self.request("PATCH", f"/v1/centers/{center}/pools/{pool}", json=values).json()

    def tokens(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Your tokens, or (admin) a tenant's: id, prefix, created_at, revoked."""
        return self.get(_tokens_path(tenant))["tokens"]

    def create_token(self, tenant: str | None = None) -> dict[str, Any]:
        """A new token; its secret (`token`) is in this reply only."""
        return self.request("POST", _tokens_path(tenant)).json()

    def revoke_token(self, token_id: int, tenant: str | None = None) -> dict[str, Any]:
        return self.request("DELETE", f"{_tokens_path(tenant)}/{token_id}").json()


def _tokens_path(tenant: str | None) -> str:
    return "/v1/tokens" if tenant is None else f"/v1/admin/tenants/{tenant}/tokens"


class VoucherCalls:
    """The voucher endpoints (`service.routes_vouchers`), on a Client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def issue(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.request("POST", "/v1/admin/vouchers", json=body).json()

    def all(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return self.client.get("/v1/admin/vouchers", tenant=tenant)["vouchers"]

    def revoke(self, voucher_id: int) -> dict[str, Any]:
        return self.client.request("DELETE", f"/v1/admin/vouchers/{voucher_id}").json()

    def mine(self) -> list[dict[str, Any]]:
        return self.client.get("/v1/vouchers")["vouchers"]

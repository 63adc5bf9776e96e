"""/v1/jobs: submit (idempotent), list, get, cancel, events, logs; /v1/plan: a preview."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import yaml
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from suanli.jobs import workdir
from suanli.jobs.spec import JobSpec, parse_job, stored_spec_json
from suanli.service import uploads
from suanli.service.auth import principal
from suanli.service.errors import ApiError
from suanli.service.estimate import shape_key
from suanli.service.limits import PARSED_JSON_KEY, load_json, load_yaml
from suanli.service.state import ServiceState
from suanli.service.views import job_view
from suanli.store import billing
from suanli.store import jobs as store_jobs
from suanli.store.jobs import Admission
from suanli.store.models import JOB_STATES, TERMINAL_STATES
from suanli.store.tenants import Principal
from suanli.store.vouchers import active_terms

router = APIRouter(prefix="/v1")
MAX_BODY_BYTES = 1 << 20
_UNPARSED = object()
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")

_JOB_BODY = {
    "requestBody": {
        "required": True,
        "description": "The job file: its mapping as JSON, or the YAML text itself.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/JobSpec"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}
_ERR = {"description": "error", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}, "field": {},
                                     "value": {}}}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _ERR, 401: _ERR, 402: _ERR, 404: _ERR, 409: _ERR, 413: _ERR, 415: _ERR, 422: _ERR}


def svc_of(request: Request) -> ServiceState:
    return request.app.state.svc


async def read_job_body(request: Request) -> tuple[dict[str, Any], bytes]:
    """The job mapping from a JSON or YAML body; 4xx naming the problem otherwise."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"job body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}",
                       field="<body>")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if not body.strip():
        raise ApiError(400, "empty body: send the job as JSON or YAML", field="<body>")
    try:
        if ctype in YAML_TYPES:
            data = load_yaml(body.decode("utf-8"))
        elif ctype in ("application/json", "") or ctype.endswith("+json"):
            # RequestGuard parsed and checked it already; parse here only without the guard.
            parsed = request.scope.get(PARSED_JSON_KEY, _UNPARSED)
            data = load_json(body) if parsed is _UNPARSED else parsed
        else:
            raise ApiError(415, f"unsupported content type {ctype!r}: use application/json or "
                                "application/yaml", field="Content-Type", value=ctype)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ApiError(400, f"body is not valid {'YAML' if ctype in YAML_TYPES else 'JSON'}: "
                            f"{msg}", field="<body>") from None
    if not isinstance(data, dict):
        raise ApiError(422, f"a job must be a mapping, got {type(data).__name__}",
                       field="<body>", value=None if isinstance(data, list | dict) else data)
    return data, body


def request_hash(data: dict[str, Any]) -> str:
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def _parse(data: dict[str, Any], who: Principal) -> JobSpec:
    kind = data.get("kind")
    if not isinstance(kind, str):  # parse_job compares it to names: it must be hashable
        raise ApiError(422, f"kind: must be a string such as 'train' or 'generic' "
                            f"(got {type(kind).__name__})", field="kind",
                       value=kind if kind is None or isinstance(kind, int | float) else None)
    spec = parse_job(data, "job")
    if spec.tenant is not None and spec.tenant != who.name:
        raise ApiError(422, f"tenant: jobs are submitted as the token's tenant {who.name!r}",
                       field="tenant", value=spec.tenant)
    return spec


_SUBMIT_OPENAPI = {
    **_JOB_BODY,
    "parameters": [{
        "name": "Idempotency-Key", "in": "header", "required": False,
        "schema": {"type": "string", "maxLength": 200},
        "description": "a retried submission with the same key returns the first job",
    }],
}


@router.post("/jobs", status_code=201, openapi_extra=_SUBMIT_OPENAPI, responses=_ERRORS,
             summary="Submit a job (idempotent with an Idempotency-Key header)")
async def submit_job(request: Request) -> JSONResponse:
    """The hot path. On SQLite the transaction runs right here on the event loop: SQLite has
    one writer anyway, and skipping the thread hop is most of the cost of a submission."""
    who = await principal(request)
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= 200:
        raise ApiError(422, "Idempotency-Key: 1 to 200 characters", field="Idempotency-Key",
                       value=key[:50])
    data, _raw = await read_job_body(request)
    svc = svc_of(request)
    rhash = request_hash(data)
    try:
        archive = data.pop("workdir_archive", None)
        spec = _parse(data, who)
        if svc.db.is_sqlite:
            _keep_workdir(svc, spec, archive)
        else:
            await run_in_threadpool(_keep_workdir, svc, spec, archive)
        shape = shape_key(data)
        est = svc.estimator.cached(shape)
        if est is None:  # planning a new job shape takes ~0.1 s: off the event loop
            est = await run_in_threadpool(svc.estimator.estimate, spec, shape)
    except Exception:
        if key is not None:  # a retry of a job admitted earlier must not be judged again
            prior = await run_in_threadpool(_find, svc, who, key)
            if prior is not None:
                return _replay(svc, prior, rhash, key)
        svc.metrics.count_submission("rejected")
        raise
    adm = Admission(
        name=spec.name, spec_json=stored_spec_json(spec),
        request_hash=rhash, estimate_cost=est.cost, est_accelerator=est.accelerator,
        est_count=est.count, est_run_s=est.run_s, max_retries=spec.max_retries,
        hold=billing.admission_hold(est.cost, est.price_per_chip_hour, est.count),
    )
    if svc.db.is_sqlite:
        return _admit(svc, who, adm, key)
    return await run_in_threadpool(_admit, svc, who, adm, key)


def _keep_workdir(svc: ServiceState, spec: JobSpec, archive: object) -> None:
    """The code a job ships: checked against its digest and stored in the database before
    admission, so the scheduler (on whichever replica leads) never starts a job whose code is
    not there yet."""
    if spec.workdir is None:
        if archive is not None:
            raise ApiError(422, "workdir_archive: sent without a 'workdir' naming its digest",
                           field="workdir_archive")
        return
    workdir.upload_path(svc.data_dir, spec.workdir)  # a well-formed digest, or 422
    if archive is not None:
        uploads.keep(svc.db, svc.data_dir, workdir.decode_upload(archive, spec.workdir))
    elif not uploads.known(svc.db, spec.workdir):
        raise ApiError(422, f"workdir: no code uploaded as {spec.workdir} (submit with the "
                            "CLI, which packs and sends the directory)", field="workdir",
                       value=spec.workdir)


def _find(svc: ServiceState, who: Principal, key: str) -> dict[str, Any] | None:
    with svc.db.read() as conn:
        return svc.fast.find_by_key(conn, who.tenant_id, key)


def _admit(svc: ServiceState, who: Principal, adm: Admission, key: str | None) -> JSONResponse:
    """One transaction: idempotency check, quota, insert, credit hold, event. The scheduler
    hears of the job only after the commit."""
    try:
        with svc.db.write() as conn:
            prior = svc.fast.find_by_key(conn, who.tenant_id, key) if key is not None else None
            if prior is None:
                row = svc.fast.admit(conn, who.tenant_id, adm, key)
    except Exception as exc:
        # A concurrent retry with the same key won the race: return its job. (The hot path
        # runs on the DBAPI cursor, so the driver's own IntegrityError arrives unwrapped.)
        integrity = (IntegrityError, svc.db.engine.dialect.dbapi.IntegrityError)
        prior = _find(svc, who, key) if key is not None and isinstance(exc, integrity) \
            else None
        if prior is None:
            svc.metrics.count_submission("rejected")
            raise
    if prior is not None:
        return _replay(svc, prior, adm.request_hash, key or "")
    job_id = row["id"]
    if svc.runner is not None:
        svc.runner.submit(job_id, row)
    svc.metrics.count_submission("accepted")
    return JSONResponse(job_view(row), status_code=201,
                        headers={"Location": f"/v1/jobs/{job_id}"})


def _replay(svc: ServiceState, prior: dict[str, Any], rhash: str, key: str) -> JSONResponse:
    if prior["request_hash"] != rhash:
        svc.metrics.count_submission("rejected")
        raise ApiError(409, f"Idempotency-Key {key!r} was used for job {prior['id']} with a "
                            "different body", field="Idempotency-Key", value=key,
                       job_id=prior["id"])
    svc.metrics.count_submission("replayed")
    return JSONResponse(job_view(prior), status_code=200,
                        headers={"Idempotent-Replayed": "true",
                                 "Location": f"/v1/jobs/{prior['id']}"})


@router.get("/jobs", responses=_ERRORS, summary="List your jobs, newest first")
def list_jobs(request: Request, who: Principal = Depends(principal),
              state: list[str] = Query(default=[], description="filter by state (repeatable)"),
              limit: int = Query(100, ge=1, le=1000),
              before: int | None = Query(None, ge=0, le=2**31 - 1,
                                         description="only ids below this"),
              all_tenants: bool = Query(False, description="admin: every tenant's jobs"),
              ) -> dict[str, Any]:
    for s in state:
        if s not in JOB_STATES:
            raise ApiError(422, f"state: must be one of {', '.join(JOB_STATES)}", field="state",
                           value=s)
    tenant = None if (all_tenants and who.is_admin) else who.tenant_id
    with svc_of(request).db.read() as conn:
        rows = store_jobs.list_jobs(conn, tenant, state, limit, before)
    return {"jobs": [job_view(r) for r in rows]}


def _own_job(request: Request, who: Principal, job_id: int) -> dict[str, Any]:
    with svc_of(request).db.read() as conn:
        return store_jobs.get_job(conn, job_id, None if who.is_admin else who.tenant_id)


def _job_id() -> Any:
    return Path(ge=1, le=2**31 - 1, description="the job's id")  # the column's range


@router.get("/jobs/{job_id}", responses=_ERRORS, summary="One of your jobs, with its spec")
def get_job(request: Request, job_id: int = _job_id(),
            who: Principal = Depends(principal)) -> dict[str, Any]:
    svc = svc_of(request)
    row = _own_job(request, who, job_id)
    out = job_view(row, with_spec=True)
    out.update(planned_vs_actual(svc, row))
    return out


def planned_vs_actual(svc: ServiceState, row: dict[str, Any]) -> dict[str, Any]:
    """The broker's plan at admission (an idle network), where the job went, and why the two
    differ (the reason the engine gave when it placed the job)."""
    try:
        spec = JobSpec.model_validate_json(row["spec"])
        est = svc.estimator.estimate(spec, "stored:" + row["spec"])
    except Exception:  # noqa: BLE001 - a spec that no longer plans has no plan to show
        return {"planned": None, "placement_note": None}
    planned = {"center": est.center, "pool": est.pool, "accelerator": est.accelerator,
               "count": est.count, "cost": str(est.cost), "run_s": est.run_s}
    note = None
    if row.get("center") and (row["center"], row["pool"]) != (est.center, est.pool):
        with svc.db.read() as conn:
            evs = store_jobs.events(conn, row["id"])
        placed = [e["reason"] for e in evs if (e["reason"] or "").startswith("placed on")]
        note = placed[-1] if placed else "placed by the policy"
    return {"planned": planned, "placement_note": note}


@router.post("/jobs/{job_id}/cancel", status_code=202, responses=_ERRORS,
             summary="Cancel a job (it stops at the scheduler's next step)")
def cancel_job(request: Request, job_id: int = _job_id(),
               who: Principal = Depends(principal)) -> JSONResponse:
    svc = svc_of(request)
    row = _own_job(request, who, job_id)
    if row["state"] in TERMINAL_STATES:
        raise ApiError(409, f"job {job_id} already {row['state']}", field="job_id",
                       value=job_id, state=row["state"])
    with svc.db.write() as conn:
        store_jobs.update_job(conn, job_id, cancel_requested=True)
        if svc.runner is None:  # no scheduler: nothing runs it, cancel it here
            store_jobs.record_transition(conn, job_id, row["state"], "cancelled",
                                         "cancelled by tenant", None, at=time.time())
        row = store_jobs.get_job(conn, job_id)
    if svc.runner is not None:
        svc.runner.cancel(job_id)
    return JSONResponse(job_view(row), status_code=202)


@router.get("/jobs/{job_id}/events", responses=_ERRORS,
            summary="A job's state changes, with times and reasons")
def job_events(request: Request, job_id: int = _job_id(),
               who: Principal = Depends(principal)) -> dict[str, Any]:
    _own_job(request, who, job_id)
    with svc_of(request).db.read() as conn:
        evs = store_jobs.events(conn, job_id)
    return {"job_id": job_id, "events": [
        {"at": e["at"], "old": e["old_state"], "new": e["new_state"], "reason": e["reason"],
         "placement": e["placement"]} for e in evs]}


@router.get("/jobs/{job_id}/logs", responses=_ERRORS, response_class=Response,
            summary="A job's log from a byte offset (follow: pass back X-Next-Offset)")
def job_logs(request: Request, job_id: int = _job_id(),
             offset: int = Query(0, ge=0, le=2**62, description="byte offset to read from"),
             limit: int = Query(1 << 20, ge=1, le=8 << 20, description="bytes at most"),
             who: Principal = Depends(principal)) -> Response:
    svc = svc_of(request)
    row = _own_job(request, who, job_id)
    path = svc.log_path(row)
    data = b""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(limit)
    except FileNotFoundError:
        pass
    return Response(data, media_type="text/plain; charset=utf-8", headers={
        "X-Next-Offset": str(offset + len(data)), "X-Job-State": row["state"]})


@router.post("/plan", openapi_extra=_JOB_BODY, responses=_ERRORS,
             summary="The broker's placement options for a job, without submitting it")
async def plan_preview(request: Request, who: Principal = Depends(principal),
                       objective: str | None = Query(None, pattern="^(cost|time|mix)$"),
                       ) -> dict[str, Any]:
    """The options on the network as the scheduler sees it now (its running and queued
    jobs), under the job's own objective unless `objective` is given: the chosen option is
    where the job would be placed now, and its cost what a submission would reserve."""
    data, _raw = await read_job_body(request)
    svc = svc_of(request)
    spec = _parse(data, who)
    return await run_in_threadpool(_plan, svc, spec, objective or spec.objective,
                                   who.tenant_id)


def _plan(svc: ServiceState, spec: JobSpec, objective: str,
          tenant_id: int | None = None) -> dict[str, Any]:
    try:
        from suanli.plan import plan
    except ImportError:
        raise ApiError(503, "the planner is not available in this build", field="plan") from None
    from suanli.errors import SuanliError

    vouchers = active_terms(svc.db, tenant_id) if tenant_id is not None else ()
    try:
        state = svc.runner.live_state if svc.runner is not None else None
        result = plan(spec, svc.network, state, objective=objective, vouchers=vouchers)
    except SuanliError:
        raise
    except Exception as exc:  # a planner bug: logged, reported as a job it cannot price
        import logging

        logging.getLogger("suanli.service").exception("planner failed on a valid job spec")
        raise ApiError(422, f"the planner could not place this job ({type(exc).__name__}: "
                            f"{exc}); the error is logged", field="<job>") from None
    from suanli.engine.placement import startable_now
    from suanli.plan.vouchers import describe

    out = result.to_dict()
    out["explanation"] = [*out["explanation"], *describe(vouchers)]  # plan.vouchers
    now = next(startable_now(result), None) if result.chosen is not None else None
    out["placement_now"] = now.to_dict() if now is not None else None
    return out

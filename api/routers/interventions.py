"""Maintenance interventions: record (planned / done), mark done, list (issue 12, point 6).

Times are the fleet's event (data) time, UTC, like telemetry ``event_time``: ``planned_for`` for a planned
intervention, ``done_at`` once done (refused in the future of the wall clock: it happened). ``finding`` is
given only when done: ``failure_confirmed``, ``no_fault_found`` or ``preventive_replacement``.

Writes: the API's database role is read-only by default; migration 0006 grants it INSERT/UPDATE on
``interventions`` only, and these handlers open an explicit ``READ WRITE`` transaction (every other request
stays read-only). Writing needs ``X-API-Key`` like ``POST /v1/sweeps``.

Repairs: a done intervention whose finding is ``failure_confirmed`` or ``preventive_replacement`` publishes a
``RepairCommand`` (scorer/repairs.py) on the scorer's command topic, after the row is committed. If Kafka is
down the intervention stays recorded and the answer says ``repair_command: "failed: ..."``; sending the same
request again with the returned ``id`` re-publishes it (idempotent: the scorer ignores a repair it applied).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.concurrency import run_in_threadpool
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from api.db import Database
from api.deps import ApiKeyDep, DbDep, PublisherDep
from api.errors import OrjsonResponse, query_error
from api.repository import now_utc
from api.schemas import ErrorBody
from common.contracts import IDENTIFIER_PATTERN, REPAIR_FINDINGS, RepairCommand

router = APIRouter()

Kind = Literal["planned", "done"]
Finding = Literal["failure_confirmed", "no_fault_found", "preventive_replacement"]
#: A done_at this far ahead of the wall clock is still accepted (clock skew between a laptop and the server).
FUTURE_TOLERANCE = timedelta(minutes=5)
#: Earliest plausible intervention time (older = a typo such as year 0026).
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
MAX_NOTES = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # notes may hold newlines and tabs
_CONTROL_STRICT = re.compile(r"[\x00-\x1f\x7f]")
COLUMNS = (
    "id, turbine_id, kind, planned_for, done_at, component, finding, notes, recorded_at, recorded_by, "
    "updated_at"
)
TurbineId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, description="Turbine id")
]
Responses = dict[int | str, dict[str, Any]]
WRITE_ERRORS: Responses = {
    401: {"model": ErrorBody, "description": "Missing or wrong X-API-Key"},
    404: {"model": ErrorBody, "description": "Unknown turbine or intervention"},
    409: {"model": ErrorBody, "description": "The intervention is already done / id used elsewhere"},
    503: {"model": ErrorBody, "description": "No key configured, database down, or write grant missing"},
}


def _text(value: str, field: str, *, notes: bool = False) -> str:
    if (_CONTROL if notes else _CONTROL_STRICT).search(value):
        raise ValueError(f"{field} contains control characters")
    return value.strip()


class InterventionIn(BaseModel):
    """A new intervention. ``planned``: ``planned_for`` required, no ``done_at``/``finding``.
    ``done``: ``done_at`` and ``finding`` required."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID | None = Field(
        default=None, description="Optional client id: sending the same request again is idempotent"
    )
    kind: Kind
    component: str = Field(min_length=1, max_length=64, examples=["gearbox"])
    finding: Finding | None = None
    planned_for: AwareDatetime | None = Field(default=None, description="Data time, with its UTC offset")
    done_at: AwareDatetime | None = Field(default=None, description="Data time, with its UTC offset")
    notes: str | None = Field(default=None, max_length=MAX_NOTES)
    recorded_by: str = Field(default="api", min_length=1, max_length=64, examples=["crew-north"])

    @field_validator("component", "recorded_by")
    @classmethod
    def _no_control(cls, value: str, info: Any) -> str:
        value = _text(value, info.field_name)
        if not value:
            raise ValueError(f"{info.field_name} is blank")
        return value

    @field_validator("notes")
    @classmethod
    def _notes(cls, value: str | None) -> str | None:
        return None if value is None else _text(value, "notes", notes=True) or None


class InterventionDone(BaseModel):
    """Mark a planned intervention as done."""

    model_config = ConfigDict(extra="forbid")

    done_at: AwareDatetime = Field(description="Data time, with its UTC offset")
    finding: Finding
    notes: str | None = Field(default=None, max_length=MAX_NOTES)

    @field_validator("notes")
    @classmethod
    def _notes(cls, value: str | None) -> str | None:
        return None if value is None else _text(value, "notes", notes=True) or None


class Intervention(BaseModel):
    id: uuid.UUID
    turbine_id: str
    kind: Kind
    planned_for: datetime | None
    done_at: datetime | None
    component: str
    finding: Finding | None
    notes: str | None
    recorded_at: datetime
    recorded_by: str
    updated_at: datetime
    repair_command: str | None = Field(
        default=None,
        description="Writes only: 'published' (scorer told to forget the history before done_at), "
        "'not needed', or 'failed: <why>' (send the same request again with this id)",
    )


class InterventionList(BaseModel):
    items: list[Intervention]


def _body_error(field: str, message: str, value: Any = None) -> Exception:
    return query_error(field, message, value, where="body")


def _check_time(field: str, value: datetime | None) -> None:
    if value is None:
        return
    if value < EARLIEST:
        raise _body_error(field, f"{field} {value.isoformat()} is before {EARLIEST.date()}", str(value))
    if field == "done_at" and value > now_utc() + FUTURE_TOLERANCE:
        raise _body_error(
            field, f"done_at {value.isoformat()} is in the future: record it once done", str(value)
        )


def _check_new(body: InterventionIn) -> None:
    if body.kind == "planned":
        if body.planned_for is None:
            raise _body_error("planned_for", "planned_for is required when kind is planned")
        if body.done_at is not None:
            raise _body_error("done_at", "done_at is only given when kind is done (PATCH marks it done)")
        if body.finding is not None:
            raise _body_error("finding", "finding is only given when kind is done")
    else:
        if body.done_at is None:
            raise _body_error("done_at", "done_at is required when kind is done")
        if body.finding is None:
            raise _body_error(
                "finding",
                "finding is required when kind is done: failure_confirmed, no_fault_found or "
                "preventive_replacement",
            )
    _check_time("planned_for", body.planned_for)
    _check_time("done_at", body.done_at)


async def _write(db: Database, query: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """One statement in a READ WRITE transaction (the pool's connections default to read-only).

    A role without the grant of migration 0006 (a reader role not named cockpit_reader) is a 503 that says
    which grant is missing, not an internal error.
    """
    try:
        async with db.pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION READ WRITE")
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, params)
            return await cur.fetchone()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise HTTPException(
            status_code=503,
            detail="interventions cannot be written: the API's database role lacks INSERT, UPDATE on "
            "interventions (migration 0006 grants them to cockpit_reader; run GRANT INSERT, UPDATE ON "
            f"interventions TO <the API's role>): {str(exc).strip()[:200]}",
        ) from None


async def latest_intervention(db: Database, turbine_id: str) -> dict[str, Any] | None:
    """The turbine's most recent intervention (by done_at, else planned_for), for its detail; None if none."""
    return await db.dict_one(
        f"""SELECT {COLUMNS} FROM interventions WHERE turbine_id = %s
            ORDER BY COALESCE(done_at, planned_for) DESC, recorded_at DESC LIMIT 1""",
        (turbine_id,),
    )


async def _turbine_exists(db: Database, turbine_id: str) -> bool:
    return await db.one("SELECT 1 FROM turbines WHERE turbine_id = %s", (turbine_id,)) is not None


async def _notify(publisher: Any, row: dict[str, Any]) -> str:
    if row["kind"] != "done" or row["finding"] not in REPAIR_FINDINGS:
        return "not needed"
    cmd = RepairCommand(
        intervention_id=row["id"],
        turbine_id=row["turbine_id"],
        done_at=row["done_at"],
        component=row["component"],
        finding=row["finding"],
        requested_at=now_utc(),
        requested_by=str(row["recorded_by"])[:64],
    )
    try:
        await run_in_threadpool(publisher.publish_raw, row["turbine_id"].encode(), cmd.to_json(), "repair")
    except Exception as exc:  # the intervention is recorded; the answer says the scorer was not told
        return f"failed: {str(exc)[:200]}"
    return "published"


@router.post(
    "/v1/turbines/{turbine_id}/interventions",
    response_model=Intervention,
    status_code=201,
    tags=["maintenance"],
    summary="Record a maintenance intervention (planned or done); needs X-API-Key",
    description=(
        "`kind=planned` needs `planned_for`; `kind=done` needs `done_at` (data time, not in the future) and "
        "`finding`. A done `failure_confirmed` / `preventive_replacement` tells the scorer to forget the "
        "turbine's history before `done_at` (`repair_command`). Times need their UTC offset. `notes` at most "
        f"{MAX_NOTES} characters; control characters are refused (newlines and tabs allowed in notes). "
        "Giving an `id` makes a retry idempotent (200 with the stored row, the repair re-published)."
    ),
    responses=WRITE_ERRORS,
)
async def add_intervention(
    turbine_id: TurbineId, body: InterventionIn, _: ApiKeyDep, db: DbDep, publisher: PublisherDep
) -> Response:
    _check_new(body)
    if not await _turbine_exists(db, turbine_id):
        raise HTTPException(status_code=404, detail=f"turbine {turbine_id!r} not found")
    new_id = body.id or uuid.uuid4()
    row = await _write(
        db,
        f"""INSERT INTO interventions (id, turbine_id, kind, planned_for, done_at, component, finding, notes,
                                       recorded_by)
            VALUES (%(id)s, %(tid)s, %(kind)s, %(planned_for)s, %(done_at)s, %(component)s, %(finding)s,
                    %(notes)s, %(by)s)
            ON CONFLICT (id) DO NOTHING RETURNING {COLUMNS}""",
        {
            "id": new_id,
            "tid": turbine_id,
            "kind": body.kind,
            "planned_for": body.planned_for,
            "done_at": body.done_at,
            "component": body.component,
            "finding": body.finding,
            "notes": body.notes,
            "by": body.recorded_by,
        },
    )
    status = 201
    if row is None:  # the id exists: a retry of the same request, or a clash
        row = await db.dict_one(f"SELECT {COLUMNS} FROM interventions WHERE id = %s", (new_id,))
        if row is None or row["turbine_id"] != turbine_id:
            raise HTTPException(status_code=409, detail=f"id {new_id} is used by another intervention")
        status = 200
    row["repair_command"] = await _notify(publisher, row)
    link = f"/v1/turbines/{turbine_id}/interventions/{row['id']}"
    return OrjsonResponse(row, status_code=status, headers={"Location": link})


@router.patch(
    "/v1/turbines/{turbine_id}/interventions/{intervention_id}",
    response_model=Intervention,
    tags=["maintenance"],
    summary="Mark a planned intervention as done (done_at, finding); needs X-API-Key",
    description=(
        "Only a `planned` intervention can be marked done (409 otherwise, unless the same done_at and "
        "finding are sent again: idempotent). A repair finding publishes the repair command like POST."
    ),
    responses=WRITE_ERRORS,
)
async def mark_done(
    turbine_id: TurbineId,
    intervention_id: uuid.UUID,
    body: InterventionDone,
    _: ApiKeyDep,
    db: DbDep,
    publisher: PublisherDep,
) -> Response:
    _check_time("done_at", body.done_at)
    found = await db.dict_one(
        f"SELECT {COLUMNS} FROM interventions WHERE id = %s AND turbine_id = %s",
        (intervention_id, turbine_id),
    )
    if found is None:
        raise HTTPException(
            status_code=404, detail=f"intervention {intervention_id} of turbine {turbine_id!r} not found"
        )
    if found["kind"] == "done":
        if found["done_at"] == body.done_at and found["finding"] == body.finding:
            found["repair_command"] = await _notify(publisher, found)
            return OrjsonResponse(found)
        raise HTTPException(status_code=409, detail=f"intervention {intervention_id} is already done")
    row = await _write(
        db,
        f"""UPDATE interventions SET kind = 'done', done_at = %(done_at)s, finding = %(finding)s,
                   notes = COALESCE(%(notes)s, notes), updated_at = now()
            WHERE id = %(id)s AND kind = 'planned' RETURNING {COLUMNS}""",
        {"id": intervention_id, "done_at": body.done_at, "finding": body.finding, "notes": body.notes},
    )
    if row is None:
        raise HTTPException(status_code=409, detail=f"intervention {intervention_id} is already done")
    row["repair_command"] = await _notify(publisher, row)
    return OrjsonResponse(row)


@router.get(
    "/v1/turbines/{turbine_id}/interventions",
    response_model=InterventionList,
    tags=["maintenance"],
    summary="A turbine's interventions, newest first (by done_at, else planned_for)",
    responses={404: {"model": ErrorBody, "description": "Unknown turbine"}},
)
async def turbine_interventions(
    turbine_id: TurbineId, db: DbDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Response:
    if not await _turbine_exists(db, turbine_id):
        raise HTTPException(status_code=404, detail=f"turbine {turbine_id!r} not found")
    rows = await db.dicts(
        f"""SELECT {COLUMNS} FROM interventions WHERE turbine_id = %s
            ORDER BY COALESCE(done_at, planned_for) DESC, recorded_at DESC LIMIT %s""",
        (turbine_id, limit),
    )
    return OrjsonResponse({"items": rows})


@router.get(
    "/v1/interventions",
    response_model=InterventionList,
    tags=["maintenance"],
    summary="Interventions of the fleet (filter by time, kind, finding; or the latest per turbine)",
    description=(
        "`since`: interventions whose time (done_at, else planned_for) is at or after it. `latest=true`: "
        "only the most recent intervention of each turbine (the page's planning column). Oldest first, so "
        "that `cockpit intervention list --as-failure-log` writes a failure log in time order."
    ),
)
async def list_interventions(
    db: DbDep,
    since: Annotated[AwareDatetime | None, Query(description="ISO 8601 with offset")] = None,
    kind: Annotated[Kind | None, Query()] = None,
    finding: Annotated[Finding | None, Query()] = None,
    latest: Annotated[bool, Query(description="Only each turbine's latest intervention")] = False,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> Response:
    where = ["TRUE"]
    params: dict[str, Any] = {"n": limit}
    if since is not None:
        where.append("COALESCE(done_at, planned_for) >= %(since)s")
        params["since"] = since
    if kind is not None:
        where.append("kind = %(kind)s")
        params["kind"] = kind
    if finding is not None:
        where.append("finding = %(finding)s")
        params["finding"] = finding
    cond = " AND ".join(where)
    if latest:
        query = f"""SELECT * FROM (SELECT DISTINCT ON (turbine_id) {COLUMNS} FROM interventions WHERE {cond}
                    ORDER BY turbine_id, COALESCE(done_at, planned_for) DESC, recorded_at DESC) x
                    ORDER BY turbine_id LIMIT %(n)s"""
    else:
        query = f"""SELECT {COLUMNS} FROM interventions WHERE {cond}
                    ORDER BY COALESCE(done_at, planned_for), turbine_id, recorded_at LIMIT %(n)s"""
    return OrjsonResponse({"items": await db.dicts(query, params)})

"""Open311 GeoReport v2 read endpoints, so civic tools can read an office's cases.

https://wiki.open311.org/GeoReport_v2 — `services.json`, `requests.json`,
`requests/{id}.json`, under `/api/v1/open311/`. The office comes from the API
key as everywhere else (bearer header, or the GeoReport `api_key` parameter for
tools that cannot send headers). A service is a category of the escalation
policy file (`[categories.NAME]`), plus `general` for cases of no category.
Cases map as: open = awaiting an address, open or claimed; closed = resolved
or closed. No address or position is published: residents' privacy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from sqlalchemy import select

from app.api.deps import AUTH_ERRORS, READ_ERRORS, bearer, resolve_caller
from app.api.schemas import IsoTime
from app.deps import RuntimeDep, SessionDep
from app.directory.apikeys import Caller
from app.directory.offices import case_filter, visible_case
from app.errors import Unprocessable
from app.models.cases import Case
from sms.phones import mask_phones_in_text
from sms.templates import word

router = APIRouter(prefix="/api/v1/open311", tags=["open311"])

DEFAULT_WINDOW = timedelta(days=90)
MAX_REQUESTS = 1000
OPEN_STATUSES = ("awaiting_address", "open", "claimed")
GENERAL = "general"  # the service of cases with no category


def get_open311_caller(
    rt: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    api_key: Annotated[
        str | None, Query(max_length=100, description="GeoReport style key (else the header)")
    ] = None,
) -> Caller:
    return resolve_caller(rt, credentials.credentials if credentials is not None else api_key)


Open311CallerDep = Annotated[Caller, Depends(get_open311_caller)]


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str
    group: str


class ServiceRequest(BaseModel):
    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None = Field(description="the grid team or office holding it")
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None = Field(description="the resolution deadline")
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


def _request(case: Case, locale: str) -> dict[str, Any]:
    office = {"town": case.town, "county": case.county}.get(case.level)
    if case.level == "grid" and case.grid is not None:
        agency: str | None = word("team", locale, grid=case.grid.name)
    elif office is not None:
        agency = office.name
    else:
        agency = word(f"level.{case.level}", locale)
    return {
        "service_request_id": str(case.id),
        "status": "open" if case.status in OPEN_STATUSES else "closed",
        "status_notes": word(f"status.{case.status}", locale).removeprefix("is "),
        "service_name": case.category or GENERAL,
        "service_code": case.category or GENERAL,
        "description": mask_phones_in_text(case.summary),
        "agency_responsible": agency,
        "service_notice": f"#{case.code}",
        "requested_datetime": case.created_at.isoformat(),
        "updated_datetime": case.updated_at.isoformat(),
        "expected_datetime": case.resolve_due_at.isoformat() if case.resolve_due_at else None,
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }


@router.get("/services.json", response_model=list[Service], responses=AUTH_ERRORS)
def services(caller: Open311CallerDep, rt: RuntimeDep) -> list[dict[str, Any]]:
    """The request types: the policy's categories, and `general` for the rest."""
    categories = rt.policies.categories
    found = [
        {
            "service_code": name,
            "service_name": name,
            "description": f"requests of the {name!r} category",
            "metadata": False,
            "type": "realtime",
            "keywords": ",".join(categories[name].keywords),
            "group": "grid",
        }
        for name in sorted(categories)
    ]
    general = {
        "service_code": GENERAL,
        "service_name": GENERAL,
        "description": "requests of no particular category",
        "metadata": False,
        "type": "realtime",
        "keywords": "",
        "group": "grid",
    }
    return [*found, general]


@router.get("/requests.json", response_model=list[ServiceRequest], responses=AUTH_ERRORS)
def requests(
    caller: Open311CallerDep,
    session: SessionDep,
    rt: RuntimeDep,
    service_request_id: Annotated[
        str | None, Query(max_length=1000, pattern=r"^[0-9]{1,9}(,[0-9]{1,9})*$")
    ] = None,
    service_code: Annotated[str | None, Query(max_length=64)] = None,
    start_date: IsoTime | None = None,
    end_date: IsoTime | None = None,
    status: Literal["open", "closed"] | None = None,
) -> list[dict[str, Any]]:
    """Requests of the office's area, newest first: by default the last 90 days, at most 1000."""
    stmt = select(Case).where(case_filter(caller.office))
    if service_request_id is not None:
        stmt = stmt.where(Case.id.in_([int(i) for i in service_request_id.split(",")]))
    else:
        end = end_date or rt.clock()
        start = start_date or end - DEFAULT_WINDOW
        if start > end:
            raise Unprocessable("start_date must not be after end_date")
        stmt = stmt.where(Case.created_at >= start, Case.created_at <= end)
    if service_code == GENERAL:
        stmt = stmt.where(Case.category.is_(None))
    elif service_code is not None:
        stmt = stmt.where(Case.category == service_code)
    if status == "open":
        stmt = stmt.where(Case.status.in_(OPEN_STATUSES))
    elif status == "closed":
        stmt = stmt.where(Case.status.not_in(OPEN_STATUSES))
    rows = session.scalars(stmt.order_by(Case.id.desc()).limit(MAX_REQUESTS))
    return [_request(c, rt.settings.locale) for c in rows]


@router.get("/requests/{case_id}.json", response_model=list[ServiceRequest], responses=READ_ERRORS)
def request(
    case_id: str, caller: Open311CallerDep, session: SessionDep, rt: RuntimeDep
) -> list[dict[str, Any]]:
    """One request (GeoReport answers a list of one)."""
    return [_request(visible_case(session, caller.office, case_id), rt.settings.locale)]

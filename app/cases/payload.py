"""A case as JSON: the shape the office API answers with and office webhooks carry
(DESIGN.md, "Cases")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from app.cases.names import display_name
from app.models.cases import Case
from sms.phones import mask_phone, mask_phones_in_text

Status = Literal["awaiting_address", "open", "claimed", "resolved", "closed"]
Level = Literal["grid", "town", "county", "city"]


class Routing(BaseModel):
    method: str | None = Field(description="registered, address, asked, or null")
    evidence: dict[str, Any] = Field(description="how the grid was chosen, with the reason")


CASE_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "code": "4821",
    "status": "open",
    "level": "county",
    "grid": "DH-01",
    "town": "DH-JF",
    "county": "DH",
    "priority": "normal",
    "category": None,
    "summary": "海堤裂缝，涨潮时渗水",
    "resident": "137****0001",
    "claimed_by": None,
    "rating": None,
    "created_at": "2026-11-25T02:00:00Z",
    "updated_at": "2026-11-25T03:00:00Z",
    "claimed_at": None,
    "resolved_at": None,
    "closed_at": None,
    "claim_due_at": "2026-11-25T02:30:00Z",
    "resolve_due_at": "2026-11-28T02:00:00Z",
    "routing": {
        "method": "registered",
        "evidence": {"method": "registered", "reason": "registered phone → DH-01"},
    },
}


class CaseOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [CASE_EXAMPLE]})

    id: int
    code: str = Field(description="the digits of the SMS code (#4821 → 4821)")
    status: Status
    level: Level
    grid: str | None = Field(description="grid code; null while awaiting an address")
    town: str | None
    county: str | None
    priority: str
    category: str | None = Field(description="the category its text was given, if any")
    summary: str = Field(description="the resident's first text")
    resident: str = Field(description="the resident's phone, masked")
    claimed_by: str | None = Field(description="member or office name, or a masked phone")
    rating: int | None = Field(description="1 satisfied, 2 not satisfied, null unrated")
    created_at: datetime
    updated_at: datetime
    claimed_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    claim_due_at: datetime | None
    resolve_due_at: datetime | None
    routing: Routing


def case_fields(session: Session, case: Case, locale: str) -> dict[str, Any]:
    claimed_by = display_name(session, case.claimed_by, locale) if case.claimed_by else None
    return {
        "id": case.id,
        "code": case.code,
        "status": case.status,
        "level": case.level,
        "grid": case.grid.code if case.grid else None,
        "town": case.town.code if case.town else None,
        "county": case.county.code if case.county else None,
        "priority": case.priority,
        "category": case.category,
        # The resident's own words, with any phone number in them masked (the
        # console shows them so; the API, Open311 and office webhooks too).
        "summary": mask_phones_in_text(case.summary),
        "resident": mask_phone(case.resident_phone),
        "claimed_by": claimed_by,
        "rating": case.rating,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "claimed_at": case.claimed_at,
        "resolved_at": case.resolved_at,
        "closed_at": case.closed_at,
        "claim_due_at": case.claim_due_at,
        "resolve_due_at": case.resolve_due_at,
        "routing": {"method": case.routing_method, "evidence": case.routing_evidence or {}},
    }


def case_out(session: Session, case: Case, locale: str) -> dict[str, Any]:
    data = case_fields(session, case, locale)
    return CaseOut.model_validate(data).model_dump(mode="json")

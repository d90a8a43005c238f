"""JSON shapes of the office API (DESIGN.md, "Cases")."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy.orm import Session

from app.cases.payload import CASE_EXAMPLE, CaseOut, case_fields
from app.models.cases import Case, CaseEvent
from sms.phones import mask_phones_in_text


def _not_a_number(value: Any) -> Any:
    """Pydantic reads `0.5` or `1700000000` as Unix time; a time in this API is
    ISO-8601 text with its zone, so a bare number is a mistake to refuse."""
    if isinstance(value, int | float) or (
        isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+(\.[0-9]*)?\s*", value)
    ):
        raise ValueError("expected ISO-8601 with a zone (2026-11-25T10:00:00+08:00), not a number")
    return value


# A time parameter: ISO-8601 with a zone, never a bare number.
IsoTime = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]


class TimelineEvent(BaseModel):
    at: datetime
    kind: str = Field(description="received, routed, forwarded, claimed, assigned, comment, …")
    actor: str = Field(description="system, a masked phone, or api:<office>:<key prefix>")
    channel: str = Field(description="sms, api or system")
    detail: dict[str, Any]


class CaseDetail(CaseOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **CASE_EXAMPLE,
                    "timeline": [
                        {
                            "at": "2026-11-25T02:00:00Z",
                            "kind": "received",
                            "actor": "137****0001",
                            "channel": "sms",
                            "detail": {"text": "海堤裂缝，涨潮时渗水", "priority": "normal"},
                        },
                        {
                            "at": "2026-11-25T03:00:00Z",
                            "kind": "escalated",
                            "actor": "system",
                            "channel": "system",
                            "detail": {"from": "grid", "to": "county", "reason": "not claimed"},
                        },
                    ],
                }
            ]
        }
    )

    timeline: list[TimelineEvent]


class CasePage(BaseModel):
    items: list[CaseOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at end")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClaimBody(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})


class AssignBody(_Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"phone": "+8613900001111"}]}
    )
    phone: str = Field(min_length=3, max_length=40, description="any phone, any common format")


class EscalateBody(_Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "needs the fishery bureau"}]}
    )
    reason: str = Field(min_length=1, max_length=500)


class ResolveBody(_Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"note": "patrol boat sent"}]}
    )
    note: str = Field(default="", max_length=500)


class CommentBody(_Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"body": "called the bureau"}]}
    )
    body: str = Field(min_length=1, max_length=2000)


class MessageBody(_Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"body": "师傅下午到"}]}
    )
    body: str = Field(min_length=1, max_length=600, description="the SMS text")


class TransferBody(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"grid": "DH-02"}]})
    grid: str = Field(min_length=1, max_length=64, description="a grid code in the office's area")


def case_detail(session: Session, case: Case, locale: str) -> dict[str, Any]:
    data = case_fields(session, case, locale)
    session.expire(case, ["events"])
    data["timeline"] = [_event(e) for e in case.events]
    return CaseDetail.model_validate(data).model_dump(mode="json")


def _event(event: CaseEvent) -> dict[str, Any]:
    return {
        "at": event.at,
        "kind": event.kind,
        "actor": event.actor,
        "channel": event.channel,
        "detail": _masked(event.detail or {}),
    }


def _masked(value: Any) -> Any:
    """An event's detail with the phone numbers in its texts masked (a
    resident's or a worker's message quoted in it)."""
    if isinstance(value, str):
        return mask_phones_in_text(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value

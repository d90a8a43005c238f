"""How people and teams are named in texts and on pages."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.context import Ctx
from app.directory import lookups as directory
from app.directory.offices import display_name as office_name
from app.models.cases import Case
from app.models.directory import Resident
from sms.phones import mask_phone
from sms.templates import word


def display_name(session: Session, phone: str, locale: str) -> str:
    if phone.startswith("api:"):  # an office acting through the API: its name
        return office_name(session, phone, locale) or word("office", locale)
    return directory.member_name(session, phone) or mask_phone(phone)


def team_name(case: Case, locale: str) -> str:
    if case.grid is None:
        return word("office", locale)
    return word("team", locale, grid=case.grid.name)


def holder_name(case: Case, locale: str) -> str:
    """Who has the case at its level: the grid's team, the town or the county
    office (by name), or the city office."""
    if case.level == "town" and case.town is not None:
        return case.town.name
    if case.level == "county" and case.county is not None:
        return case.county.name
    if case.level == "city":
        return word("level.city", locale)
    return team_name(case, locale)


def resident_label(ctx: Ctx, case: Case) -> str:
    resident = ctx.session.get(Resident, case.resident_id) if case.resident_id else None
    phone = mask_phone(case.resident_phone)
    if resident is not None and resident.name:
        return word("resident_named", ctx.locale, name=resident.name, phone=phone)
    return word("resident", ctx.locale, phone=phone)

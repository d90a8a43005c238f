"""Read-side lookups of cases: by code, by resident, by participant, and who
takes part in a case."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.cases import ACTIVE_STATUSES, Case, CaseParticipant

LIVE_STATUSES = (*ACTIVE_STATUSES, "resolved")


def lock(session: Session, case: Case | None) -> Case | None:
    """Take the case's row lock and reload it, so that concurrent workers
    acting on one case (a claim and a deadline, say) serialise instead of
    overwriting each other. SQLite's BEGIN IMMEDIATE serialises already."""
    if case is None or session.get_bind().dialect.name != "postgresql":
        return case
    return lock_by_id(session, case.id)


def lock_by_id(session: Session, case_id: int) -> Case | None:
    """`lock` for a caller that has only the id: one statement on PostgreSQL
    (`SELECT … FOR UPDATE OF cases`, reloading the row)."""
    if session.get_bind().dialect.name != "postgresql":
        return session.get(Case, case_id)
    return session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .with_for_update(of=Case)
        .execution_options(populate_existing=True)
    )


def lock_many(session: Session, case_ids: Collection[int]) -> dict[int, Case]:
    """`lock` for several cases in one statement, in id order (the order two
    such batches take their locks in, so they cannot deadlock)."""
    stmt = select(Case).where(Case.id.in_(sorted(set(case_ids)))).order_by(Case.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Case).execution_options(populate_existing=True)
    return {case.id: case for case in session.scalars(stmt)}


def live_case_by_code(session: Session, code: str) -> Case | None:
    return session.scalar(select(Case).where(Case.open_code == code.lstrip("#")))


def active_case_of_resident(session: Session, phone: str) -> Case | None:
    return session.scalar(
        select(Case)
        .where(Case.resident_phone == phone, Case.status.in_(ACTIVE_STATUSES))
        .order_by(Case.id.desc())
        .limit(1)
    )


def live_cases_of_resident(session: Session, phone: str) -> list[Case]:
    """The resident's cases not yet closed, newest first."""
    return list(
        session.scalars(
            select(Case)
            .where(Case.resident_phone == phone, Case.status.in_(LIVE_STATUSES))
            .order_by(Case.id.desc())
        )
    )


def resolved_case_of_resident(session: Session, phone: str) -> Case | None:
    return session.scalar(
        select(Case)
        .where(Case.resident_phone == phone, Case.status == "resolved")
        .order_by(Case.resolved_at.desc(), Case.id.desc())
        .limit(1)
    )


def cases_of_participant(session: Session, phone: str) -> list[Case]:
    return list(
        session.scalars(
            select(Case)
            .join(CaseParticipant, CaseParticipant.case_id == Case.id)
            .where(CaseParticipant.phone == phone, Case.status.in_(("open", "claimed")))
            .order_by(Case.id)
        )
    )


def participant_phones(session: Session, case: Case, *, level: str | None = None) -> list[str]:
    stmt = select(CaseParticipant.phone).where(CaseParticipant.case_id == case.id)
    if level is not None:
        stmt = stmt.where(CaseParticipant.level == level)
    return list(session.scalars(stmt.order_by(CaseParticipant.id)))


def is_participant(session: Session, case: Case, phone: str) -> bool:
    found = session.scalar(
        select(CaseParticipant.id).where(
            CaseParticipant.case_id == case.id, CaseParticipant.phone == phone
        )
    )
    return found is not None

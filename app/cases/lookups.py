"""Read-side lookups of cases: by code, by resident, by participant, and who
takes part in a case; with the batch prefetches that answer them for many
messages at once from the transaction's memo (app/memo.py). Writers keep
those memos in step (app/cases/changes.py: `assign_code`, `add_participants`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import memo
from app.models.cases import ACTIVE_STATUSES, Case, CaseParticipant

LIVE_STATUSES = (*ACTIVE_STATUSES, "resolved")


def lock(session: Session, case: Case | None) -> Case | None:
    """Take the case's row lock and reload it, so that concurrent workers
    acting on one case (a claim and a deadline, say) serialise instead of
    overwriting each other. SQLite's BEGIN IMMEDIATE serialises already."""
    if case is None:
        return None
    held = memo.table_of(session)
    if held is not None and case.id in held.get("locked", ()):
        return case  # locked and loaded with its batch (app/deadlines/scheduler.py)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Case.id).where(Case.id == case.id).with_for_update())
        session.refresh(case)
    return case


def live_case_by_code(session: Session, code: str) -> Case | None:
    return session.scalar(select(Case).where(Case.open_code == code.lstrip("#")))


def prefetch_live_cases(session: Session, phones: set[str]) -> None:
    """Note which of `phones` have no live case (active or resolved), from one
    query, so that a batch need not look for theirs: a closed case never comes
    back, so only a new case (`assign_code` takes the phone off the note) can
    make one live."""
    held = memo.table_of(session)
    if held is None or not phones:
        return
    live = set(
        session.scalars(
            select(Case.resident_phone)
            .where(Case.resident_phone.in_(phones), Case.status.in_(LIVE_STATUSES))
            .distinct()
        )
    )
    held.setdefault("no_live_case", set()).update(phones - live)


def _no_live_case(session: Session, phone: str) -> bool:
    held = memo.table_of(session)
    return held is not None and phone in held.get("no_live_case", ())


def active_case_of_resident(session: Session, phone: str) -> Case | None:
    if _no_live_case(session, phone):
        return None
    return session.scalar(
        select(Case)
        .where(Case.resident_phone == phone, Case.status.in_(ACTIVE_STATUSES))
        .order_by(Case.id.desc())
        .limit(1)
    )


def resolved_case_of_resident(session: Session, phone: str) -> Case | None:
    if _no_live_case(session, phone):
        return None
    return session.scalar(
        select(Case)
        .where(Case.resident_phone == phone, Case.status == "resolved")
        .order_by(Case.resolved_at.desc(), Case.id.desc())
        .limit(1)
    )


def cases_of_participant(session: Session, phone: str) -> list[Case]:
    held = memo.table_of(session)
    if held is not None and phone in held.get("not_participants", ()):
        return []  # on no case when the batch began, and added to none since
    return list(
        session.scalars(
            select(Case)
            .join(CaseParticipant, CaseParticipant.case_id == Case.id)
            .where(CaseParticipant.phone == phone, Case.status.in_(("open", "claimed")))
            .order_by(Case.id)
        )
    )


def participantless_cases(session: Session) -> set[int]:
    """Ids of cases created in this transaction that have no participant yet
    (kept only when memoising, like `stepless_cases`)."""
    held = memo.table_of(session)
    if held is None:
        return set()
    found: set[int] = held.setdefault("participantless", set())
    return found


def participant_phones(session: Session, case: Case, *, level: str | None = None) -> list[str]:
    known = memo_participants(session, case)
    if known is not None:
        return [phone for phone, at in known if level is None or at == level]
    if case.id in participantless_cases(session):
        return []
    stmt = select(CaseParticipant.phone).where(CaseParticipant.case_id == case.id)
    if level is not None:
        stmt = stmt.where(CaseParticipant.level == level)
    return list(session.scalars(stmt.order_by(CaseParticipant.id)))


def prefetch_participant_phones(session: Session, phones: set[str]) -> None:
    """Note which of `phones` are on no case at all, from one query, so that a
    batch need not ask `cases_of_participant` about them (`add_participants`
    takes a phone off the note when it adds it to a case)."""
    held = memo.table_of(session)
    if held is None or not phones:
        return
    on_some = set(
        session.scalars(
            select(CaseParticipant.phone).where(CaseParticipant.phone.in_(phones)).distinct()
        )
    )
    held.setdefault("not_participants", set()).update(phones - on_some)


def prefetch_participants(session: Session, case_ids: list[int]) -> None:
    """Load the participants of many cases at once into the transaction's memo."""
    held = memo.table_of(session)
    if held is None:
        return
    rows = session.execute(
        select(CaseParticipant.case_id, CaseParticipant.phone, CaseParticipant.level)
        .where(CaseParticipant.case_id.in_(case_ids))
        .order_by(CaseParticipant.id)
    )
    found: dict[int, list[tuple[str, str]]] = {case_id: [] for case_id in case_ids}
    for case_id, phone, level in rows:
        found[case_id].append((phone, level))
    for case_id, known in found.items():
        held[("participants", case_id)] = known


def memo_participants(session: Session, case: Case) -> list[tuple[str, str]] | None:
    held = memo.table_of(session)
    if held is None:
        return None
    known: list[tuple[str, str]] | None = held.get(("participants", case.id))
    return known


def is_participant(session: Session, case: Case, phone: str) -> bool:
    known = memo_participants(session, case)
    if known is not None:
        return any(p == phone for p, _level in known)
    if case.id in participantless_cases(session):
        return False
    return (
        session.scalar(
            select(CaseParticipant.id).where(
                CaseParticipant.case_id == case.id, CaseParticipant.phone == phone
            )
        )
        is not None
    )

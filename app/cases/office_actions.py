"""Office actions on cases that the SMS grammar does not have: reopening a case
an office judged not done, and sending back a case the routing placed in the
wrong grid. Like app/cases/changes.py, each writes its timeline event, outbox rows and
deadline steps in the caller's transaction.
"""

from __future__ import annotations

from app.cases import changes as case_service
from app.cases import lookups as case_lookups
from app.context import Actor, Ctx
from app.delivery.send import send
from app.errors import Conflict, Unprocessable
from app.models.cases import Case
from routing import lifecycle

# The office above the one sending a misrouted case back: it sees both the
# wrong and (most likely) the right grid, and can transfer it.
SEND_BACK_TO = {"town": "county", "county": "city"}


def reopen_by_office(ctx: Ctx, case: Case, actor: Actor, *, reason: str) -> None:
    """Open a resolved or closed case again at its level; its team is texted.

    Unlike the resident's "not satisfied" it keeps the rating and does not
    text the resident. A closed case gets its code back when no live case
    holds it, else a new one (recorded on the event).
    """
    reason = reason.strip()
    if not reason:
        raise Unprocessable("reopening needs a reason")
    if not lifecycle.allows("office_reopen", case.status):
        raise Conflict(f"case #{case.code} is {case.status}")
    previous_code = case.code
    if case.status == "closed":
        holder = case_lookups.live_case_by_code(ctx.session, case.code)
        if holder is None:
            case.open_code = case.code
            ctx.session.flush()
        else:
            case_service.assign_code(ctx.session, case, width=case_service.code_width(ctx))
    previous_owner = case.claimed_by
    case.status = "open"
    case.claimed_by = None
    case.claimed_at = None
    case.resolved_at = None
    case.closed_at = None
    case_service.record(
        ctx,
        case,
        "reopened",
        actor,
        reason=reason,
        by="office",
        **({"previous_code": previous_code} if previous_code != case.code else {}),
    )
    case_service.start_clock(ctx, case, reopened=True)
    phones = case_lookups.participant_phones(ctx.session, case, level=case.level)
    if previous_owner and previous_owner not in phones and not previous_owner.startswith("api:"):
        phones.insert(0, previous_owner)
    for phone in phones:
        send(ctx, case, phone, "assigned_notice", code=case.code, text=f"{reason}｜{case.summary}")


def send_back_misrouted(
    ctx: Ctx, case: Case, actor: Actor, *, reason: str, office_level: str
) -> None:
    """The case is not of this grid: up to the office above `office_level`
    (town → county, county → city), open, to be transferred to the right grid.

    The `misrouted` event keeps the grid and the routing method that were
    wrong, for whoever tunes the gazetteer.
    """
    reason = reason.strip()
    if not reason:
        raise Unprocessable("sending a case back needs a reason")
    if not lifecycle.allows("send_back", case.status):
        raise Conflict(f"case #{case.code} is {case.status}")
    target = SEND_BACK_TO.get(office_level)
    if target is None:
        raise Conflict("the city office can transfer the case to any grid itself")
    case_service.record(
        ctx,
        case,
        "misrouted",
        actor,
        grid=case.grid.code if case.grid else None,
        method=case.routing_method,
        reason=reason,
        to=target,
    )
    if lifecycle.is_above(target, case.level):
        case_service.escalate(ctx, case, actor, reason=reason, to_level=target)
        return
    # Already at or above that level: it waits there, unclaimed, for a transfer.
    case.status = "open"
    case.claimed_by = None
    case.claimed_at = None

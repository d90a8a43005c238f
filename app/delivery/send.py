"""Sending an SMS from inside a unit of work: one outbox row, unless a loop
guard holds it back, at the priority its kind and case give it, held past
quiet hours where they apply. The row is sent by the worker after commit.
"""

from __future__ import annotations

from typing import Any

from app.context import Ctx
from app.delivery import quiet, suppression
from app.delivery.outbox import enqueue
from app.models.cases import Case
from routing.delivery import priority_for
from sms.gateway import BODY_LIMITS


def send(ctx: Ctx, case: Case | None, to: str, template: str, **params: Any) -> None:
    """Queue the SMS `template` (with `params`) to `to`, about `case` if any."""
    if suppression.suppress(ctx, to, template):  # loop guards (auto-responders)
        return
    priority = priority_for(template, case_priority=case.priority if case else None)
    enqueue(
        ctx.session,
        to=to,
        template=template,
        params=params,
        locale=ctx.locale,
        now=ctx.now,
        case_id=case.id if case is not None else None,
        inbound_id=ctx.inbound_id,
        priority=priority,
        not_before=quiet.hold_until(ctx, case, to, template),
        max_chars=BODY_LIMITS[ctx.rt.settings.sms_provider],
    )

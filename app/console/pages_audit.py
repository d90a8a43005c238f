"""The audit log (/console/audit): phone reveals and CSV exports. Admins only."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from app.console.audit import visible_entries
from app.console.auth import StaffContext, require_role
from app.console.render import render
from app.console.router import router
from app.deps import SessionDep

PAGE = 100


@router.get("/audit")
def audit_log(
    request: Request,
    ctx: Annotated[StaffContext, Depends(require_role("admin"))],
    session: SessionDep,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    entries = visible_entries(session, ctx.office, limit=PAGE + 1, before=before)
    more = len(entries) > PAGE
    entries = entries[:PAGE]
    return render(
        request,
        ctx,
        "audit.html",
        nav_active="audit",
        entries=entries,
        next_before=entries[-1].id if more and entries else None,
    )

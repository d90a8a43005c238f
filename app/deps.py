"""FastAPI dependencies shared by every router: the runtime and the request's session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.db import unit_of_work
from app.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(rt: RuntimeDep) -> Iterator[Session]:
    """The request's one commit point (an error rolls everything back)."""
    with unit_of_work(rt.sessions) as session:
        yield session


# scope="function": the commit runs when the endpoint returns, before the
# response is sent (FastAPI's default runs a yield dependency's exit after
# the response has gone: a client could hold a 200 for a change that a crash
# then lost, and a failed commit could not change the answer).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

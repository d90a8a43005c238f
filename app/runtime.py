"""What services need besides a session: settings, policies, caches, a clock.

Built once by the app's lifespan, the CLI or the worker and passed down.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_sessionmaker
from app.models.base import utcnow
from app.settings import Settings
from routing.policy import PolicyError, PolicySet, default_policy, parse_policy


def settle_heap() -> None:
    """Take what start-up built (modules, the app, mappers, phone metadata) out
    of the cyclic collector's way, in a long-running process: collected once,
    then frozen (`gc.freeze`). A full collection otherwise walks all of it
    again every few thousand requests. Not for tests, which build many apps in
    one process: what is frozen is never collected."""
    gc.collect()
    gc.freeze()


def load_policies(settings: Settings) -> PolicySet:
    if settings.policy_file is None:
        return default_policy()
    try:
        text = settings.policy_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{settings.policy_file}: {exc.strerror}") from exc
    try:
        return parse_policy(text)
    except PolicyError as exc:
        raise PolicyError(f"{settings.policy_file}: {exc}") from exc


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    policies: PolicySet
    clock: Callable[[], datetime] = utcnow
    # Seconds for wall-clock budgets (how long a worker stage may run): monotonic.
    timer: Callable[[], float] = time.monotonic
    rating_window: timedelta = timedelta(hours=24)
    # Process-local caches (e.g. the gazetteer index), keyed by their own rules.
    caches: dict[str, object] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> Runtime:
        kwargs: dict[str, object] = {}
        if settings.database_url.startswith("postgresql"):
            # An unreachable server must fail fast enough for the webhook to spool.
            kwargs["connect_args"] = {"connect_timeout": settings.database_connect_timeout_seconds}
        else:
            kwargs["connect_args"] = {"timeout": settings.sqlite_lock_timeout_seconds}
        engine = make_engine(settings.database_url, **kwargs)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            policies=load_policies(settings),
            clock=clock,
        )

    def close(self) -> None:
        self.engine.dispose()
